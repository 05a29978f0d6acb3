// Live migration through the two daemons' Migration service vs QEMU→QEMU directly, same busy guest, real QEMU, in
// two regimes (needs root):
//   npm run bench:migration -- [--regimes link,unlimited] [--runs 3] [--link-mbit 1000]
//     [--modes direct-unix,direct-tls,tern,tern-mfd2,tern-mfd4] [--memory-mib 1024] [--wss-mib 768] [--dirty-pps 20000]
//
// Side A runs in this network namespace, side B in one of its own, joined by a veth pair (shaped-link.ts): in the
// `link` regime both directions of the pair are shaped to --link-mbit with tc (a token bucket), in `unlimited` they
// are not. Two guests with the same spec and workload: D migrates back and forth directly (two in-process
// supervisors, one per side), T migrates back and forth through two real daemon processes (PrepareIncoming /
// StartMigration / WatchMigration / ResumeTarget / ReleaseSource). A mode says how:
//   direct-unix    D over a unix socket (not over the link: the transport's floor)
//   direct-tls     D over TCP with QEMU's TLS keyed by a PSK, as the daemons do, over the link (the reference)
//   tern           T with the operator's default settings (the data over TCP with QEMU's TLS keyed by the
//                  migration's token)
// and suffixes change the policy of a direct-tls or tern mode: -mfdN (N multifd channels; -mfd0 none), -zstd (their
// pages compressed), -noac (no auto-converge). Within a regime the modes run in turn, run after run; only the guest being
// migrated dirties memory, the other is set to 0 pages/s. Total time = start of the migration to target resumed.
// After every migration the agent VERIFYs the guest's memory. Prints per regime each mode's medians and its ratios
// to direct-tls and direct-unix, a line per mode `regime=<r> mode=<m> total_ratio=<x> ...` (against direct-tls),
// then a line per regime for the `tern` mode: `regime=<r> total_ratio=<x> downtime_delta_ms=<y> gap_delta_ms=<z>`;
// the last line is that of the last regime without the prefix: `total_ratio=<x> downtime_delta_ms=<y>
// gap_delta_ms=<z>`. It also says whether QEMU's dirty-limit could be used here (KVM with a dirty ring only).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { AgentClient } from '../../guest/host/agent-client.js';
import { generateDevCerts } from '../harness/certificates.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import { GuestSupervisor } from '../../hypervisor-node/src/runtime/supervisor.js';
import { testGuestImages } from '../fixtures/test-guest.js';
import type { MigrationChannel } from '../../hypervisor-node/src/migration/engine/channel.js';
import { switchoverGap } from '../fixtures/switchover-gap.js';
import { handOverToTarget } from '../fixtures/engine-handover.js';
import {
  channelSettings,
  resolveMigrationPolicy,
  type ResolvedMigrationPolicy,
} from '../../hypervisor-node/src/migration/engine/policy.js';
import type { QmpClient } from '../../hypervisor-node/src/qemu/qmp-client.js';
import type { WireMigrationPolicy } from '../../proto/index.js';
import { createShapedLink } from './shaped-link.js';
import { DEFAULT_MIGRATION_SETTINGS, toWirePolicy } from '../../operator/src/migration/policy.js';
import { writePskFile } from '../../hypervisor-node/src/migration/engine/psk.js';
import { SourceMigration } from '../../hypervisor-node/src/migration/engine/source.js';
import { incomingSpec, TargetMigration } from '../../hypervisor-node/src/migration/engine/target.js';
import { UserModeNetwork } from '../../hypervisor-node/src/network/guest-network.js';
import { controlClient, unary } from '../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../harness/daemon-process.js';
import {
  begin,
  handOver,
  migrationClient,
  InMemoryOwnership,
  type NodeHandle,
} from '../harness/migration-driver.js';

