// Local disk images across crashes and between nodes whose bases differ, with two real daemon processes and real QEMU
// (TCG) on the "two nodes on one host" of test/harness/local-disk-nodes.ts:
// - the target node rebooting during the disk copy (its daemon and its QEMU gone, its state directory kept): the
//   successor daemon removes the partial image, the source runs on;
// - the source daemon killed during ReleaseSource (after the release was admitted and the source QEMU quit, before
//   the images were removed): the successor finishes the release, and a retried ReleaseSource is answered RELEASED;
// - a qcow2 overlay whose base differs on the target: PrepareIncoming refuses it, nothing is created.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { access, chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AgentClient } from '../../guest/host/agent-client.js';
import {
  newMigrationToken,
  type Guest__Output,
  type MigrationEvent__Output,
  type MigrationOutcome__Output,
  type MigrationState__Output,
} from '../../proto/index.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import { unary } from '../harness/control-client.js';
import { assertAtMostOneRunning, begin, handOver, InMemoryOwnership } from '../harness/migration-driver.js';
import { startLocalDiskNodes, type LocalDiskNode, type LocalDiskNodes } from '../harness/local-disk-nodes.js';
import { killGuestsIn } from '../harness/daemon-process.js';
import { eventually } from '../harness/eventually.js';

const run = promisify(execFile);
const MiB = 2 ** 20;

let nodes: LocalDiskNodes | undefined;
let nodeA: LocalDiskNode;
let nodeB: LocalDiskNode;
let shared: string;
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

const migrationRecords = (node: LocalDiskNode): Promise<string[]> =>
  readdir(join(node.stateDir, '.migrations')).then(
    (names) => names.filter((name) => name.endsWith('.json')),
    () => [],
  );

function guestSpec(name: string, uuidSuffix: string, file: string, format: 'raw' | 'qcow2') {
  const images = nodes!.images;
  return {
    name,
    uuid: `5c2e9b10-7a3d-4e5f-9a8b-c1d2e3f4${uuidSuffix}`,
    namespace: 'default',
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1', 'tern.wss_mib=8'] },
    disks: [
      {
        name: 'data',
        path: join(shared, file),
        readOnly: false,
        format: format === 'raw' ? ('DISK_FORMAT_RAW' as const) : ('DISK_FORMAT_QCOW2' as const),
        bus: 'DISK_BUS_VIRTIO' as const,
        cache: 'DISK_CACHE_WRITEBACK' as const,
        io: 'DISK_IO_THREADS' as const,
        storage: 'DISK_STORAGE_LOCAL' as const,
        boot: false,
      },
    ],
    nics: [],
  };
}

async function boot(name: string, uuidSuffix: string, file: string, format: 'raw' | 'qcow2' = 'raw') {
  await unary((done) => nodeA.control.createGuest({ spec: guestSpec(name, uuidSuffix, file, format) }, done));
  const agent = await AgentClient.connect(guestPaths(nodeA.stateDir, name).agent, { timeoutMs: 30_000 });
  agents.push(agent);
  await agent.waitReady(90_000);
  record.set(name, nodeA.name);
  return agent;
}

async function rawImage(file: string, sizeMiB: number): Promise<string> {
  const at = join(nodeA.disks, file);
  await writeFile(at, randomBytes(sizeMiB * MiB));
  await chmod(at, 0o666);
  return sha256(at);
}

beforeAll(async () => {
  nodes = await startLocalDiskNodes('tern-ldr-');
  ({ shared, a: nodeA, b: nodeB } = nodes);
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.close();
  await nodes?.close();
});

