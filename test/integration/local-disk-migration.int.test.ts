// Live migration of `storage: local` disks between TWO real daemon processes with real QEMU (TCG), driven with the
// operator's own sequence (test/harness/migration-driver.ts): the target creates the images and exports them over
// NBD behind the migration's TLS-PSK, the source mirrors them before the memory (hypervisor-node/src/migration/
// engine/local-disks.ts).
//
// "The same path on another node" on one host: test/harness/local-disk-nodes.ts (each daemon in a mount namespace of
// its own, its own directory behind the one path; the qcow2 overlay's base under a shared image root both read).
//
// The test guest does not write to its data disk (its agent has no disk workload yet), and nothing else writes the
// images while a guest runs: each image is filled with a known pattern before the guest starts, and after the
// migration the target's copy must hold exactly what the source's held (sha256 of the raw files; qemu-img compare
// for qcow2, whose layout differs), read once the QEMUs are stopped.
import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, copyFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { AgentClient } from '../../guest/host/agent-client.js';
import type {
  Guest__Output,
  MigrationEvent__Output,
  MigrationOutcome__Output,
  MigrationState__Output,
  WireMigrationPolicy,
} from '../../proto/index.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import type { TestGuestImages } from '../fixtures/test-guest.js';
import { unary } from '../harness/control-client.js';
import {
  assertAtMostOneRunning,
  begin,
  handOver,
  InMemoryOwnership,
  type BeginOptions,
  type RunningMigration,
} from '../harness/migration-driver.js';
import { startLocalDiskNodes, type LocalDiskNode, type LocalDiskNodes } from '../harness/local-disk-nodes.js';
import { TcpLink } from '../harness/tcp-link.js';
import { expectQuiescingBeforeFreezing } from '../harness/quiesce-checks.js';
import { eventually } from '../harness/eventually.js';

const run = promisify(execFile);
const MiB = 2 ** 20;

type Node = LocalDiskNode;

let work: string;
let shared: string;
let base: string;
let images: TestGuestImages;
let nodes: LocalDiskNodes | undefined;
let nodeA: Node;
let nodeB: Node;
const record = new InMemoryOwnership();
const agents: AgentClient[] = [];

const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** A raw image of `sizeMiB` filled with random bytes, in node A's directory. */
async function rawImage(file: string, sizeMiB: number): Promise<void> {
  await writeFile(join(nodeA.disks, file), randomBytes(sizeMiB * MiB), { mode: 0o666 });
  await chmod(join(nodeA.disks, file), 0o666);
}

async function boot(
  name: string,
  uuidSuffix: string,
  disk: { file: string; format: 'DISK_FORMAT_RAW' | 'DISK_FORMAT_QCOW2' },
  cmdline = ['tern.wss_mib=8'],
): Promise<AgentClient> {
  const spec = {
    name,
    uuid: `7d1e7a11-2b3c-4d5e-8f90-a1b2c3d4${uuidSuffix}`,
    namespace: 'default',
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1', ...cmdline] },
    disks: [
      {
        name: 'data',
        path: join(shared, disk.file),
        readOnly: false,
        format: disk.format,
        bus: 'DISK_BUS_VIRTIO' as const,
        cache: 'DISK_CACHE_WRITEBACK' as const,
        io: 'DISK_IO_THREADS' as const,
        storage: 'DISK_STORAGE_LOCAL' as const,
        boot: false,
      },
    ],
    nics: [],
  };
  await unary((done) => nodeA.control.createGuest({ spec }, done));
  const agent = await AgentClient.connect(guestPaths(nodeA.stateDir, name).agent, { timeoutMs: 30_000 });
  agents.push(agent);
  await agent.waitReady(90_000);
  record.set(name, nodeA.name);
  return agent;
}

async function start(guest: string, policy: WireMigrationPolicy = {}, extra: Partial<BeginOptions> = {}) {
  let targetAgent: AgentClient | undefined;
  const migration = await begin({
    guest,
    from: nodeA,
    to: nodeB,
    policy,
    ...extra,
    onPrepared: async () => {
      targetAgent = await AgentClient.connect(guestPaths(nodeB.stateDir, guest).agent, { timeoutMs: 30_000 });
      agents.push(targetAgent);
    },
  });
  return { migration, targetAgent: () => targetAgent! };
}

async function stopGuest(node: Node, name: string): Promise<void> {
  await unary((done) => node.control.stopGuest({ name, timeoutMs: 3000 }, done));
}