const options = new Command()
  .option(
    '--regimes <list>',
    'link (the path shaped with tc) and/or unlimited, in this order',
    'link,unlimited',
  )
  .option('--runs <n>', 'migrations per mode and regime', '3')
  .option('--link-mbit <n>', "the link regime's rate each way, Mbit/s", '1000')
  .option(
    '--modes <list>',
    'direct-unix, direct-tls, tern, each tern or direct-tls with -mfdN, -zstd, -noac',
    '',
  )
  .option('--memory-mib <n>', 'guest RAM', '1024')
  .option('--wss-mib <n>', 'working set the guest agent fills and dirties', '768')
  .option('--dirty-pps <n>', 'pages per second the guest agent rewrites', '20000')
  .parse()
  .opts<{
    regimes: string;
    runs: string;
    linkMbit: string;
    modes: string;
    memoryMib: string;
    wssMib: string;
    dirtyPps: string;
  }>();
const runs = Number(options.runs);
const dirtyPps = Number(options.dirtyPps);
const linkMbit = Number(options.linkMbit);
const REGIMES = ['link', 'unlimited'] as const;
type Regime = (typeof REGIMES)[number];
const regimes = options.regimes.split(',').map((r) => {
  if (!(REGIMES as readonly string[]).includes(r)) throw new Error(`--regimes: unknown regime ${r}`);
  return r as Regime;
});
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
if (!(linkMbit > 0)) throw new Error('--link-mbit must be positive');

/** How one mode migrates: directly or through the daemons, over which transport, with which policy. */
interface Mode {
  name: string;
  kind: 'direct-unix' | 'direct-tls' | 'tern';
  /** tern: the operator's default settings (what a Migration without policies gets) with the suffixes' changes;
   * direct: the daemon engine's defaults with the suffixes' changes. */
  policy: WireMigrationPolicy;
}

const MODE = /^(direct-unix|direct-tls|tern)(?:-mfd(\d+))?(-zstd)?(-noac)?$/;
function parseMode(name: string): Mode {
  const match = MODE.exec(name);
  if (match === null || (match[1] === 'direct-unix' && name !== 'direct-unix')) {
    throw new Error(
      `--modes: ${name} is not direct-unix, direct-tls[-mfdN][-zstd][-noac] or tern[-mfdN][-zstd][-noac]`,
    );
  }
  const kind = match[1] as Mode['kind'];
  const base: WireMigrationPolicy = kind === 'tern' ? toWirePolicy(DEFAULT_MIGRATION_SETTINGS) : {};
  const changes: Partial<ResolvedMigrationPolicy> = {};
  if (match[2] !== undefined) changes.multifdChannels = Number(match[2]);
  if (match[3] !== undefined) changes.multifdCompression = 'zstd';
  if (match[4] !== undefined) changes.allowAutoConverge = false;
  // Checked now, not after the guests booted.
  resolveMigrationPolicy({
    multifdChannels: base.multifdChannels ?? 0,
    multifdCompression: base.multifdCompression ?? 'none',
    ...changes,
  });
  return { name, kind, policy: { ...base, ...changes } };
}
const modeNames = options.modes === '' ? [] : options.modes.split(',');
// The two references are always measured.
const modes = [
  ...new Set([
    'direct-unix',
    'direct-tls',
    ...(modeNames.length > 0 ? modeNames : ['tern', 'tern-mfd2', 'tern-mfd4']),
  ]),
].map(parseMode);
let directCount = 0;

interface Sample {
  totalMs: number;
  downtimeMs: number;
  gapMs: number;
  throughputMBps: number;
}

const work = mkdtempSync(join(tmpdir(), 'tern-mbench-'));
const daemons: DaemonProcess[] = [];
const supervisors: GuestSupervisor[] = [];
/** Run last, after every QEMU is gone (the shaped link's namespace). */
const cleanups: (() => Promise<void>)[] = [];
const agents: AgentClient[] = [];
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function connectAgent(path: string): Promise<AgentClient> {
  const agent = await AgentClient.connect(path, { timeoutMs: 30_000 });
  agents.push(agent);
  return agent;
}

async function verify(agent: AgentClient, label: string): Promise<void> {
  const result = await agent.verify();
  if (!result.ok) throw new Error(`${label}: VERIFY failed: ${result.detail}`);
}

