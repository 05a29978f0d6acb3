// The hand-over when a daemon forgets, restarts or is raced, with two real daemon processes and QEMU (TCG), driven by
// the operator's own sequence (test/harness/migration-driver.ts → operator/src/migration/sequence.ts) against an
// in-memory ownership record:
// - the daemons keep a durable tombstone of each hand-over step, so a restarted daemon still answers "resumed",
//   "released" or "aborted" instead of NOT_FOUND;
// - a target that lost its state after the ownership swap (and with it the guest) may have run the guest: the
//   source is released, never resumed, and the record stays with the target (the restartPolicy restarts it);
// - a target whose QEMU died after ResumeTarget (its resume mark on disk), with `cont` on its way or found dead after
//   a restart, reports RESUMED with guest_lost, and the source is released, never resumed;
// - a target that resumed the guest and then forgot the migration (no tombstone) is seen running it (GetGuest),
//   and the hand-over finishes;
// - ResumeTarget and AbortIncoming racing each other: exactly one wins; a daemon that restarted between `cont`
//   and removing its record reports RESUMED;
// - GetMigration reports a StartMigration still under way (STARTING);
// - CancelMigration tells "too late" (FAILED_PRECONDITION) from a failure worth retrying (UNAVAILABLE).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import {
  type GuestSpec,
  type Guest__Output,
  type ListGuestsResponse__Output,
  type MigrationEvent__Output,
  type MigrationState__Output,
} from '../../../proto/index.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import {
  begin,
  handOver,
  migrationClient,
  InMemoryOwnership,
  type NodeHandle,
  type RunningMigration,
} from '../../harness/migration-driver.js';
import { eventually } from '../../harness/eventually.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { QmpClient } from '../../../hypervisor-node/src/qemu/qmp-client.js';
import { tombstonesDir } from '../../../hypervisor-node/src/migration/tombstones.js';

interface Node extends NodeHandle {
  stateDir: string;
  daemon: DaemonProcess;
}

let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let nodeA: Node;
let nodeB: Node;
const record = new InMemoryOwnership();
const clients: { close(): void }[] = [];

async function startNode(name: string): Promise<Node> {
  const stateDir = join(work, name.slice(-1)); // short: unix socket paths are limited to 107 bytes
  await mkdir(stateDir, { recursive: true });
  const daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: name, certs, stateDir, sharedImageRoot: images.root },
      ...['--migration-address', '127.0.0.1', '--network', 'user', '--stop-timeout-ms', '1000'],
    ),
  );
  const address = `127.0.0.1:${daemon.grpcPort}`;
  const files = { ca: certs.ca.cert, ...certs.operator };
  const control = controlClient(address, files);
  const migration = migrationClient(address, files);
  clients.push(control, migration);
  return { name, stateDir, daemon, control, migration };
}

/** SIGKILLs the node's daemon, runs `meanwhile` (its QEMUs live on), and starts a new one on the same state dir. */
async function restart(node: Node, meanwhile: () => Promise<unknown> = async () => undefined): Promise<void> {
  expect(await node.daemon.stop('SIGKILL')).toBe(null);
  await meanwhile();
  Object.assign(node, await startNode(node.name));
}

let uuids = 0;
function spec(name: string): GuestSpec {
  uuids += 1;
  return {
    name,
    uuid: `3c9a2f10-5b4d-4e6f-8a01-b2c3d4e5${String(uuids).padStart(4, '0')}`,
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
}

const getMigration = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.getMigration({ migrationId: id }, done));
const resumeTarget = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.resumeTarget({ migrationId: id, recordedOwner: node.name }, done));
const abortIncoming = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.abortIncoming({ migrationId: id }, done));
const cancelMigration = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.cancelMigration({ migrationId: id, reason: 'test' }, done));
const getGuest = (node: Node, name: string): Promise<Guest__Output> =>
  unary((done) => node.control.getGuest({ name }, done));