async function deleteGuest(node: Node, name: string): Promise<void> {
  await unary((done) => node.control.deleteGuest({ name }, done));
}

/** The migration ended before the hand-over: the source runs the guest, the target keeps nothing of it. */
async function expectStillOnSource(
  guest: string,
  migration: RunningMigration,
  agent: AgentClient,
  file: string,
) {
  const result = await handOver(migration, { guest, from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeA.name);
  expect(await assertAtMostOneRunning(guest, [nodeA, nodeB])).toEqual(['GUEST_PHASE_RUNNING', 'ABSENT']);
  expect(await exists(join(nodeB.disks, file))).toBe(false);
  expect(await readdir(nodeB.disks)).toEqual([]);
  for (const node of [nodeA, nodeB])
    expect(await readdir(join(node.stateDir, '.migrations')).catch(() => [])).toEqual([]);
  const verify = await agent.verify();
  expect(verify.ok).toBe(true);
}

const diskProgress = (migration: RunningMigration): number =>
  Math.max(0, ...migration.events.map((e) => e.progress?.diskTransferredBytes ?? 0));

function report(label: string, outcome: MigrationOutcome__Output, migration: RunningMigration): void {
  const totals = migration.events.map((e) => e.progress?.diskTotalBytes ?? 0);
  console.log(
    `${label}: ${outcome.result} (${outcome.reason}) in ${outcome.durationMs} ms; disks ${(diskProgress(migration) / MiB).toFixed(1)}/${(Math.max(0, ...totals) / MiB).toFixed(1)} MiB; ` +
      `phases ${outcome.phases.map((p) => `${p.phase.replace('MIGRATION_PHASE_', '')} ${p.durationMs} ms`).join(' → ')}`,
  );
}

beforeAll(async () => {
  nodes = await startLocalDiskNodes('tern-ldm-');
  ({ work, shared, images, a: nodeA, b: nodeB } = nodes);
  base = join(nodes.bases, 'base.raw');
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.close();
  await nodes?.close();
});

test('a raw local disk migrates with the guest (the memory over 2 multifd channels): the target image equals the source image', async () => {
  await rawImage('raw.img', 64);
  const before = await sha256(join(nodeA.disks, 'raw.img'));
  await boot('raw', '0001', { file: 'raw.img', format: 'DISK_FORMAT_RAW' });
  const source = await unary<Guest__Output>((done) => nodeA.control.getGuest({ name: 'raw' }, done));
  expect(source.localDisks).toEqual([
    {
      name: 'data',
      virtualSizeBytes: 64 * MiB,
      backingFile: '',
      backingFormat: 'DISK_FORMAT_UNSPECIFIED',
      backingIdentity: '',
    },
  ]);
  // The disk's NBD stream is independent of the memory's channels.
  const { migration, targetAgent } = await start('raw', { multifdChannels: 2 });
  const result = await handOver(migration, { guest: 'raw', from: nodeA, to: nodeB, record });
  const outcome = await migration.outcome;
  report('raw 64 MiB, multifd 2', outcome, migration);
  expect(outcome.result).toBe('RESULT_COMPLETED');
  expect(outcome.quiesce).toMatchObject({
    error: '',
    disks: [{ name: 'data', storage: 'DISK_STORAGE_LOCAL', mirrorCompleted: true, flushed: true }],
  });
  expectQuiescingBeforeFreezing(outcome);
  expect(result.owner).toBe(nodeB.name);
  expect(diskProgress(migration)).toBeGreaterThanOrEqual(64 * MiB);
  expect(await assertAtMostOneRunning('raw', [nodeA, nodeB])).toEqual(['ABSENT', 'GUEST_PHASE_RUNNING']);
  expect((await targetAgent().verify()).ok).toBe(true);
  // ReleaseSource removed the source's (stale) copy once the target ran the guest.
  expect(await exists(join(nodeA.disks, 'raw.img'))).toBe(false);
  await stopGuest(nodeB, 'raw');
  expect(await sha256(join(nodeB.disks, 'raw.img'))).toBe(before);
  await deleteGuest(nodeB, 'raw');
  // The guest's disk stays on the node that runs it; deleting a guest never deletes its images.
  await rm(join(nodeB.disks, 'raw.img'));
}, 240_000);

test('retain_local_disks: an unknown name is refused before the release; the disk named is moved aside, its path freed', async () => {
  await rawImage('kept.img', 16);
  const before = await sha256(join(nodeA.disks, 'kept.img'));
  await boot('kept', '0011', { file: 'kept.img', format: 'DISK_FORMAT_RAW' });
  const { migration } = await start('kept');
  // The target resumes the guest, then the source refuses to be released with a name that is no disk of the guest.
  await expect(
    handOver(migration, { guest: 'kept', from: nodeA, to: nodeB, record, retainLocalDisks: ['nosuch'] }),
  ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/nosuch/) });
  const [onA, onB] = await assertAtMostOneRunning('kept', [nodeA, nodeB]);
  expect(onB).toBe('GUEST_PHASE_RUNNING');
  // Not released: the source still holds its (paused) guest and its image at the path.
  expect(onA).not.toBe('ABSENT');
  expect(await exists(join(nodeA.disks, 'kept.img'))).toBe(true);
  const release = () =>
    unary<MigrationState__Output>((done) =>
      nodeA.migration.releaseSource(
        {
          migrationId: migration.id,
          recordedOwner: nodeB.name,
          epoch: record.epoch('kept') ?? 0,
          removeLocalDisks: true,
          retainLocalDisks: ['data'],
        },
        done,
      ),
    );
  const released = await release();
  expect(released.stage).toBe('MIGRATION_STAGE_RELEASED');
  // The source says where the copy is; asked again (as a later run of the operator would), from its tombstone.
  // (The daemon names it by the path the guest's spec gives: here its namespace image root, which is this test's
  // disk directory in the daemon's mount namespace only.)
  expect(released.retainedLocalImages.map((file) => basename(file))).toEqual([
    `kept.img.tern-retained-${migration.id}`,
  ]);
  expect((await release()).retainedLocalImages).toEqual(released.retainedLocalImages);
  expect(await assertAtMostOneRunning('kept', [nodeA, nodeB])).toEqual(['ABSENT', 'GUEST_PHASE_RUNNING']);
  // Moved aside, never copied or changed: the path is free for a migration back.
  expect((await readdir(nodeA.disks)).filter((f) => f.startsWith('kept.img'))).toEqual([
    `kept.img.tern-retained-${migration.id}`,
  ]);
  expect(await sha256(join(nodeA.disks, `kept.img.tern-retained-${migration.id}`))).toBe(before);
  await deleteGuest(nodeB, 'kept');
  await rm(join(nodeB.disks, 'kept.img'));
  await rm(join(nodeA.disks, `kept.img.tern-retained-${migration.id}`));
}, 240_000);