async function main(): Promise<void> {
  const images = await testGuestImages();
  const link = await createShapedLink(work);
  cleanups.push(() => link.remove());
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const spec = (name: string, uuid: string) => ({
    name,
    uuid,
    cpus: 1,
    memoryMiB: Number(options.memoryMib),
    boot: {
      kernel: images.kernel,
      initrd: images.initrd,
      cmdline: ['panic=-1', `tern.wss_mib=${options.wssMib}`, 'tern.dirty_pps=0'],
    },
    disks: [],
    nics: [],
  });
  const sides = [
    { address: link.addressA, qemu: 'qemu-system-x86_64' },
    { address: link.addressB, qemu: link.qemuInB },
  ];

  // (a) direct: two supervisors in this process, the second one's QEMUs in side B's namespace.
  const base = {
    accel: 'tcg' as const,
    policy: { imageRoots: { sharedRoots: [images.root] }, maxCpus: 2, maxMemoryMiB: 4096 },
    network: new UserModeNetwork(7000),
  };
  const direct = ['da', 'db'].map((n, i) => {
    const supervisor = new GuestSupervisor({ ...base, stateRoot: join(work, n), qemuBinary: sides[i]!.qemu });
    supervisors.push(supervisor);
    return { root: join(work, n), supervisor, address: sides[i]!.address };
  });

  // (b) through two daemon processes, node-b's QEMUs in side B's namespace.
  const nodes: (NodeHandle & { stateDir: string })[] = [];
  for (const [i, name] of ['node-a', 'node-b'].entries()) {
    const stateDir = join(work, name.slice(-1)); // short: unix socket paths are limited to 107 bytes
    const daemon = await startDaemonProcess(
      loopbackDaemonArgs(
        { node: name, certs, stateDir, sharedImageRoot: images.root },
        ...['--migration-address', sides[i]!.address, '--network', 'user', '--qemu-binary', sides[i]!.qemu],
      ),
    );
    daemons.push(daemon);
    const address = `127.0.0.1:${daemon.grpcPort}`;
    const files = { ca: certs.ca.cert, ...certs.operator };
    nodes.push({
      name,
      stateDir,
      control: controlClient(address, files),
      migration: migrationClient(address, files),
    });
  }

  const directSpec = spec('bench', '9b1f0c2e-3d4a-4b5c-8d6e-7f8091a2b3c4');
  await direct[0]!.supervisor.create(directSpec);
  const wireSpec = {
    ...directSpec,
    memoryMib: directSpec.memoryMiB,
    boot: { ...directSpec.boot },
  };
  await unary((done) => nodes[0]!.control.createGuest({ spec: wireSpec }, done));
  let directAgent = await connectAgent(guestPaths(direct[0]!.root, 'bench').agent);
  let daemonAgent = await connectAgent(guestPaths(nodes[0]!.stateDir, 'bench').agent);
  console.log(`booting two ${options.memoryMib} MiB guests (${options.wssMib} MiB working set)...`);
  await Promise.all([directAgent.waitReady(300_000), daemonAgent.waitReady(300_000)]);
  console.log(`dirty-limit: ${await dirtyLimitAvailability(direct[0]!.supervisor.qmp('bench'))}`);

  let directAt = 0;
  const directRun = async (mode: Mode, label: string): Promise<Sample> => {
    const from = direct[directAt]!;
    const to = direct[1 - directAt]!;
    const status = from.supervisor.get('bench')!;
    const policy = resolveMigrationPolicy(mode.policy);
    const key = randomBytes(32);
    const id = `direct-${++directCount}`;
    const psk = (side: string) => writePskFile(join(work, `${id}-${side}`), id, key);
    const channel: MigrationChannel =
      mode.kind === 'direct-tls'
        ? { transport: 'tcp', host: to.address, port: 0, tls: await psk('in') }
        : { transport: 'unix', path: join(work, `${id}.sock`) };
    const target = await TargetMigration.prepare({
      supervisor: to.supervisor,
      spec: incomingSpec(status.spec, status.accelerator),
      channel,
      settings: channelSettings(policy),
    });
    const sourceChannel: MigrationChannel =
      channel.transport === 'tcp' ? { ...channel, port: target.port, tls: await psk('out') } : channel;
    const targetAgent = await connectAgent(guestPaths(to.root, 'bench').agent);
    const source = new SourceMigration({
      supervisor: from.supervisor,
      guest: 'bench',
      channel: sourceChannel,
      policy,
    });
    const startedAt = Date.now();
    await source.start();
    // No ownership record in this process: the target owns the guest once it is loaded.
    const resumedAtMs = await handOverToTarget(source, target).catch((error: Error) => {
      throw new Error(`${label}: ${error.message}`);
    });
    const outcome = await source.done;
    await sleep(300);
    const gap = switchoverGap(directAgent.heartbeats, targetAgent.heartbeats);
    directAgent.close();
    directAgent = targetAgent;
    directAt = 1 - directAt;
    await verify(directAgent, label);
    return sample(resumedAtMs - startedAt, outcome.downtimeMs ?? 0, gap.gapMs, outcome);
  };

  const record = new InMemoryOwnership();
  record.set('bench', 'node-a');
  let daemonAt = 0;
  /** A sample, or why the migration did not complete (the guest then runs on in the source, VERIFY OK). */
  const daemonRun = async (mode: Mode, label: string): Promise<Sample | string> => {
    const from = nodes[daemonAt]!;
    const to = nodes[1 - daemonAt]!;
    let targetAgent: AgentClient | undefined;
    const run = await begin({
      guest: 'bench',
      from,
      to,
      policy: mode.policy,
      onPrepared: async () => void (targetAgent = await connectAgent(guestPaths(to.stateDir, 'bench').agent)),
    });
    // begin() returns after StartMigration: its start is the migration's first phase change.
    const initializing = await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_INITIALIZING');
    const result = await handOver(run, { guest: 'bench', from, to, record });
    const outcome = await run.outcome;
    if (result.owner !== to.name) {
      // A policy that cannot finish under this load (no auto-converge, say) is a result too, not the bench's end.
      if (result.owner !== from.name) throw new Error(`${label}: the guest is on ${result.owner}`);
      targetAgent?.close();
      await verify(daemonAgent, label);
      return `${outcome.result} ${outcome.reason}`;
    }
    await sleep(300);
    const gap = switchoverGap(daemonAgent.heartbeats, targetAgent!.heartbeats);
    daemonAgent.close();
    daemonAgent = targetAgent!;
    daemonAt = 1 - daemonAt;
    await verify(daemonAgent, label);
    return sample(result.resumedAtMs! - Number(initializing.atUnixMs), outcome.downtimeMs, gap.gapMs, {
      transferredBytes: outcome.transferredBytes,
      qemuTotalTimeMs: outcome.qemuTotalTimeMs,
    });
  };

  const lastLines: string[] = [];
  for (const regime of regimes) {
    await link.shape(regime === 'link' ? linkMbit : undefined);
    console.log(
      regime === 'link'
        ? `regime link: ${link.addressA} ⇄ ${link.addressB} shaped to ${linkMbit} Mbit/s each way (tc tbf)`
        : `regime unlimited: ${link.addressA} ⇄ ${link.addressB}, no shaping`,
    );
    const results = new Map<string, Sample[]>(modes.map((m) => [m.name, []]));
    const failures = new Map<string, number>();
    for (let i = 1; i <= runs; i++) {
      for (const mode of modes) {
        const isDirect = mode.kind !== 'tern';
        // Only the guest being migrated dirties memory.
        await (isDirect ? daemonAgent : directAgent).setDirtyRate(0);
        await (isDirect ? directAgent : daemonAgent).setDirtyRate(dirtyPps);
        await sleep(1000);
        const label = `${regime} run ${i} ${mode.name}`;
        const s = isDirect ? await directRun(mode, label) : await daemonRun(mode, label);
        if (typeof s === 'string') {
          failures.set(mode.name, (failures.get(mode.name) ?? 0) + 1);
          console.log(`${label.padEnd(32)} did not complete: ${s}; the guest runs on the source, VERIFY OK`);
          continue;
        }
        results.get(mode.name)!.push(s);
        console.log(
          `${label.padEnd(32)} total ${s.totalMs} ms, QEMU downtime ${s.downtimeMs} ms, guest gap ` +
            `${s.gapMs.toFixed(1)} ms, ${s.throughputMBps.toFixed(0)} MB/s; VERIFY OK`,
        );
      }
    }
    const med = (mode: string, key: keyof Sample) => median(results.get(mode)!.map((s) => s[key]));
    const ratios = (mode: string, reference: string) => ({
      total: med(mode, 'totalMs') / med(reference, 'totalMs'),
      downtime: med(mode, 'downtimeMs') - med(reference, 'downtimeMs'),
      gap: med(mode, 'gapMs') - med(reference, 'gapMs'),
    });
    const failed = (mode: string) =>
      failures.has(mode) ? `, ${failures.get(mode)} of ${runs} not completed` : '';
    for (const mode of modes) {
      if (results.get(mode.name)!.length === 0) {
        console.log(`${regime} median ${mode.name.padEnd(16)} none: no run completed${failed(mode.name)}`);
        continue;
      }
      const vsUnix = ratios(mode.name, 'direct-unix');
      console.log(
        `${regime} median ${mode.name.padEnd(16)} total ${med(mode.name, 'totalMs').toFixed(0)} ms ` +
          `(×${ratios(mode.name, 'direct-tls').total.toFixed(2)} direct-tls, ×${vsUnix.total.toFixed(2)} ` +
          `direct-unix), QEMU downtime ${med(mode.name, 'downtimeMs').toFixed(0)} ms, guest gap ` +
          `${med(mode.name, 'gapMs').toFixed(1)} ms, throughput ${med(mode.name, 'throughputMBps').toFixed(0)} MB/s` +
          failed(mode.name),
      );
    }
    for (const mode of modes.filter((m) => m.name !== 'direct-tls' && results.get(m.name)!.length > 0)) {
      const r = ratios(mode.name, 'direct-tls');
      console.log(
        `regime=${regime} mode=${mode.name} total_ratio=${r.total.toFixed(3)} ` +
          `downtime_delta_ms=${r.downtime.toFixed(1)} gap_delta_ms=${r.gap.toFixed(1)}`,
      );
    }
    if ((results.get('tern')?.length ?? 0) > 0) {
      const r = ratios('tern', 'direct-tls');
      lastLines.push(
        `total_ratio=${r.total.toFixed(3)} downtime_delta_ms=${r.downtime.toFixed(1)} gap_delta_ms=${r.gap.toFixed(1)}`,
      );
      console.log(`regime=${regime} ${lastLines.at(-1)}`);
    }
  }
  if (lastLines.length > 0) console.log(lastLines.at(-1));
}