async function guestsOn(node: Node): Promise<Map<string, string>> {
  const list = await unary<ListGuestsResponse__Output>((done) => node.control.listGuests({}, done));
  return new Map(list.guests.map((guest) => [guest.spec?.name ?? '', guest.phase]));
}

async function expectCode(promise: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  expect(error).toBeDefined();
  expect(grpc.status[error!.code]).toBe(grpc.status[code]);
  return error!;
}

/** A new guest on node A, migrated to node B up to QEMU's completion (B holds it loaded and paused). */
async function completedOnB(name: string): Promise<RunningMigration> {
  await unary((done) => nodeA.control.createGuest({ spec: spec(name) }, done));
  record.set(name, nodeA.name);
  const run = await begin({ guest: name, from: nodeA, to: nodeB });
  expect((await run.outcome).result).toBe('RESULT_COMPLETED');
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_LOADED');
  return run;
}

/** Runs on exactly `runs` and nowhere else. */
async function expectRunsOnlyOn(name: string, runs: Node): Promise<void> {
  const other = runs === nodeA ? nodeB : nodeA;
  expect((await guestsOn(runs)).get(name)).toBe('GUEST_PHASE_RUNNING');
  expect((await guestsOn(other)).has(name)).toBe(false);
}

const deleteGuest = (node: Node, name: string) => unary((done) => node.control.deleteGuest({ name }, done));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-hor-'));
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  images = await testGuestImages();
  [nodeA, nodeB] = await Promise.all([startNode('node-a'), startNode('node-b')]);
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const node of [nodeA, nodeB]) {
    if (node === undefined) continue;
    await node.daemon.stop();
    await killGuestsIn(node.stateDir);
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test('a target that lost its state after the swap may have run the guest: the source is released, not resumed', async () => {
  const run = await completedOnB('wiped');
  // The operator's swap happened; then node B restarts with its state gone (and its QEMUs with it). B may have
  // resumed the guest (and the guest written to its disks) before: A's paused memory is stale.
  expect(record.compareAndSwap('wiped', nodeA.name, nodeB.name)).toBe(true);
  const { pid } = await getGuest(nodeB, 'wiped');
  await restart(nodeB, async () => {
    process.kill(pid, 'SIGKILL');
    // The launch shell writes the killed QEMU's exit status into that directory as QEMU dies (runtime/process.ts):
    // a removal racing with it meets a new file (seen once: ENOTEMPTY).
    await rm(nodeB.stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });
  await expectCode(getMigration(nodeB, run.id), grpc.status.NOT_FOUND);
  const result = await handOver(run, { guest: 'wiped', from: nodeA, to: nodeB, record });
  expect(result).toMatchObject({ kind: 'targetStateLost', owner: nodeB.name });
  expect(record.owner('wiped')).toBe(nodeB.name);
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RELEASED');
  // Nothing runs it: the VM's restartPolicy starts it again on B, which the record names.
  expect((await guestsOn(nodeA)).has('wiped')).toBe(false);
  expect((await guestsOn(nodeB)).has('wiped')).toBe(false);
}, 120_000);

test('a target whose QEMU died after it resumed the guest reports RESUMED, guest lost, after a restart: the source is released', async () => {
  const run = await completedOnB('crashed');
  expect(record.compareAndSwap('crashed', nodeA.name, nodeB.name)).toBe(true);
  // B's tombstone cannot be written (the directory's path is taken by a file), so B's record file stays after `cont`,
  // as after a power loss before the tombstone reached the disk.
  const tombstones = tombstonesDir(nodeB.stateDir);
  await rm(tombstones, { recursive: true, force: true });
  await writeFile(tombstones, '');
  expect((await resumeTarget(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  // B's QEMU dies and its daemon restarts before the operator released the source.
  const { pid } = await getGuest(nodeB, 'crashed');
  await restart(nodeB, async () => {
    process.kill(pid, 'SIGKILL');
    await rm(tombstones, { force: true });
  });
  expect((await guestsOn(nodeB)).get('crashed')).toBe('GUEST_PHASE_FAILED');
  expect(await getMigration(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    message: expect.stringMatching(/QEMU died after it was told to resume the guest/),
    guestLost: true,
  });
  // Released, never resumed: the guest may have run on B; it starts again there by its restartPolicy.
  const result = await handOver(run, { guest: 'crashed', from: nodeA, to: nodeB, record });
  expect(result).toMatchObject({ kind: 'resumedTargetLost', owner: nodeB.name });
  expect(await abortIncoming(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    guestLost: true,
  });
  expect(record.owner('crashed')).toBe(nodeB.name);
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RELEASED');
  expect((await guestsOn(nodeA)).has('crashed')).toBe(false);
  await deleteGuest(nodeB, 'crashed');
}, 120_000);

test('a target whose QEMU dies while its `cont` is on the way reports RESUMED, guest lost: the source is released, never resumed', async () => {
  const run = await completedOnB('mid-cont');
  expect(record.compareAndSwap('mid-cont', nodeA.name, nodeB.name)).toBe(true);
  // B's QEMU is stopped, so `cont` (sent after the resume mark) waits on it; it is killed before it answers.
  const { pid } = await getGuest(nodeB, 'mid-cont');
  process.kill(pid, 'SIGSTOP');
  const resuming = resumeTarget(nodeB, run.id).catch((error: grpc.ServiceError) => error);
  await eventually(
    'ResumeTarget under way on node-b',
    async () => ((await getMigration(nodeB, run.id)).stage === 'MIGRATION_STAGE_RESUMING' ? true : undefined),
    10_000,
    20,
  );
  process.kill(pid, 'SIGKILL');
  expect(await resuming).toBeInstanceOf(Error);
  await eventually(
    'node-b tells that its guest is lost',
    async () => ((await getMigration(nodeB, run.id)).guestLost ? true : undefined),
    30_000,
  );
  expect(await getMigration(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    message: expect.stringMatching(/QEMU died after it was told to resume the guest/),
  });
  // A is released, never resumed; the record stays with B, where the restartPolicy starts the guest again.
  const result = await handOver(run, { guest: 'mid-cont', from: nodeA, to: nodeB, record });
  expect(result).toMatchObject({ kind: 'resumedTargetLost', owner: nodeB.name });
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RELEASED');
  expect((await guestsOn(nodeA)).has('mid-cont')).toBe(false);
  // The failed Migration's clean-up aborts the target: nothing of the migration is left there, which is not an error.
  expect(await abortIncoming(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    guestLost: true,
  });
  await deleteGuest(nodeB, 'mid-cont');
}, 120_000);

test('steps done survive a daemon restart as tombstones: RESUMED and RELEASED, and the hand-over finishes', async () => {
  const run = await completedOnB('remembered');
  // Past the point of no return a cancel is refused as too late, nothing else.
  const late = await expectCode(cancelMigration(nodeA, run.id), grpc.status.FAILED_PRECONDITION);
  expect(late.details).toMatch(/too late to cancel/);
  // A first run swapped the record and resumed the target, then was lost; the target's daemon restarts.
  expect(record.compareAndSwap('remembered', nodeA.name, nodeB.name)).toBe(true);
  expect((await resumeTarget(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  await restart(nodeB);
  expect(await getMigration(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    guest: 'remembered',
  });
  // What the tombstone answers: the same for a repeated resume, a refusal for an abort.
  expect((await resumeTarget(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  await expectCode(abortIncoming(nodeB, run.id), grpc.status.FAILED_PRECONDITION);
  const result = await handOver(run, { guest: 'remembered', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  await expectRunsOnlyOn('remembered', nodeB);
  // The source's step too.
  await restart(nodeA);
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RELEASED');
  // A resumed run follows the source: its watch replays the outcome from the tombstone and ends.
  const replayed = await new Promise<MigrationEvent__Output[]>((resolve, reject) => {
    const events: MigrationEvent__Output[] = [];
    const stream = nodeA.migration.watchMigration({ migrationId: run.id, progressIntervalMs: 100 });
    stream.on('data', (event: MigrationEvent__Output) => events.push(event));
    stream.on('error', reject);
    stream.on('end', () => resolve(events));
  });
  expect(replayed.map((event) => event.outcome?.result)).toEqual(['RESULT_COMPLETED']);
  await deleteGuest(nodeB, 'remembered');
}, 120_000);

test('a target that resumed the guest and then forgot the migration is seen running it: the hand-over finishes', async () => {
  const run = await completedOnB('forgotten');
  expect(record.compareAndSwap('forgotten', nodeA.name, nodeB.name)).toBe(true);
  expect((await resumeTarget(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  // A daemon without the tombstone (an older one, or one whose tombstones were lost) knows nothing of it.
  await restart(nodeB, () => rm(tombstonesDir(nodeB.stateDir), { recursive: true, force: true }));
  await expectCode(getMigration(nodeB, run.id), grpc.status.NOT_FOUND);
  const result = await handOver(run, { guest: 'forgotten', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  await expectRunsOnlyOn('forgotten', nodeB);
  await deleteGuest(nodeB, 'forgotten');
}, 120_000);

test('a target daemon that restarted after `cont` but before it removed its record reports RESUMED', async () => {
  const run = await completedOnB('continued');
  expect(record.compareAndSwap('continued', nodeA.name, nodeB.name)).toBe(true);
  // The guest runs on B while B's daemon is away (as after a ResumeTarget whose daemon died right after `cont`).
  await restart(nodeB, async () => {
    const qmp = await QmpClient.connect(guestPaths(nodeB.stateDir, 'continued').qmp);
    await qmp.cont();
    qmp.close();
  });
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  await expectCode(abortIncoming(nodeB, run.id), grpc.status.FAILED_PRECONDITION);
  const result = await handOver(run, { guest: 'continued', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  await expectRunsOnlyOn('continued', nodeB);
  await deleteGuest(nodeB, 'continued');
}, 120_000);

test('an AbortIncoming during a ResumeTarget waits for it, and is refused once the guest runs', async () => {
  const run = await completedOnB('resuming');
  expect(record.compareAndSwap('resuming', nodeA.name, nodeB.name)).toBe(true);
  // The target QEMU stops answering QMP for a moment, so the resume's `cont` is still under way when the abort comes.
  const { pid } = await getGuest(nodeB, 'resuming');
  process.kill(pid, 'SIGSTOP');
  let resumed: Promise<MigrationState__Output>;
  let aborted: Promise<MigrationState__Output>;
  let during: MigrationState__Output;
  try {
    resumed = resumeTarget(nodeB, run.id);
    resumed.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    during = await getMigration(nodeB, run.id);
    aborted = abortIncoming(nodeB, run.id);
    aborted.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  expect((await resumed).stage).toBe('MIGRATION_STAGE_RESUMED');
  const refused = await expectCode(aborted, grpc.status.FAILED_PRECONDITION);
  expect(refused.details).toMatch(/runs the guest/);
  expect(during.stage).toBe('MIGRATION_STAGE_RESUMING');
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_RESUMED');
  const result = await handOver(run, { guest: 'resuming', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  await expectRunsOnlyOn('resuming', nodeB);
  await deleteGuest(nodeB, 'resuming');
}, 120_000);

test('ResumeTarget and AbortIncoming sent at once: exactly one wins, and what is reported is what runs', async () => {
  for (let round = 0; round < 2; round++) {
    const name = `raced-${round}`;
    const run = await completedOnB(name);
    expect(record.compareAndSwap(name, nodeA.name, nodeB.name)).toBe(true);
    const [resumed, aborted] = await Promise.allSettled([
      resumeTarget(nodeB, run.id),
      abortIncoming(nodeB, run.id),
    ]);
    const stage = (await getMigration(nodeB, run.id)).stage;
    const onB = (await guestsOn(nodeB)).get(name);
    if (resumed.status === 'fulfilled') {
      expect(aborted.status).toBe('rejected');
      expect((aborted as PromiseRejectedResult).reason.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(stage).toBe('MIGRATION_STAGE_RESUMED');
      expect(onB).toBe('GUEST_PHASE_RUNNING');
    } else {
      expect(aborted.status).toBe('fulfilled');
      expect((aborted as PromiseFulfilledResult<MigrationState__Output>).value.stage).toBe(
        'MIGRATION_STAGE_ABORTED',
      );
      expect(stage).toBe('MIGRATION_STAGE_ABORTED');
      expect(onB).toBeUndefined();
    }
    // Either way the hand-over ends with the guest on exactly one node.
    const result = await handOver(run, { guest: name, from: nodeA, to: nodeB, record });
    const owner = result.owner === nodeA.name ? nodeA : nodeB;
    await expectRunsOnlyOn(name, owner);
    await deleteGuest(owner, name);
  }
}, 240_000);

test('GetMigration reports a StartMigration still under way (STARTING), and the migration then runs', async () => {
  await unary((done) => nodeA.control.createGuest({ spec: spec('starting') }, done));
  record.set('starting', nodeA.name);
  const { pid } = await getGuest(nodeA, 'starting');
  let seen: MigrationState__Output | undefined;
  const run = await begin({
    guest: 'starting',
    from: nodeA,
    to: nodeB,
    // The source QEMU stops answering QMP, so StartMigration waits on it; looked at meanwhile, then let go.
    onPrepared: async ({ id }) => {
      process.kill(pid, 'SIGSTOP');
      void eventually(
        'StartMigration is under way',
        async () => {
          const state = await getMigration(nodeA, id).catch(() => undefined);
          return state?.stage === 'MIGRATION_STAGE_STARTING' ? state : undefined;
        },
        5_000,
      )
        .then((state) => (seen = state))
        .finally(() => process.kill(pid, 'SIGCONT'));
    },
  });
  expect(seen).toMatchObject({ stage: 'MIGRATION_STAGE_STARTING', guest: 'starting' });
  expect((await run.outcome).result).toBe('RESULT_COMPLETED');
  const result = await handOver(run, { guest: 'starting', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  await deleteGuest(nodeB, 'starting');
}, 120_000);

test('a cancel that QEMU does not answer is UNAVAILABLE (retried), not "too late"; retried, it is acknowledged', async () => {
  await unary((done) => nodeA.control.createGuest({ spec: spec('unanswered') }, done));
  record.set('unanswered', nodeA.name);
  const run = await begin({
    guest: 'unanswered',
    from: nodeA,
    to: nodeB,
    policy: { bandwidthBytesPerSec: 2 * 2 ** 20 },
  });
  await run.until((e) => (e.progress?.transferredBytes ?? 0) > 2 ** 20);
  const { pid } = await getGuest(nodeA, 'unanswered');
  process.kill(pid, 'SIGSTOP');
  try {
    const error = await expectCode(cancelMigration(nodeA, run.id), grpc.status.UNAVAILABLE);
    expect(error.details).toMatch(/retry/);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const state = await eventually('the cancel is acknowledged', () =>
    cancelMigration(nodeA, run.id).catch(() => undefined),
  );
  expect(state.stage).toBe('MIGRATION_STAGE_FINISHED');
  expect((await run.outcome).result).toBe('RESULT_ABORTED');
  const result = await handOver(run, { guest: 'unanswered', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeA.name);
  await expectRunsOnlyOn('unanswered', nodeA);
  await deleteGuest(nodeA, 'unanswered');
}, 120_000);