test('a qcow2 overlay migrates onto the same base: only the overlay is copied', async () => {
  await writeFile(base, randomBytes(32 * MiB), { mode: 0o644 });
  const overlay = join(nodeA.disks, 'overlay.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, '64M']);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 6M', '-c', 'write -P 0xa5 40M 2M', overlay]);
  await chmod(overlay, 0o666);
  const before = join(work, 'overlay-before.qcow2');
  await copyFile(overlay, before);
  await boot('overlay', '0002', { file: 'overlay.qcow2', format: 'DISK_FORMAT_QCOW2' });
  const { migration, targetAgent } = await start('overlay');
  const result = await handOver(migration, { guest: 'overlay', from: nodeA, to: nodeB, record });
  const outcome = await migration.outcome;
  report('qcow2 overlay', outcome, migration);
  expect(outcome.result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  // sync top: the mirror covers the overlay's allocated 8 MiB, not the 32 MiB base.
  expect(diskProgress(migration)).toBeLessThan(16 * MiB);
  expect((await targetAgent().verify()).ok).toBe(true);
  await stopGuest(nodeB, 'overlay');
  const copy = join(nodeB.disks, 'overlay.qcow2');
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', copy])).stdout) as Record<
    string,
    unknown
  >;
  expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 64 * MiB, 'backing-filename': base });
  // The guest-visible content (overlay over base) is the same as the source's before the migration.
  const compared = await run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', before, copy]);
  expect(compared.stdout).toMatch(/identical/);
  await deleteGuest(nodeB, 'overlay');
  await rm(copy);
}, 240_000);

