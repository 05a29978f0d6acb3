// The target daemon's incoming migrations against races and neglect, with two real daemon processes and QEMU
// (TCG): a PrepareIncoming aborted while its QEMU still starts leaves no QEMU, a retried PrepareIncoming joins the
// first instead of starting a second QEMU, the cap on remembered migrations never forgets a loaded target, and an
// incoming QEMU that no source reached is removed after its token's TTL. QEMU's start is slowed down on demand by
// a wrapper (--qemu-binary) that sleeps while a file says so.
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import {
  newMigrationToken,
  type GuestSpec,
  type Guest__Output,
  type ListGuestsResponse__Output,
  type MigrationState__Output,
  type PrepareIncomingResponse__Output,
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
} from '../../harness/migration-driver.js';
import { eventually } from '../../harness/eventually.js';
import { findGuestQemus } from '../../../hypervisor-node/src/runtime/process.js';
import { MAX_MIGRATION_RECORDS } from '../../../hypervisor-node/src/migration/service.js';
import { REAP_MARGIN_MS } from '../../../hypervisor-node/src/migration/incoming.js';

interface Node extends NodeHandle {
  stateDir: string;
  daemon: DaemonProcess;
}

let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let nodeA: Node;
let nodeB: Node;
/** While this file holds a number, every QEMU the daemons start sleeps that many seconds first. */
let slowFile: string;
const clients: { close(): void }[] = [];

async function startNode(name: string, qemu: string): Promise<Node> {
  const stateDir = join(work, name.slice(-1)); // short: unix socket paths are limited to 107 bytes
  const daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: name, certs, stateDir, sharedImageRoot: images.root },
      ...['--migration-address', '127.0.0.1', '--network', 'user', '--stop-timeout-ms', '1000'],
      ...['--qemu-binary', qemu],
    ),
  );
  const address = `127.0.0.1:${daemon.grpcPort}`;
  const files = { ca: certs.ca.cert, ...certs.operator };
  const control = controlClient(address, files);
  const migration = migrationClient(address, files);
  clients.push(control, migration);
  return { name, stateDir, daemon, control, migration };
}

function spec(name: string, uuidSuffix: string): GuestSpec {
  return {
    name,
    uuid: `7e1b0c55-4a2d-4f3e-9b10-c2d3e4f5${uuidSuffix}`,
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
}

function prepare(
  node: Node,
  request: { id: string; spec: GuestSpec; token: string; ttlSeconds?: number },
  timeoutMs?: number,
): Promise<PrepareIncomingResponse__Output> {
  return unary(
    (done, deadline) =>
      node.migration.prepareIncoming(
        {
          migrationId: request.id,
          spec: request.spec,
          sourceAccelerator: 'ACCELERATOR_TCG',
          token: request.token,
          tokenTtlSeconds: request.ttlSeconds ?? 0,
        },
        { deadline },
        done,
      ),
    timeoutMs,
  );
}

const getMigration = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.getMigration({ migrationId: id }, done));
const abortIncoming = (node: Node, id: string): Promise<MigrationState__Output> =>
  unary((done) => node.migration.abortIncoming({ migrationId: id }, done));

async function guestsOn(node: Node): Promise<string[]> {
  const list = await unary<ListGuestsResponse__Output>((done) => node.control.listGuests({}, done));
  return list.guests.map((guest) => guest.spec?.name ?? '');
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

/** Nothing of guest `name` on `node`: not listed, no QEMU under the state dir, no migration files. */
async function expectNothingLeft(node: Node, name: string): Promise<void> {
  expect(await guestsOn(node)).not.toContain(name);
  expect(await findGuestQemus(node.stateDir)).toEqual([]);
  expect(await readdir(join(node.stateDir, '.migrations')).catch(() => [])).toEqual([]);
}

const slowQemu = (seconds: number): Promise<void> => writeFile(slowFile, String(seconds));
const fastQemu = (): Promise<void> => rm(slowFile, { force: true });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-inr-'));
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  images = await testGuestImages();
  slowFile = join(work, 'slow');
  const qemu = join(work, 'qemu');
  await writeFile(
    qemu,
    `#!/bin/sh\nif [ -f '${slowFile}' ]; then sleep "$(cat '${slowFile}')"; fi\nexec qemu-system-x86_64 "$@"\n`,
  );
  await chmod(qemu, 0o755);
  [nodeA, nodeB] = await Promise.all([startNode('node-a', qemu), startNode('node-b', qemu)]);
}, 120_000);

