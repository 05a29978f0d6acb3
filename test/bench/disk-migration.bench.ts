// Live migration of a `storage: local` disk through the two daemons vs the plain QEMU way, same guest, same bytes,
// same link, real QEMU:
//   npm run bench:disk-migration -- [--runs 3] [--disk-size 2048] [--memory-mib 256] [--window-ms 5000]
//
// Two guests with the same spec: a raw local disk of --disk-size MiB whose second half holds random bytes written
// before the run (the first half is a hole: the guest's durable transaction log, guest/README.md "Transaction log",
// writes there), and the durable workload committing one transaction at a time (guest/host/durable-client.ts)
// around and through every migration.
//   (a) plain: two QEMUs started by two in-process supervisors, no daemons, no engine; QMP by hand, the way
//       docs/interop/live-block-operations.rst and libvirt do it: the target's NBD server exports its empty image,
//       the source mirrors into it (`blockdev-mirror` sync full), at BLOCK_JOB_READY the mirror turns
//       write-blocking and the memory migrates, paused at pre-switchover the mirror completes (block-job-cancel of
//       a READY job), `migrate-continue`, and the target drops its export and runs (`cont`). Events, no polling.
//   (b) tern: two real daemon processes (test/harness/local-disk-nodes.ts) with the operator's sequence
//       (PrepareIncoming / StartMigration / WatchMigration / ResumeTarget / ReleaseSource).
// Both over TCP on loopback with the same TLS-PSK credentials (QEMU's tls-creds-psk, the same priority string) on
// the NBD connection and on the memory stream, and the same QEMU migration capabilities and parameters (the
// default MigrationPolicy). Total time = the source's first disk-copy command (b: the Initializing phase) to the
// target's `cont` returned; the target's QEMU is started before that in both. Runs alternate (a) and (b), each
// guest migrating back and forth; only the guest being migrated runs its workload.
//
// Prints per run and as medians: total time, split into the disk copy (to READY; its throughput: disk bytes / that
// time), memory + switchover (to the source QEMU's `completed`) and the hand-over (from there to the target's
// `cont` returned: in (b) the watch stream, the ownership record and ResumeTarget); QEMU downtime; and the guest's
// committed writes per second (its acknowledgements) in the --window-ms before the migration, during it, and in the
// --window-ms after the target runs. Each run starts after a `sync`, so no run pays for the previous one's writeback. After the last run
// each guest is stopped and its log read from the image file on the node that holds it, then checked against every
// acknowledgement its clients received (checkDurability). Last line:
// `disk_total_ratio=<(b)/(a) total> disk_downtime_delta_ms=<(b)-(a) downtime> acked_lost=<(b) lost + moved>`.
import { randomBytes, randomFillSync } from 'node:crypto';
import { open, rm, truncate, chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { AgentClient } from '../../guest/host/agent-client.js';
import { startDurableClient, type DurableClient } from '../../guest/host/durable-client.js';
import { checkDurability, parseTxLogImage, SLOT_SIZE, type ClientRecord } from '../../guest/host/txlog.js';
import type { Guest__Output, GuestSpec } from '../../proto/index.js';
import type { GuestDefinition } from '../../hypervisor-node/src/model/guest.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import type { QmpClient, QmpEvent } from '../../hypervisor-node/src/qemu/qmp-client.js';
import { GuestSupervisor } from '../../hypervisor-node/src/runtime/supervisor.js';
import { UserModeNetwork } from '../../hypervisor-node/src/network/guest-network.js';
import {
  applyChannelTls,
  listeningPort,
  TLS_CREDS_ID,
} from '../../hypervisor-node/src/migration/engine/channel.js';
import {
  exportTargetDisks,
  stopTargetExports,
} from '../../hypervisor-node/src/migration/engine/local-disks.js';
import {
  channelCapabilities,
  channelSettings,
  qemuMaxBandwidth,
  resolveMigrationPolicy,
} from '../../hypervisor-node/src/migration/engine/policy.js';
import { writePskFile } from '../../hypervisor-node/src/migration/engine/psk.js';
import { incomingSpec } from '../../hypervisor-node/src/migration/engine/target.js';
import { unary } from '../harness/control-client.js';
import { killGuestsIn } from '../harness/daemon-process.js';
import { startLocalDiskNodes, type LocalDiskNode, type LocalDiskNodes } from '../harness/local-disk-nodes.js';
import { begin, handOver, InMemoryOwnership } from '../harness/migration-driver.js';

const options = new Command()
  .option('--runs <n>', 'migrations per mode', '3')
  .option(
    '--disk-size <MiB>',
    'size of the local raw disk; its second half is written with random bytes',
    '2048',
  )
  .option('--memory-mib <n>', 'guest RAM', '256')
  .option('--window-ms <ms>', 'how long the write rate is measured before and after each migration', '5000')
  .parse()
  .opts<{ runs: string; diskSize: string; memoryMib: string; windowMs: string }>();
const runs = Number(options.runs);
const diskMiB = Number(options.diskSize);
const windowMs = Number(options.windowMs);
for (const [name, value] of Object.entries({ runs, diskMiB, windowMs, memory: Number(options.memoryMib) }))
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
if (diskMiB < 8 || diskMiB % 2 !== 0)
  throw new Error('--disk-size must be an even number of MiB, at least 8');

const MiB = 2 ** 20;
const execFileP = promisify(execFile);
const GUEST = 'bench';
const DISK_FILE = 'bench.img';
const policy = resolveMigrationPolicy();

interface Sample {
  totalMs: number;
  diskCopyMs: number;
  /** From the source's QEMU reporting the migration completed to the target's `cont` returned. */
  handOverMs: number;
  diskBytes: number;
  downtimeMs: number;
  /** Committed transactions per second in the window before, during the migration, in the window after. */
  before: number;
  during: number;
  after: number;
  /** Tern only: its phases. */
  phases?: string;
}

type Mode = 'plain' | 'tern';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

let nodes: LocalDiskNodes | undefined;
const supervisors: GuestSupervisor[] = [];
const clients: DurableClient[] = [];
let work = '';

/** The guest, the same for both modes apart from where its disk lies. */
function guestSpec(
  uuid: string,
  diskPath: string,
  kernel: { kernel: string; initrd: string; cmdline: string[] },
) {
  return {
    name: GUEST,
    uuid,
    namespace: 'default',
    cpus: 1,
    memoryMiB: Number(options.memoryMib),
    boot: {
      kernel: kernel.kernel,
      initrd: kernel.initrd,
      cmdline: [...kernel.cmdline, 'tern.dirty_pps=0', 'tern.ip=10.0.2.15/24', 'tern.txlog=/dev/vda'],
    },
    disks: [
      {
        name: 'data',
        path: diskPath,
        readOnly: false,
        format: 'raw' as const,
        bus: 'virtio' as const,
        cache: 'writeback' as const,
        io: 'threads' as const,
        storage: 'local' as const,
        boot: false,
      },
    ],
    nics: [{ mac: '52:54:00:d1:5b:01' }],
  };
}

/** A raw image of --disk-size: a hole, then random bytes in its second half. */
async function writeImage(file: string): Promise<void> {
  await rm(file, { force: true });
  const handle = await open(file, 'w', 0o666);
  try {
    const chunk = Buffer.alloc(16 * MiB);
    const half = (diskMiB / 2) * MiB;
    for (let at = half; at < 2 * half; at += chunk.length) {
      randomFillSync(chunk);
      await handle.write(chunk, 0, Math.min(chunk.length, 2 * half - at), at);
    }
    await handle.truncate(2 * half);
  } finally {
    await handle.close();
  }
  await chmod(file, 0o666);
}

async function sparseImage(file: string): Promise<void> {
  await (await open(file, 'wx', 0o666)).close();
  await truncate(file, diskMiB * MiB);
  await chmod(file, 0o666);
}

/** Resolves with the first event `name` matching `match`; listens from the call on. */
function nextEvent(
  qmp: QmpClient,
  name: string,
  match: (data: Record<string, unknown>) => boolean = () => true,
  timeoutMs = 600_000,
): Promise<QmpEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      qmp.off('event', listener);
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (event: QmpEvent): void => {
      if (event.event !== name || !match((event.data ?? {}) as Record<string, unknown>)) return;
      clearTimeout(timer);
      qmp.off('event', listener);
      resolve(event);
    };
    qmp.on('event', listener);
  });
}