test('a watch whose progress interval outlasts the migration still gets the last sample before the outcome: the disks copied in full', async () => {
  const pacedBase = join(nodes!.bases, 'paced-base.raw');
  await writeFile(pacedBase, randomBytes(8 * MiB), { mode: 0o644 });
  const overlay = join(nodeA.disks, 'paced.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', pacedBase, '-F', 'raw', overlay, '16M']);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x3c 2M 3M', overlay]);
  await chmod(overlay, 0o666);
  await boot('paced', '0014', { file: 'paced.qcow2', format: 'DISK_FORMAT_QCOW2' });
  // An interval no migration here lasts: every sample after the first one comes in too soon. The operator's
  // stream (500 ms) met the same with a copy and a memory migration over within one interval.
  const { migration } = await start('paced', {}, { progressIntervalMs: 600_000 });
  const result = await handOver(migration, { guest: 'paced', from: nodeA, to: nodeB, record });
  const outcome = await migration.outcome;
  report('qcow2 overlay, one progress per 10 minutes', outcome, migration);
  expect(outcome.result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  // The last progress of the stream (held back, then sent before the outcome) is the migration's last sample, taken
  // once the mirrors were completed, with their final figures: everything they had to copy was copied (the 3 MiB
  // written into the overlay, and whatever the guest wrote meanwhile; never the base).
  const last = migration.events.findLast((e) => e.progress)!.progress!;
  expect(last.diskTotalBytes).toBeGreaterThanOrEqual(3 * MiB);
  expect(last.diskTotalBytes).toBeLessThan(8 * MiB);
  expect(last.diskTransferredBytes).toBe(last.diskTotalBytes);
  await stopGuest(nodeB, 'paced');
  await deleteGuest(nodeB, 'paced');
  await rm(join(nodeB.disks, 'paced.qcow2'));
}, 240_000);

describe('a 256 MiB local disk copied at 16 MiB/s', () => {
  const slow: WireMigrationPolicy = { bandwidthBytesPerSec: 16 * MiB };

  test('cancel during the disk copy: the source runs on with its disk intact, the target keeps no file', async () => {
    await rawImage('cancel.img', 256);
    const before = await sha256(join(nodeA.disks, 'cancel.img'));
    const agent = await boot('cancel', '0003', { file: 'cancel.img', format: 'DISK_FORMAT_RAW' });
    const { migration, targetAgent } = await start('cancel', slow);
    await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
    expect(await exists(join(nodeB.disks, 'cancel.img'))).toBe(true);
    await unary((done) =>
      nodeA.migration.cancelMigration(
        { migrationId: migration.id, reason: 'test: cancel during the disk copy' },
        done,
      ),
    );
    const outcome = await migration.outcome;
    report('cancel during the disk copy', outcome, migration);
    expect(outcome).toMatchObject({
      result: 'RESULT_ABORTED',
      cause: 'CAUSE_CANCELLED',
      sourceRunState: 'running',
    });
    targetAgent().close();
    await expectStillOnSource('cancel', migration, agent, 'cancel.img');
    await stopGuest(nodeA, 'cancel');
    expect(await sha256(join(nodeA.disks, 'cancel.img'))).toBe(before);
    await deleteGuest(nodeA, 'cancel');
  }, 240_000);

  test('the target QEMU killed mid-mirror: the migration fails, the source runs on, the target keeps no file', async () => {
    await rawImage('killed.img', 256);
    const before = await sha256(join(nodeA.disks, 'killed.img'));
    const agent = await boot('killed', '0004', { file: 'killed.img', format: 'DISK_FORMAT_RAW' });
    const { migration, targetAgent } = await start('killed', slow);
    await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
    const target = await unary<Guest__Output>((done) => nodeB.control.getGuest({ name: 'killed' }, done));
    process.kill(target.pid, 'SIGKILL');
    const outcome = await migration.outcome;
    report('target QEMU killed mid-mirror', outcome, migration);
    expect(outcome).toMatchObject({
      result: 'RESULT_FAILED',
      cause: 'CAUSE_CONNECTION',
      sourceRunState: 'running',
    });
    expect(outcome.reason).toMatch(/copying the local disks failed/);
    targetAgent().close();
    await expectStillOnSource('killed', migration, agent, 'killed.img');
    await stopGuest(nodeA, 'killed');
    expect(await sha256(join(nodeA.disks, 'killed.img'))).toBe(before);
    await deleteGuest(nodeA, 'killed');
  }, 240_000);

  test('a file at the disk path on the target: PrepareIncoming refuses, the file is left untouched', async () => {
    await rawImage('taken.img', 4);
    await writeFile(join(nodeB.disks, 'taken.img'), 'not yours');
    await boot('taken', '0005', { file: 'taken.img', format: 'DISK_FORMAT_RAW' });
    await expect(start('taken')).rejects.toThrow(/already exists on this node; it is never overwritten/);
    expect(await readFile(join(nodeB.disks, 'taken.img'), 'utf8')).toBe('not yours');
    expect(await assertAtMostOneRunning('taken', [nodeA, nodeB])).toEqual(['GUEST_PHASE_RUNNING', 'ABSENT']);
    await deleteGuest(nodeA, 'taken');
    await rm(join(nodeB.disks, 'taken.img'));
  }, 240_000);

  test('the NBD connection drops mid-mirror: the migration fails, the source runs on, the target keeps no file', async () => {
    await rawImage('cut.img', 256);
    const before = await sha256(join(nodeA.disks, 'cut.img'));
    const agent = await boot('cut', '0006', { file: 'cut.img', format: 'DISK_FORMAT_RAW' });
    let link: TcpLink | undefined;
    const { migration, targetAgent } = await start('cut', slow, {
      connectDisksVia: async (endpoint) => {
        link = await TcpLink.open(endpoint);
        return link.endpoint;
      },
    });
    try {
      await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
      link!.cut();
      const outcome = await migration.outcome;
      report('NBD connection cut mid-mirror', outcome, migration);
      expect(outcome).toMatchObject({
        result: 'RESULT_FAILED',
        cause: 'CAUSE_CONNECTION',
        sourceRunState: 'running',
      });
      expect(outcome.reason).toMatch(/copying the local disks failed/);
    } finally {
      await link?.close();
    }
    targetAgent().close();
    await expectStillOnSource('cut', migration, agent, 'cut.img');
    await stopGuest(nodeA, 'cut');
    expect(await sha256(join(nodeA.disks, 'cut.img'))).toBe(before);
    await deleteGuest(nodeA, 'cut');
  }, 240_000);
});