test('the target node reboots during the disk copy: its successor daemon removes the partial image', async () => {
  const before = await rawImage('reboot.img', 256);
  const agent = await boot('reboot', '0001', 'reboot.img');
  const migration = await begin({
    guest: 'reboot',
    from: nodeA,
    to: nodeB,
    policy: { bandwidthBytesPerSec: 16 * MiB },
  });
  await migration.until((e) => (e.progress?.diskTransferredBytes ?? 0) > 8 * MiB);
  expect(await exists(join(nodeB.disks, 'reboot.img'))).toBe(true);
  // A reboot: the daemon and every QEMU of the node die at once; the state directory and the disks stay.
  expect(await nodeB.daemon.stop('SIGKILL')).toBe(null);
  expect(await killGuestsIn(nodeB.stateDir)).toBe(1);
  const outcome = await migration.outcome;
  expect(outcome).toMatchObject({ result: 'RESULT_FAILED', sourceRunState: 'running' });
  await nodes!.restart(nodeB);
  // The successor finds the record of a migration whose QEMU is gone and never resumed: the image goes with it.
  expect(await readdir(nodeB.disks)).toEqual([]);
  expect(await migrationRecords(nodeB)).toEqual([]);
  const result = await handOver(migration, { guest: 'reboot', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeA.name);
  expect((await assertAtMostOneRunning('reboot', [nodeA, nodeB]))[0]).toBe('GUEST_PHASE_RUNNING');
  expect((await agent.verify()).ok).toBe(true);
  await unary((done) => nodeA.control.stopGuest({ name: 'reboot', timeoutMs: 3000 }, done));
  expect(await sha256(join(nodeA.disks, 'reboot.img'))).toBe(before);
  await unary((done) => nodeA.control.deleteGuest({ name: 'reboot' }, done));
  await unary((done) => nodeB.control.deleteGuest({ name: 'reboot' }, done)).catch(() => undefined);
  await rm(join(nodeA.disks, 'reboot.img'));
}, 240_000);

test('the target node reboots after a post-copy, before its resume: the successor keeps the image', async () => {
  await rawImage('pcreboot.img', 32);
  await unary((done) =>
    nodeA.control.createGuest(
      {
        spec: {
          ...guestSpec('pcreboot', '0004', 'pcreboot.img', 'raw'),
          boot: {
            kernel: nodes!.images.kernel,
            initrd: nodes!.images.initrd,
            cmdline: ['panic=-1', 'tern.wss_mib=32', 'tern.dirty_pps=20000'],
          },
        },
      },
      done,
    ),
  );
  const agent = await AgentClient.connect(guestPaths(nodeA.stateDir, 'pcreboot').agent, {
    timeoutMs: 30_000,
  });
  agents.push(agent);
  await agent.waitReady(90_000);
  record.set('pcreboot', nodeA.name);
  const migration = await begin({
    guest: 'pcreboot',
    from: nodeA,
    to: nodeB,
    policy: {
      bandwidthBytesPerSec: 20 * MiB,
      downtimeSteps: 1,
      stallRounds: 1,
      allowAutoConverge: false,
      allowPostCopy: true,
    },
  });
  expect(await migration.outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
  // The source cannot run the guest any more; the target node reboots before the hand-over resumed it there.
  expect(await nodeB.daemon.stop('SIGKILL')).toBe(null);
  expect(await killGuestsIn(nodeB.stateDir)).toBe(1);
  await nodes!.restart(nodeB);
  // Its image is one of the guest's complete disks (the guest starts again from one of them): kept.
  expect(await exists(join(nodeB.disks, 'pcreboot.img'))).toBe(true);
  const result = await handOver(migration, { guest: 'pcreboot', from: nodeA, to: nodeB, record });
  // The successor no longer follows that migration (its QEMU is gone): the operator sees a target that lost its
  // state, and a release after a failure keeps the source's copy too.
  expect(result.kind).toBe('targetStateLost');
  expect(await exists(join(nodeB.disks, 'pcreboot.img'))).toBe(true);
  expect(await exists(join(nodeA.disks, 'pcreboot.img'))).toBe(true);
  for (const node of [nodeA, nodeB])
    await unary((done) => node.control.deleteGuest({ name: 'pcreboot' }, done)).catch(() => undefined);
  await rm(join(nodeA.disks, 'pcreboot.img'));
  await rm(join(nodeB.disks, 'pcreboot.img'));
}, 240_000);

test('a loaded target whose QEMU is killed (self-fencing) before the hand-over: the daemon reaps it, image and all', async () => {
  const before = await rawImage('fenced.img', 4);
  await boot('fenced', '0005', 'fenced.img');
  const guest = await unary<Guest__Output>((done) => nodeA.control.getGuest({ name: 'fenced' }, done));
  const id = 'm-fenced';
  const token = newMigrationToken();
  // A short token (3 s plus 1 s per GiB of disk from the policy), so that the reaper looks soon after.
  const prepared = await unary<{ dataEndpoint: string; diskEndpoint: string }>((done) =>
    nodeB.migration.prepareIncoming(
      {
        migrationId: id,
        spec: guest.spec!,
        sourceAccelerator: guest.accelerator,
        channel: {},
        token,
        tokenTtlSeconds: 3,
        localDisks: guest.localDisks,
        diskCopyTimeoutPerGibSeconds: 1,
      },
      done,
    ),
  );
  await unary((done) =>
    nodeA.migration.startMigration(
      {
        migrationId: id,
        guest: 'fenced',
        targetDataEndpoint: prepared.dataEndpoint,
        targetDiskEndpoint: prepared.diskEndpoint,
        token,
        policy: {},
      },
      done,
    ),
  );
  const outcome = new Promise<MigrationOutcome__Output>((resolve, reject) => {
    const stream = nodeA.migration.watchMigration({ migrationId: id, progressIntervalMs: 100 });
    stream.on('data', (event: MigrationEvent__Output) => event.outcome && resolve(event.outcome));
    stream.on('error', reject);
  });
  expect((await outcome).result).toBe('RESULT_COMPLETED');
  expect(await exists(join(nodeB.disks, 'fenced.img'))).toBe(true);
  // The node's fence watchdog kills its QEMUs (SIGKILL); nobody asks the target daemon anything meanwhile.
  expect(await killGuestsIn(nodeB.stateDir)).toBe(1);
  // Past the token's 4 s and the reaper's 15 s margin: the loaded target without a resume mark is removed.
  await eventually(
    'the reaper removed the fenced target image',
    async () => ((await exists(join(nodeB.disks, 'fenced.img'))) ? undefined : true),
    60_000,
  );
  const state = await unary<MigrationState__Output>((done) =>
    nodeB.migration.getMigration({ migrationId: id }, done),
  );
  expect(state.stage).toBe('MIGRATION_STAGE_TARGET_FAILED');
  // The hand-over's failure side: the source, whose copy never stopped being the authoritative one, runs on.
  await unary((done) => nodeB.migration.abortIncoming({ migrationId: id }, done));
  await unary((done) =>
    nodeA.migration.resumeSource(
      { migrationId: id, recordedOwner: nodeA.name, epoch: String(record.epoch('fenced')) },
      done,
    ),
  );
  expect((await assertAtMostOneRunning('fenced', [nodeA, nodeB]))[0]).toBe('GUEST_PHASE_RUNNING');
  await unary((done) => nodeA.control.stopGuest({ name: 'fenced', timeoutMs: 3000 }, done));
  expect(await sha256(join(nodeA.disks, 'fenced.img'))).toBe(before);
  for (const node of [nodeA, nodeB])
    await unary((done) => node.control.deleteGuest({ name: 'fenced' }, done)).catch(() => undefined);
  await rm(join(nodeA.disks, 'fenced.img'));
}, 240_000);

test.each([
  { retain: false, guest: 'release', uuid: '0002' },
  { retain: true, guest: 'retain', uuid: '0007' },
])(
  'the source daemon killed during ReleaseSource (retain: $retain): its successor finishes the release',
  async ({ retain, guest, uuid }) => {
    const image = `${guest}.img`;
    const before = await rawImage(image, 16);
    await boot(guest, uuid, image);
    const migration = await begin({ guest, from: nodeA, to: nodeB });
    const outcome = await migration.outcome;
    expect(outcome.result).toBe('RESULT_COMPLETED');
    // The hand-over as the operator makes it, up to ReleaseSource: the record moves, the target runs the guest.
    expect(record.compareAndSwap(guest, nodeA.name, nodeB.name)).toBe(true);
    const epoch = String(record.epoch(guest));
    await unary<MigrationState__Output>((done) =>
      nodeB.migration.resumeTarget({ migrationId: migration.id, recordedOwner: nodeB.name, epoch }, done),
    );
    // ReleaseSource was admitted (its mark is in the record file, written before anything else), the source QEMU
    // quit, and the daemon was killed before it removed the images: the state a SIGKILL at that point leaves.
    expect(await nodeA.daemon.stop('SIGKILL')).toBe(null);
    const file = join(nodeA.stateDir, '.migrations', `${migration.id}.json`);
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(onDisk.localImages).toEqual([expect.objectContaining({ path: join(shared, image) })]);
    await writeFile(
      file,
      JSON.stringify({
        ...onDisk,
        release: {
          owner: nodeB.name,
          removeLocalDisks: true,
          ...(retain ? { retain: [join(shared, image)] } : {}),
        },
      }),
    );
    expect(await killGuestsIn(nodeA.stateDir)).toBe(1);
    await nodes!.restart(nodeA);
    expect(await exists(join(nodeA.disks, image))).toBe(false);
    // Retained: moved aside (the path is free for a way back), the disk as it was at the switchover.
    const retained = join(nodeA.disks, `${image}.tern-retained-${migration.id}`);
    expect(await exists(retained)).toBe(retain);
    if (retain) {
      expect(await sha256(retained)).toBe(before);
      await rm(retained);
    }
    expect(await migrationRecords(nodeA)).toEqual([]);
    // The operator's retried ReleaseSource finds it done.
    const released = await unary<MigrationState__Output>((done) =>
      nodeA.migration.releaseSource(
        { migrationId: migration.id, recordedOwner: nodeB.name, epoch, removeLocalDisks: true },
        done,
      ),
    );
    expect(released.stage).toBe('MIGRATION_STAGE_RELEASED');
    expect(await assertAtMostOneRunning(guest, [nodeA, nodeB])).toEqual(['ABSENT', 'GUEST_PHASE_RUNNING']);
    await unary((done) => nodeB.control.stopGuest({ name: guest, timeoutMs: 3000 }, done));
    expect(await sha256(join(nodeB.disks, image))).toBe(before);
    await unary((done) => nodeB.control.deleteGuest({ name: guest }, done));
    await rm(join(nodeB.disks, image));
  },
  240_000,
);

test('a qcow2 overlay whose base differs on the target: PrepareIncoming refuses, nothing is created', async () => {
  const base = join(nodes!.bases, 'golden.raw');
  await writeFile(base, randomBytes(8 * MiB), { mode: 0o644 });
  const overlay = join(nodeA.disks, 'over.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, '16M']);
  await chmod(overlay, 0o666);
  await boot('over', '0003', 'over.qcow2', 'qcow2');
  const guest = await unary<Guest__Output>((done) => nodeA.control.getGuest({ name: 'over' }, done));
  // The source names its base's identity: its size and the sha256 of its bytes.
  expect(guest.localDisks).toEqual([
    expect.objectContaining({
      backingFile: base,
      backingIdentity: `${8 * MiB}:sha256:${await sha256(base)}`,
    }),
  ]);
  // Both "nodes" of this host share the base file; another node's base at that path with other bytes is what the
  // source's identity of a base of the same size but other contents stands for.
  const otherBase = `${8 * MiB}:sha256:${createHash('sha256')
    .update(randomBytes(8 * MiB))
    .digest('hex')}`;
  const refused = await unary((done) =>
    nodeB.migration.prepareIncoming(
      {
        migrationId: 'm-base-differs',
        spec: guest.spec!,
        sourceAccelerator: guest.accelerator,
        channel: {},
        token: newMigrationToken(),
        localDisks: guest.localDisks.map((disk) => ({ ...disk, backingIdentity: otherBase })),
      },
      done,
    ),
  ).then(
    () => undefined,
    (error: Error) => error,
  );
  expect(refused?.message).toMatch(
    /FAILED_PRECONDITION.*its base image .*golden.raw differs on this node from the source's .*the overlay would read other data/,
  );
  expect(await readdir(nodeB.disks)).toEqual([]);
  expect(await migrationRecords(nodeB)).toEqual([]);
  // With the source's true identity the same target accepts it (and the migration completes).
  const migration = await begin({ guest: 'over', from: nodeA, to: nodeB });
  const result = await handOver(migration, { guest: 'over', from: nodeA, to: nodeB, record });
  expect((await migration.outcome).result).toBe('RESULT_COMPLETED');
  expect(result.owner).toBe(nodeB.name);
  await unary((done) => nodeB.control.stopGuest({ name: 'over', timeoutMs: 3000 }, done));
  await unary((done) => nodeB.control.deleteGuest({ name: 'over' }, done));
  await rm(join(nodeB.disks, 'over.qcow2'));
}, 240_000);