/** Committed transactions per second with acknowledgement times in [fromMs, toMs) (performance.now()). */
function rate(client: DurableClient, fromMs: number, toMs: number): number {
  const count = client.log.acks.filter((ack) => ack.atMs >= fromMs && ack.atMs < toMs).length;
  return toMs > fromMs ? (count * 1000) / (toMs - fromMs) : 0;
}

/** performance.now() of a Date.now() instant. */
const perfOf = (unixMs: number): number => unixMs - performance.timeOrigin;

/** Reads the records of the log in a raw image (the guest stopped): only as much of the file as they can fill. */
async function recordsIn(file: string, atMost: number) {
  const bytes = Math.min(diskMiB * MiB, (atMost + 2) * SLOT_SIZE);
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    await handle.read(buffer, 0, bytes, 0);
    return parseTxLogImage(buffer).records;
  } finally {
    await handle.close();
  }
}

/** Runs a durable client for the window before the migration, the migration itself, and the window after. */
async function measured(
  label: string,
  port: () => number,
  migrate: () => Promise<{
    startedAtMs: number;
    resumedAtMs: number;
    rest: Omit<Sample, 'before' | 'during' | 'after'>;
  }>,
  logs: ClientRecord[],
): Promise<Sample> {
  // What the previous run wrote is on the disk before this one starts, so that its writeback does not slow this one.
  await execFileP('sync');
  const client = startDurableClient({
    name: label,
    endpoint: () => ({ host: '127.0.0.1', port: port() }),
    durationMs: 3_600_000,
  });
  clients.push(client);
  const warm = performance.now();
  while (client.log.acks.length < 20) {
    if (performance.now() - warm > 60_000)
      throw new Error(`${label}: the workload did not start: ${JSON.stringify(client.log.errors.slice(-3))}`);
    await sleep(20);
  }
  await sleep(windowMs);
  const { startedAtMs, resumedAtMs, rest } = await migrate();
  const [from, to] = [perfOf(startedAtMs), perfOf(resumedAtMs)];
  await sleep(windowMs + 200);
  logs.push(await client.stop());
  return {
    ...rest,
    before: rate(client, from - windowMs, from),
    during: rate(client, from, to),
    after: rate(client, to, to + windowMs),
  };
}