test('the NBD link cut while the guest is held in Quiescing: the mirror cannot complete, the migration fails there, the source runs on', async () => {
  await rawImage('quiesce.img', 16);
  const before = await sha256(join(nodeA.disks, 'quiesce.img'));
  const agent = await boot('quiesce', '0013', { file: 'quiesce.img', format: 'DISK_FORMAT_RAW' });
  let link: TcpLink | undefined;
  // hold_in_quiescing stops the step after the pause and before the mirrors are completed: the fault lands there.
  const { migration, targetAgent } = await start(
    'quiesce',
    {},
    {
      holdInQuiescing: true,
      connectDisksVia: async (endpoint) => {
        link = await TcpLink.open(endpoint);
        return link.endpoint;
      },
    },
  );
  try {
    await migration.until((e) => e.phase?.to === 'MIGRATION_PHASE_QUIESCING');
    link!.cut();
    await unary((done) => nodeA.migration.continueMigration({ migrationId: migration.id }, done));
    const outcome = await migration.outcome;
    report('NBD link cut in Quiescing', outcome, migration);
    console.log(`quiesce: ${JSON.stringify(outcome.quiesce)}`);
    expect(outcome).toMatchObject({
      result: 'RESULT_FAILED',
      cause: 'CAUSE_CONNECTION',
      sourceRunState: 'running',
    });
    expect(outcome.reason).toMatch(/^quiescing failed: completing the disk copy failed: /);
    expect(outcome.quiesce).toMatchObject({
      error: outcome.reason,
      disks: [
        {
          name: 'data',
          storage: 'DISK_STORAGE_LOCAL',
          writesAfterPause: 0,
          flushesAfterPause: 0,
          otherAfterPause: 0,
          mirrorCompleted: false,
        },
      ],
    });
    // The failure ended the step: the device state never started to cross.
    expect(outcome.phases.map((p) => p.phase)).not.toContain('MIGRATION_PHASE_FREEZING');
  } finally {
    await link?.close();
  }
  targetAgent().close();
  await expectStillOnSource('quiesce', migration, agent, 'quiesce.img');
  await stopGuest(nodeA, 'quiesce');
  expect(await sha256(join(nodeA.disks, 'quiesce.img'))).toBe(before);
  await deleteGuest(nodeA, 'quiesce');
}, 240_000);