/** Whether QEMU here can throttle by dirty rate (dirty-limit): it needs KVM with a dirty ring; QEMU says why not. */
async function dirtyLimitAvailability(qmp: QmpClient): Promise<string> {
  try {
    await qmp.migrateSetCapabilities({ 'dirty-limit': true });
    await qmp.migrateSetCapabilities({ 'dirty-limit': false });
    return 'available';
  } catch (error) {
    return `not available (${(error as Error).message}); auto-converge is the throttle here`;
  }
}

function sample(
  totalMs: number,
  downtimeMs: number,
  gapMs: number,
  qemu: { transferredBytes?: number; qemuTotalTimeMs?: number },
): Sample {
  const seconds = (qemu.qemuTotalTimeMs ?? 0) / 1000;
  return {
    totalMs,
    downtimeMs,
    gapMs,
    throughputMBps: seconds > 0 ? (qemu.transferredBytes ?? 0) / 1e6 / seconds : 0,
  };
}

async function cleanup(): Promise<void> {
  for (const agent of agents) agent.close();
  for (const daemon of daemons) await daemon.stop();
  for (const name of ['node-a', 'node-b']) await killGuestsIn(join(work, name.slice(-1)));
  for (const supervisor of supervisors) {
    for (const guest of supervisor.list())
      await supervisor.delete(guest.name, { timeoutMs: 0 }).catch(() => undefined);
    await supervisor.close();
  }
  for (const name of ['da', 'db']) await killGuestsIn(join(work, name));
  for (const step of cleanups) await step().catch((error: unknown) => console.error(error));
  rmSync(work, { recursive: true, force: true });
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (error: unknown) => {
    console.error(error);
    void cleanup().then(() => process.exit(1));
  },
);
