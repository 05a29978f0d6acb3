// The migration benchmark's link: side A in this network namespace, side B in a namespace of its own, joined by a
// veth pair whose two ends can be shaped with tc (a token bucket at the given rate, each direction), so a migration
// between them is bound by the link, or not (no qdisc: the veth's own speed). Loopback cannot be used for this: it
// carries every other local connection of the machine too. QEMU reaches side B through a wrapper script that runs
// it there (`ip netns exec`, which execs QEMU: the pid stays QEMU's). Needs root. Every name carries this process's
// pid, so two benchmarks do not collide; remove() takes down what create() set up.
import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SUBNET_BASE = '10.219';

async function cmd(file: string, args: string[]): Promise<string> {
  try {
    return (await run(file, args, { timeout: 10_000 })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${file} ${args.join(' ')}: ${stderr || (error as Error).message}`);
  }
}

export interface ShapedLink {
  /** Side A's address (this namespace). */
  addressA: string;
  /** Side B's address (in `netns`). */
  addressB: string;
  netns: string;
  /** A QEMU binary that runs qemu-system-x86_64 in side B's namespace. */
  qemuInB: string;
  /** Shapes both directions to `mbit` Mbit/s, or removes the shaping (undefined). */
  shape(mbit: number | undefined): Promise<void>;
  remove(): Promise<void>;
}

export async function createShapedLink(workDir: string): Promise<ShapedLink> {
  if (process.getuid?.() !== 0) throw new Error('the shaped link needs root (network namespaces, veth, tc)');
  const tag = String(process.pid % 100_000);
  const netns = `tmbench-${tag}`;
  const vethA = `tmb${tag}a`;
  const vethB = `tmb${tag}b`;
  const used = new Set(
    [...(await cmd('ip', ['-o', '-4', 'addr', 'show'])).matchAll(/inet 10\.219\.(\d+)\./g)].map((m) =>
      Number(m[1]),
    ),
  );
  const octet = Array.from({ length: 250 }, (_, i) => ((process.pid + i) % 250) + 1).find(
    (n) => !used.has(n),
  );
  if (octet === undefined) throw new Error(`no free /24 in ${SUBNET_BASE}.0.0/16`);
  const addressA = `${SUBNET_BASE}.${octet}.1`;
  const addressB = `${SUBNET_BASE}.${octet}.2`;
  const inB = (args: string[]) => cmd('ip', ['-n', netns, ...args]);

  const remove = async (): Promise<void> => {
    // Deleting one end of a veth pair deletes both; the namespace goes with whatever is left in it.
    await cmd('ip', ['link', 'del', vethA]).catch(() => undefined);
    await cmd('ip', ['netns', 'del', netns]).catch(() => undefined);
  };
  try {
    await cmd('ip', ['netns', 'add', netns]);
    await inB(['link', 'set', 'dev', 'lo', 'up']);
    await cmd('ip', ['link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB, 'netns', netns]);
    await cmd('ip', ['addr', 'add', `${addressA}/30`, 'dev', vethA]);
    await inB(['addr', 'add', `${addressB}/30`, 'dev', vethB]);
    await cmd('ip', ['link', 'set', 'dev', vethA, 'up']);
    await inB(['link', 'set', 'dev', vethB, 'up']);
  } catch (error) {
    await remove();
    throw error;
  }
  const qemuInB = join(workDir, 'qemu-in-b');
  await writeFile(qemuInB, `#!/bin/sh\nexec ip netns exec ${netns} qemu-system-x86_64 "$@"\n`);
  await chmod(qemuInB, 0o755);

  const shape = async (mbit: number | undefined): Promise<void> => {
    for (const [exec, dev] of [
      [cmd, vethA],
      [(file: string, args: string[]) => cmd(file, ['-n', netns, ...args]), vethB],
    ] as const) {
      await exec('tc', ['qdisc', 'del', 'dev', dev, 'root']).catch(() => undefined);
      if (mbit === undefined) continue;
      // A token bucket: `rate` on average, bursts of at most 1 ms worth (at least 64 KiB, one GSO segment), and a
      // queue of at most 20 ms before the kernel drops (TCP then backs off, as on a real link).
      const burstBytes = Math.max(65_536, Math.round((mbit * 1e6) / 8 / 1000));
      await exec('tc', [
        'qdisc',
        'add',
        'dev',
        dev,
        'root',
        'tbf',
        'rate',
        `${mbit}mbit`,
        'burst',
        String(burstBytes),
        'latency',
        '20ms',
      ]);
    }
  };
  return { addressA, addressB, netns, qemuInB, shape, remove };
}