test('cancel while the mirrors write-block (memory copying): the source runs on; the next migration completes', async () => {
  await rawImage('blocking.img', 16);
  const before = await sha256(join(nodeA.disks, 'blocking.img'));
  const agent = await boot('blocking', '0007', { file: 'blocking.img', format: 'DISK_FORMAT_RAW' });
  const { migration, targetAgent } = await start('blocking', { bandwidthBytesPerSec: 4 * MiB });
  await migration.until((e) => e.phase?.reason.startsWith('the local disks are in sync') === true);
  await migration.until((e) => (e.progress?.transferredBytes ?? 0) > 0);
  await unary((done) =>
    nodeA.migration.cancelMigration(
      { migrationId: migration.id, reason: 'test: cancel while write-blocking' },
      done,
    ),
  );
  const outcome = await migration.outcome;
  report('cancel while write-blocking', outcome, migration);
  expect(outcome).toMatchObject({
    result: 'RESULT_ABORTED',
    cause: 'CAUSE_CANCELLED',
    sourceRunState: 'running',
  });
  targetAgent().close();
  await expectStillOnSource('blocking', migration, agent, 'blocking.img');
  // The cancelled mirrors and their NBD nodes are gone from the source QEMU: the same names serve the next one.
  const again = await start('blocking');
  const result = await handOver(again.migration, { guest: 'blocking', from: nodeA, to: nodeB, record });
  expect((await again.migration.outcome).result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  await stopGuest(nodeB, 'blocking');
  expect(await sha256(join(nodeB.disks, 'blocking.img'))).toBe(before);
  await deleteGuest(nodeB, 'blocking');
  await rm(join(nodeB.disks, 'blocking.img'));
}, 240_000);

test('the source daemon killed during the disk copy: its successor drops the mirrors, the guest runs on', async () => {
  await rawImage('restart.img', 256);
  const before = await sha256(join(nodeA.disks, 'restart.img'));
  const agent = await boot('restart', '0008', { file: 'restart.img', format: 'DISK_FORMAT_RAW' });
  const { migration, targetAgent } = await start('restart', { bandwidthBytesPerSec: 16 * MiB });
  await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
  expect(await nodeA.daemon.stop('SIGKILL')).toBe(null);
  await nodes!.restart(nodeA);
  const outcome = await new Promise<MigrationOutcome__Output>((resolve, reject) => {
    const stream = nodeA.migration.watchMigration({ migrationId: migration.id, progressIntervalMs: 100 });
    stream.on('data', (event: MigrationEvent__Output) => event.outcome && resolve(event.outcome));
    stream.on('error', reject);
  });
  report('source daemon restarted during the disk copy', outcome, migration);
  expect(outcome).toMatchObject({
    result: 'RESULT_FAILED',
    cause: 'CAUSE_SOURCE',
    sourceRunState: 'running',
  });
  targetAgent().close();
  await expectStillOnSource(
    'restart',
    { ...migration, outcome: Promise.resolve(outcome) },
    agent,
    'restart.img',
  );
  // The successor removed the mirror and NBD node of its predecessor: the same names serve the next migration.
  const again = await start('restart', { bandwidthBytesPerSec: 0 });
  const result = await handOver(again.migration, { guest: 'restart', from: nodeA, to: nodeB, record });
  expect((await again.migration.outcome).result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  await stopGuest(nodeB, 'restart');
  expect(await sha256(join(nodeB.disks, 'restart.img'))).toBe(before);
  await deleteGuest(nodeB, 'restart');
  await rm(join(nodeB.disks, 'restart.img'));
}, 240_000);

test('the target daemon killed during the disk copy: its successor follows, the migration completes', async () => {
  await rawImage('target-restart.img', 128);
  const before = await sha256(join(nodeA.disks, 'target-restart.img'));
  await boot('trestart', '0009', { file: 'target-restart.img', format: 'DISK_FORMAT_RAW' });
  const { migration, targetAgent } = await start('trestart', { bandwidthBytesPerSec: 16 * MiB });
  await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
  expect(await nodeB.daemon.stop('SIGKILL')).toBe(null);
  await nodes!.restart(nodeB);
  const result = await handOver(migration, { guest: 'trestart', from: nodeA, to: nodeB, record });
  const outcome = await migration.outcome;
  report('target daemon restarted during the disk copy', outcome, migration);
  expect(outcome.result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  expect((await targetAgent().verify()).ok).toBe(true);
  await stopGuest(nodeB, 'trestart');
  expect(await sha256(join(nodeB.disks, 'target-restart.img'))).toBe(before);
  await deleteGuest(nodeB, 'trestart');
  await rm(join(nodeB.disks, 'target-restart.img'));
}, 240_000);

test('the target daemon killed during the disk copy, then the migration cancelled: its successor removes the image', async () => {
  await rawImage('target-abort.img', 256);
  const before = await sha256(join(nodeA.disks, 'target-abort.img'));
  const agent = await boot('tabort', '0010', { file: 'target-abort.img', format: 'DISK_FORMAT_RAW' });
  const { migration, targetAgent } = await start('tabort', { bandwidthBytesPerSec: 16 * MiB });
  await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
  expect(await nodeB.daemon.stop('SIGKILL')).toBe(null);
  await nodes!.restart(nodeB);
  expect(await exists(join(nodeB.disks, 'target-abort.img'))).toBe(true);
  await unary((done) =>
    nodeA.migration.cancelMigration(
      { migrationId: migration.id, reason: 'test: cancel after the target restarted' },
      done,
    ),
  );
  expect((await migration.outcome).result).toBe('RESULT_ABORTED');
  targetAgent().close();
  await expectStillOnSource('tabort', migration, agent, 'target-abort.img');
  await stopGuest(nodeA, 'tabort');
  expect(await sha256(join(nodeA.disks, 'target-abort.img'))).toBe(before);
  await deleteGuest(nodeA, 'tabort');
}, 240_000);

test('a post-copy whose target QEMU dies before its resume keeps both copies of the local disk', async () => {
  await rawImage('pclost.img', 64);
  await boot('pclost', '0012', { file: 'pclost.img', format: 'DISK_FORMAT_RAW' }, [
    'tern.wss_mib=32',
    'tern.dirty_pps=20000',
  ]);
  const { migration } = await start('pclost', {
    bandwidthBytesPerSec: 20 * MiB,
    downtimeSteps: 1,
    stallRounds: 1,
    allowAutoConverge: false,
    allowPostCopy: true,
  });
  expect(await migration.outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
  // The target QEMU dies (an OOM kill) before the hand-over resumes it: the guest starts again from scratch on the
  // target, which the record names, from the target's copy; the source's copy (older by the post-copy's writes)
  // is released but kept. Neither may be removed: one of them is all that is left of the guest's disk.
  const { pid } = await unary<Guest__Output>((done) => nodeB.control.getGuest({ name: 'pclost' }, done));
  process.kill(pid, 'SIGKILL');
  await eventually('node-b noticed its loaded QEMU died', async () => {
    const state = await unary<MigrationState__Output>((done) =>
      nodeB.migration.getMigration({ migrationId: migration.id }, done),
    );
    return state.stage === 'MIGRATION_STAGE_TARGET_FAILED' ? state : undefined;
  });
  const result = await handOver(migration, { guest: 'pclost', from: nodeA, to: nodeB, record });
  expect(result).toMatchObject({ kind: 'postCopyLost', owner: nodeB.name });
  expect(await exists(join(nodeB.disks, 'pclost.img'))).toBe(true);
  expect(await exists(join(nodeA.disks, 'pclost.img'))).toBe(true);
  await rm(join(nodeA.disks, 'pclost.img'));
  await rm(join(nodeB.disks, 'pclost.img'));
}, 240_000);

test('a guest dirtying faster than the link switches to post-copy: the disks are final before it does', async () => {
  await rawImage('postcopy.img', 64);
  const before = await sha256(join(nodeA.disks, 'postcopy.img'));
  await boot('postcopy', '0011', { file: 'postcopy.img', format: 'DISK_FORMAT_RAW' }, [
    'tern.wss_mib=32',
    'tern.dirty_pps=20000',
  ]);
  const { migration, targetAgent } = await start('postcopy', {
    bandwidthBytesPerSec: 20 * MiB,
    downtimeSteps: 1,
    stallRounds: 1,
    allowAutoConverge: false,
    allowPostCopy: true,
  });
  const result = await handOver(migration, { guest: 'postcopy', from: nodeA, to: nodeB, record });
  const outcome = await migration.outcome;
  report('post-copy', outcome, migration);
  expect(outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
  expect(result.owner).toBe(nodeB.name);
  expect((await targetAgent().verify()).ok).toBe(true);
  await stopGuest(nodeB, 'postcopy');
  expect(await sha256(join(nodeB.disks, 'postcopy.img'))).toBe(before);
  await deleteGuest(nodeB, 'postcopy');
  await rm(join(nodeB.disks, 'postcopy.img'));
}, 240_000);