async function main(): Promise<void> {
  nodes = await startLocalDiskNodes('tern-dbench-');
  work = nodes.work;
  const { images } = nodes;

  // (a) plain: two supervisors in this process, each with its own image root (the disk lies at a different path
  // on each side; QEMU's node names, which the migration matches, are the same).
  const plain = ['pa', 'pb'].map((n) => {
    const root = join(work, `${n}-images`);
    const supervisor = new GuestSupervisor({
      stateRoot: join(work, n),
      accel: 'tcg',
      policy: {
        imageRoots: { namespaceRoot: root, sharedRoots: [images.root] },
        maxCpus: 2,
        maxMemoryMiB: 4096,
      },
      network: new UserModeNetwork(7000),
    });
    supervisors.push(supervisor);
    return { stateRoot: join(work, n), disk: join(root, 'default', DISK_FILE), supervisor };
  });
  for (const side of plain) await mkdir(join(side.disk, '..'), { recursive: true, mode: 0o755 });

  // (b) tern: the two daemons' nodes.
  const tern: LocalDiskNode[] = [nodes.a, nodes.b];
  const ternDisk = (node: LocalDiskNode) => join(node.disks, DISK_FILE);

  console.log(`writing two ${diskMiB} MiB images (${diskMiB / 2} MiB of random bytes each)...`);
  // Each written the same way (a copy could fill the hole with zeros, which the mirror would then move as data).
  for (const file of [ternDisk(nodes.a), plain[0]!.disk]) await writeImage(file);
  const allocated = async (file: string) => `${(((await stat(file)).blocks * 512) / MiB).toFixed(0)} MiB`;
  console.log(
    `allocated: tern ${await allocated(ternDisk(nodes.a))}, plain ${await allocated(plain[0]!.disk)}`,
  );

  const plainSpec: GuestDefinition = guestSpec(
    '5e1d7a11-2b3c-4d5e-8f90-a1b2c3d4e501',
    plain[0]!.disk,
    images,
  );
  await plain[0]!.supervisor.create(plainSpec);
  const ternSpec = guestSpec('5e1d7a11-2b3c-4d5e-8f90-a1b2c3d4e502', join(nodes.shared, DISK_FILE), images);
  const wire: GuestSpec = {
    ...ternSpec,
    memoryMib: ternSpec.memoryMiB,
    disks: ternSpec.disks.map((d) => ({
      ...d,
      format: 'DISK_FORMAT_RAW',
      bus: 'DISK_BUS_VIRTIO',
      cache: 'DISK_CACHE_WRITEBACK',
      io: 'DISK_IO_THREADS',
      storage: 'DISK_STORAGE_LOCAL',
    })),
  };
  await unary((done) => nodes!.a.control.createGuest({ spec: wire }, done));
  const agents = [
    await AgentClient.connect(guestPaths(plain[0]!.stateRoot, GUEST).agent, { timeoutMs: 30_000 }),
    await AgentClient.connect(guestPaths(nodes.a.stateDir, GUEST).agent, { timeoutMs: 30_000 }),
  ];
  console.log(`booting two ${options.memoryMib} MiB guests...`);
  await Promise.all(agents.map((agent) => agent.waitReady(300_000)));
  agents.forEach((agent) => agent.close());

  const plainPort = (at: number): number => {
    const nic = plain[at]!.supervisor.get(GUEST)?.nics?.[0];
    if (nic?.kind !== 'user') throw new Error('the plain guest has no user-network port');
    return nic.hostPort;
  };
  const ternPort = async (node: LocalDiskNode): Promise<number> => {
    const info = await unary<Guest__Output>((done) => node.control.getGuest({ name: GUEST }, done));
    const port = info.nics[0]?.user?.hostPort;
    if (!port) throw new Error(`no user-network port on ${node.name}`);
    return port;
  };

  let plainAt = 0;
  let plainServicePort = plainPort(0);
  const plainRun = async (): Promise<{
    startedAtMs: number;
    resumedAtMs: number;
    rest: Omit<Sample, 'before' | 'during' | 'after'>;
  }> => {
    const from = plain[plainAt]!;
    const to = plain[1 - plainAt]!;
    const status = from.supervisor.get(GUEST)!;
    const key = randomBytes(32);
    const identity = `plain-${Date.now()}`;
    const tlsIn = await writePskFile(join(work, `${identity}-in`), identity, key);
    const tlsOut = await writePskFile(join(work, `${identity}-out`), identity, key);
    // Target: its empty image, an incoming QEMU, the memory stream's listener and the NBD export, both behind TLS.
    await sparseImage(to.disk);
    const spec = incomingSpec(status.spec, status.accelerator);
    await to.supervisor.create(
      { ...spec, disks: spec.disks.map((disk) => ({ ...disk, path: to.disk })) },
      { incoming: true },
    );
    const tq = to.supervisor.qmp(GUEST);
    // The workload reconnects only once its connection to the source breaks: to the target, which runs by then.
    plainServicePort = plainPort(1 - plainAt);
    await tq.migrateSetCapabilities(channelCapabilities(channelSettings(policy)));
    const inChannel = { transport: 'tcp' as const, host: '127.0.0.1', port: 0, tls: tlsIn };
    await applyChannelTls(tq, inChannel, 'server');
    await tq.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
    const port = await listeningPort(tq);
    const nbdPort = await exportTargetDisks(tq, '127.0.0.1', [0], TLS_CREDS_ID);
    const targetDone = nextEvent(tq, 'MIGRATION', (d) => d.status === 'completed' || d.status === 'failed');
    // Source: the same capabilities and parameters as the daemons' (default policy), pause before switchover.
    const sq = from.supervisor.qmp(GUEST);
    await sq.migrateSetCapabilities({
      ...channelCapabilities(channelSettings(policy)),
      'pause-before-switchover': true,
      'auto-converge': policy.allowAutoConverge,
    });
    await sq.migrateSetParameters({
      'max-bandwidth': qemuMaxBandwidth(policy),
      'downtime-limit': policy.downtimeMs,
      // As the engine sets them: auto-converge on, its throttle capped at 1% (no convergence action here).
      ...(policy.allowAutoConverge
        ? { 'cpu-throttle-initial': 1, 'cpu-throttle-increment': 1, 'max-cpu-throttle': 1 }
        : {}),
    });
    await applyChannelTls(sq, { ...inChannel, port, tls: tlsOut }, 'client');
    const ready = nextEvent(sq, 'BLOCK_JOB_READY', (d) => d.device === 'plain-mirror0');
    const startedAtMs = Date.now();
    await sq.execute('blockdev-add', {
      driver: 'nbd',
      'node-name': 'plain-nbd0',
      server: { type: 'inet', host: '127.0.0.1', port: String(nbdPort) },
      export: 'disk0',
      'tls-creds': TLS_CREDS_ID,
    });
    await sq.execute('blockdev-mirror', {
      'job-id': 'plain-mirror0',
      device: 'disk0',
      target: 'plain-nbd0',
      sync: 'full',
    });
    const readyEvent = await ready;
    const readyAtMs = Date.now();
    await sq.execute('block-job-change', {
      id: 'plain-mirror0',
      type: 'mirror',
      'copy-mode': 'write-blocking',
    });
    const paused = nextEvent(sq, 'MIGRATION', (d) =>
      ['pre-switchover', 'failed', 'cancelled'].includes(d.status as string),
    );
    await sq.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    const pausedEvent = await paused;
    if (pausedEvent.data?.status !== 'pre-switchover')
      throw new Error(`plain: the migration ${String(pausedEvent.data?.status)}`);
    // Paused: the mirror completes with the target a point-in-time copy, then the device state crosses.
    const completed = nextEvent(sq, 'BLOCK_JOB_COMPLETED', (d) => d.device === 'plain-mirror0');
    await sq.execute('block-job-cancel', { device: 'plain-mirror0' });
    const completedEvent = await completed;
    if (completedEvent.data?.error !== undefined)
      throw new Error(`plain: ${String(completedEvent.data.error)}`);
    await sq.execute('blockdev-del', { 'node-name': 'plain-nbd0' });
    const sourceDone = nextEvent(sq, 'MIGRATION', (d) => d.status === 'completed' || d.status === 'failed');
    await sq.execute('migrate-continue', { state: 'pre-switchover' });
    const doneEvent = await sourceDone;
    if (doneEvent.data?.status !== 'completed') throw new Error('plain: the migration failed');
    const completedAtMs = Date.now();
    if ((await targetDone).data?.status !== 'completed')
      throw new Error('plain: the incoming migration failed');
    await stopTargetExports(tq, [0]);
    await tq.cont();
    const resumedAtMs = Date.now();
    const info = await sq.queryMigrate();
    plainAt = 1 - plainAt;
    await from.supervisor.delete(GUEST, { timeoutMs: 0 });
    await rm(from.disk);
    return {
      startedAtMs,
      resumedAtMs,
      rest: {
        totalMs: resumedAtMs - startedAtMs,
        diskCopyMs: readyAtMs - startedAtMs,
        handOverMs: resumedAtMs - completedAtMs,
        diskBytes: Number(readyEvent.data?.len ?? 0),
        downtimeMs: info.downtime ?? 0,
      },
    };
  };

  const record = new InMemoryOwnership();
  record.set(GUEST, nodes.a.name);
  let ternAt = 0;
  let ternServicePort = await ternPort(nodes.a);
  const ternRun = async (): Promise<{
    startedAtMs: number;
    resumedAtMs: number;
    rest: Omit<Sample, 'before' | 'during' | 'after'>;
  }> => {
    const from = tern[ternAt]!;
    const to = tern[1 - ternAt]!;
    const run = await begin({
      guest: GUEST,
      from,
      to,
      // The workload reconnects only once its connection to the source breaks: to the target, which runs by then.
      onPrepared: async () => void (ternServicePort = await ternPort(to)),
    });
    const initializing = await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_INITIALIZING');
    const inSync = await run.until((e) => e.phase?.reason.startsWith('the local disks are in sync') === true);
    const result = await handOver(run, { guest: GUEST, from, to, record });
    const outcome = await run.outcome;
    if (result.owner !== to.name) throw new Error(`tern: ${outcome.result} ${outcome.reason}`);
    // The source daemon's engine saw QEMU's `completed` (its phase change to Completed).
    const completed = await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_COMPLETED');
    ternAt = 1 - ternAt;
    const startedAtMs = Number(initializing.atUnixMs);
    // The note says how many bytes the mirrors had moved when they were in sync (progress events come per poll).
    const diskBytes = Number(/\((\d+) bytes\)/.exec(inSync.phase!.reason)?.[1] ?? 0);
    return {
      startedAtMs,
      resumedAtMs: result.resumedAtMs!,
      rest: {
        totalMs: result.resumedAtMs! - startedAtMs,
        diskCopyMs: Number(inSync.atUnixMs) - startedAtMs,
        handOverMs: result.resumedAtMs! - Number(completed.atUnixMs),
        diskBytes,
        downtimeMs: outcome.downtimeMs,
        phases: outcome.phases
          .map((p) => `${p.phase.replace('MIGRATION_PHASE_', '')} ${p.durationMs}`)
          .join(', '),
      },
    };
  };

  const results: Record<Mode, Sample[]> = { plain: [], tern: [] };
  const logs: Record<Mode, ClientRecord[]> = { plain: [], tern: [] };
  const show = (s: Sample): string =>
    `total ${s.totalMs.toFixed(0)} ms (disk ${s.diskCopyMs.toFixed(0)} ms, ` +
    `${(s.diskBytes / 1e6 / (s.diskCopyMs / 1000)).toFixed(0)} MB/s; memory + switchover ` +
    `${(s.totalMs - s.diskCopyMs - s.handOverMs).toFixed(0)} ms; hand-over ${s.handOverMs.toFixed(0)} ms), ` +
    `QEMU downtime ${s.downtimeMs.toFixed(0)} ms, ` +
    `writes/s before ${s.before.toFixed(0)} / during ${s.during.toFixed(0)} / after ${s.after.toFixed(0)}`;
  for (let i = 1; i <= runs; i++) {
    for (const mode of ['plain', 'tern'] as const) {
      const s =
        mode === 'plain'
          ? await measured(`p${i}`, () => plainServicePort, plainRun, logs.plain)
          : await measured(`t${i}`, () => ternServicePort, ternRun, logs.tern);
      results[mode].push(s);
      console.log(`run ${i} ${mode.padEnd(5)} ${show(s)}${s.phases ? `; phases (ms) ${s.phases}` : ''}`);
    }
  }

  // Every acknowledged transaction is on the disk the guest ended on, read from its image with the guest stopped.
  const sent = (mode: Mode) =>
    clients.reduce((n, c) => n + (c.log.name.startsWith(mode[0]!) ? c.log.sent : 0), 0);
  await plain[plainAt]!.supervisor.delete(GUEST, { timeoutMs: 10_000 });
  const plainReport = checkDurability(await recordsIn(plain[plainAt]!.disk, sent('plain')), logs.plain);
  await unary((done) => tern[ternAt]!.control.stopGuest({ name: GUEST, timeoutMs: 10_000 }, done));
  const ternReport = checkDurability(await recordsIn(ternDisk(tern[ternAt]!), sent('tern')), logs.tern);
  console.log(`durability plain: ${plainReport.text}`);
  console.log(`durability tern:  ${ternReport.text}`);

  const med = (mode: Mode, pick: (s: Sample) => number) => median(results[mode].map(pick));
  for (const mode of ['plain', 'tern'] as const) {
    const m = (pick: (s: Sample) => number) => med(mode, pick);
    console.log(
      `median ${mode.padEnd(5)} total ${m((s) => s.totalMs).toFixed(0)} ms, disk copy ${m((s) => s.diskCopyMs).toFixed(0)} ms ` +
        `(${m((s) => s.diskBytes / 1e6 / (s.diskCopyMs / 1000)).toFixed(0)} MB/s), memory + switchover ` +
        `${m((s) => s.totalMs - s.diskCopyMs - s.handOverMs).toFixed(0)} ms, hand-over ` +
        `${m((s) => s.handOverMs).toFixed(0)} ms, QEMU downtime ${m((s) => s.downtimeMs).toFixed(0)} ms, ` +
        `writes/s before ${m((s) => s.before).toFixed(0)} / during ${m((s) => s.during).toFixed(0)} / after ${m((s) => s.after).toFixed(0)}`,
    );
  }
  const totalRatio = med('tern', (s) => s.totalMs) / med('plain', (s) => s.totalMs);
  const downtimeDelta = med('tern', (s) => s.downtimeMs) - med('plain', (s) => s.downtimeMs);
  console.log(
    `disk_total_ratio=${totalRatio.toFixed(3)} disk_downtime_delta_ms=${downtimeDelta.toFixed(1)} ` +
      `acked_lost=${ternReport.lost.length + ternReport.moved.length}`,
  );
}

async function cleanup(): Promise<void> {
  await Promise.all(clients.map((client) => client.stop()));
  for (const supervisor of supervisors) {
    for (const guest of supervisor.list())
      await supervisor.delete(guest.name, { timeoutMs: 0 }).catch(() => undefined);
    await supervisor.close();
  }
  for (const n of ['pa', 'pb']) if (work) await killGuestsIn(join(work, n));
  await nodes?.close();
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (error: unknown) => {
    console.error(error);
    void cleanup().then(() => process.exit(1));
  },
);