afterEach(fastQemu);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const node of [nodeA, nodeB]) {
    if (node === undefined) continue;
    await node.daemon.stop();
    await killGuestsIn(node.stateDir);
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test('an AbortIncoming while PrepareIncoming still starts QEMU leaves no QEMU behind', async () => {
  await slowQemu(4);
  const id = 'abort-while-starting';
  const token = newMigrationToken();
  // The client gives up first, as the operator does after its call deadline.
  await expectCode(
    prepare(nodeB, { id, spec: spec('racer-a', '0001'), token }, 1_000),
    grpc.status.DEADLINE_EXCEEDED,
  );
  // Known while QEMU starts, so that a retried run finds (and replaces) it.
  const starting = await getMigration(nodeB, id);
  expect(starting.stage).toBe('MIGRATION_STAGE_RUNNING');
  expect(starting.message).toMatch(/starting/);
  const before = Date.now();
  const aborted = await abortIncoming(nodeB, id);
  // The answer waits until the start has removed QEMU again.
  expect(aborted.stage).toBe('MIGRATION_STAGE_ABORTED');
  expect(Date.now() - before).toBeGreaterThan(1_000);
  await expectNothingLeft(nodeB, 'racer-a');
  // A late retry of the aborted prepare is told so instead of getting a dead endpoint.
  const late = await expectCode(
    prepare(nodeB, { id, spec: spec('racer-a', '0001'), token }),
    grpc.status.ABORTED,
  );
  expect(late.details).toMatch(/aborted/);
  expect((await abortIncoming(nodeB, id)).stage).toBe('MIGRATION_STAGE_ABORTED');
  await expectNothingLeft(nodeB, 'racer-a');
});

test('a PrepareIncoming retried while the first still starts QEMU joins it: one QEMU, one endpoint', async () => {
  await slowQemu(3);
  const id = 'retried-prepare';
  const token = newMigrationToken();
  const first = prepare(nodeB, { id, spec: spec('racer-b', '0002'), token });
  await eventually('the first prepare is known', () => getMigration(nodeB, id).catch(() => undefined));
  const retried = prepare(nodeB, { id, spec: spec('racer-b', '0002'), token });
  // The same id with another token is another request, not a retry.
  await expectCode(
    prepare(nodeB, { id, spec: spec('racer-b', '0002'), token: newMigrationToken() }),
    grpc.status.ALREADY_EXISTS,
  );
  const [a, b] = await Promise.all([first, retried]);
  expect(a.dataEndpoint).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(b.dataEndpoint).toBe(a.dataEndpoint);
  expect(b.state?.stage).toBe('MIGRATION_STAGE_RUNNING');
  expect(await findGuestQemus(nodeB.stateDir)).toHaveLength(1);
  // After the prepare, a retry is answered the same way at once.
  await fastQemu();
  expect((await prepare(nodeB, { id, spec: spec('racer-b', '0002'), token })).dataEndpoint).toBe(
    a.dataEndpoint,
  );
  expect((await abortIncoming(nodeB, id)).stage).toBe('MIGRATION_STAGE_ABORTED');
  await expectNothingLeft(nodeB, 'racer-b');
});

// Both wait out a token's TTL and the reaper's margin (REAP_MARGIN_MS, 15 s): side by side, each with a guest of its
// own, and the checks that nothing is left on the node once both are over.
test('an incoming QEMU that no source reached is removed after its token TTL and reported TARGET_FAILED; a failed incoming migration whose guest was deleted (as the stale-guest sweep does) neither blocks the next one nor removes its QEMU later', async () => {
  const neverUsed = async (): Promise<void> => {
    const id = 'never-used';
    const prepared = await prepare(nodeB, {
      id,
      spec: spec('racer-c', '0003'),
      token: newMigrationToken(),
      // Long enough for QEMU to start and load its key on a loaded machine (1 s was not, in one CI run).
      ttlSeconds: 4,
    });
    expect(prepared.state?.stage).toBe('MIGRATION_STAGE_RUNNING');
    expect(await guestsOn(nodeB)).toContain('racer-c');
    const reaped = await eventually(
      'the unused incoming migration is reaped',
      async () => {
        const state = await getMigration(nodeB, id);
        return state.stage === 'MIGRATION_STAGE_TARGET_FAILED' ? state : undefined;
      },
      40_000,
    );
    expect(reaped.message).toMatch(/no source connected within the token's TTL \(4 s\)/);
    await eventually('its QEMU is gone', async () =>
      (await guestsOn(nodeB)).includes('racer-c') ? undefined : true,
    );
  };

  const sweptThenNext = async (): Promise<void> => {
    const token = newMigrationToken();
    await prepare(nodeB, { id: 'swept', spec: spec('racer-s', '0005'), token, ttlSeconds: 4 });
    await unary((done) => nodeB.control.deleteGuest({ name: 'racer-s' }, done));
    await eventually('the swept migration failed', async () =>
      (await getMigration(nodeB, 'swept')).stage === 'MIGRATION_STAGE_TARGET_FAILED' ? true : undefined,
    );
    const next = await prepare(nodeB, {
      id: 'after-sweep',
      spec: spec('racer-s', '0005'),
      token: newMigrationToken(),
      ttlSeconds: 120,
    });
    expect(next.state?.stage).toBe('MIGRATION_STAGE_RUNNING');
    expect((await getMigration(nodeB, 'swept')).message).toMatch(/its QEMU was gone when another migration/);
    // Past the first one's TTL and the reaper's margin: the second one's QEMU (the same guest name) still runs.
    await sleep(4_000 + REAP_MARGIN_MS + 2_000);
    expect((await getMigration(nodeB, 'after-sweep')).stage).toBe('MIGRATION_STAGE_RUNNING');
    expect(await guestsOn(nodeB)).toContain('racer-s');
    expect((await abortIncoming(nodeB, 'after-sweep')).stage).toBe('MIGRATION_STAGE_ABORTED');
  };

  await Promise.all([neverUsed(), sweptThenNext()]);
  await expectNothingLeft(nodeB, 'racer-c');
  await expectNothingLeft(nodeB, 'racer-s');
  // The operator's clean-up of the reaped one, if it ever comes, still succeeds.
  expect((await abortIncoming(nodeB, 'never-used')).stage).toBe('MIGRATION_STAGE_ABORTED');
}, 90_000);

test('the cap on remembered migrations forgets finished ones, never a loaded target', async () => {
  const record = new InMemoryOwnership();
  await unary((done) => nodeA.control.createGuest({ spec: spec('mover', '0004') }, done));
  record.set('mover', nodeA.name);
  const run = await begin({ guest: 'mover', from: nodeA, to: nodeB });
  expect((await run.outcome).result).toBe('RESULT_COMPLETED');
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_LOADED');

  // More finished migrations on the target node than it remembers: StartMigration of a guest of its own toward a
  // closed port fails at once, and the guest runs on.
  await unary((done) => nodeB.control.createGuest({ spec: spec('filler', '0005') }, done));
  for (let i = 0; i < MAX_MIGRATION_RECORDS + 5; i++) {
    const id = `filler-${i}`;
    await unary((done) =>
      nodeB.migration.startMigration(
        { migrationId: id, guest: 'filler', targetDataEndpoint: '127.0.0.1:1', token: newMigrationToken() },
        done,
      ),
    );
    await eventually(
      `${id} finished`,
      async () => ((await getMigration(nodeB, id)).stage === 'MIGRATION_STAGE_FINISHED' ? true : undefined),
      30_000,
      20,
    );
  }
  // The oldest finished ones were forgotten; the loaded target was not, and hands over as usual.
  await expectCode(getMigration(nodeB, 'filler-0'), grpc.status.NOT_FOUND);
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_LOADED');
  const result = await handOver(run, { guest: 'mover', from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeB.name);
  const moved = await unary<Guest__Output>((done) => nodeB.control.getGuest({ name: 'mover' }, done));
  expect(moved.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestsOn(nodeA)).not.toContain('mover');
  for (const name of ['mover', 'filler']) {
    await unary((done) => nodeB.control.deleteGuest({ name }, done));
  }
}, 240_000);
