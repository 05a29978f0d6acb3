// Fencing at a real daemon, through the operator's own clients (docs/architecture.md "The hand-over rule"): a
// guest-changing call with a fencing token older than one the daemon has seen is refused and changes nothing,
// reads are answered whatever their token, and the highest token survives a daemon restart, even a SIGKILL.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadMigrationProto, type GuestSpec } from '../../../proto/index.js';
import { FencedError } from '../../../operator/src/daemon/fencing.js';
import { DaemonGuestClient } from '../../../operator/src/daemon/guest-client.js';
import { MigrationDaemonClient } from '../../../operator/src/daemon/migration-client.js';
import { FENCING_FILE } from '../../../hypervisor-node/src/rpc/fencing.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

let work: string;
let stateDir: string;
let certs: DevCerts;
let images: TestGuestImages;
let daemon: DaemonProcess;
const closers: Array<{ close(): void }> = [];

/** The operator's clients of the daemon, each call carrying `token` (as the manager hands it out). */
function operatorAs(token: number) {
  const address = `127.0.0.1:${daemon.grpcPort}`;
  const files = { ca: certs.ca.cert, cert: certs.operator.cert, key: certs.operator.key };
  const fencing = { fencingToken: () => token };
  const control = new DaemonGuestClient(
    'node-a',
    address,
    controlClient(address, files, 'node-a'),
    30_000,
    fencing,
  );
  const migration = new MigrationDaemonClient(
    'node-a',
    address,
    new (loadMigrationProto().Migration)(
      address,
      grpc.credentials.createSsl(readFileSync(files.ca), readFileSync(files.key), readFileSync(files.cert)),
      { 'grpc.ssl_target_name_override': 'node-a' },
    ),
    30_000,
    fencing,
  );
  closers.push(control, migration);
  return { control, migration };
}

function guestSpec(name: string): GuestSpec {
  return {
    name,
    uuid: '6c1f4f5e-2a7b-4d0e-9a55-0f3b8e1d7c21',
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1'] },
    disks: [],
    nics: [],
  };
}

async function refused(promise: Promise<unknown>): Promise<FencedError> {
  const error = await promise.then(
    () => undefined,
    (rejected: unknown) => rejected,
  );
  expect(error).toBeInstanceOf(FencedError);
  return error as FencedError;
}

const startDaemon = () =>
  startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir, sharedImageRoot: images.root },
      '--stop-timeout-ms',
      '3000',
    ),
  );

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-fencing-'));
  stateDir = join(work, 'state');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  images = await testGuestImages();
  daemon = await startDaemon();
}, 120_000);

afterAll(async () => {
  for (const closer of closers) closer.close();
  await daemon?.stop();
  if (stateDir) await killGuestsIn(stateDir);
  if (work) await rm(work, { recursive: true, force: true });
});

it('refuses guest-changing calls with a stale token, answers reads, and remembers the token across restarts', async () => {
  const leader2 = operatorAs(2);
  const deposed = operatorAs(1);
  // A read by the deposed leader before the new one called: answered (and it raised nothing above 1).
  expect(await deposed.control.getGuest('vm')).toBeUndefined();

  const created = await leader2.control.createGuest(guestSpec('vm'));
  expect(created.phase).toBe('GUEST_PHASE_RUNNING');

  // Every guest-changing call of the deposed leader is refused, on both services, and changes nothing.
  const stop = await refused(deposed.control.stopGuest('vm', 1_000));
  expect(stop.highestToken).toBe(2);
  expect(stop.message).toBe(
    "node-a refused the call: the operator's fencing token 1 is older than 2 seen on this node: a newer leader runs",
  );
  await refused(deposed.control.deleteGuest('vm', 1_000));
  await refused(deposed.control.createGuest(guestSpec('other')));
  // AbortIncoming of an id the daemon does not know would answer ABORTED; ResumeSource NOT_FOUND.
  await refused(deposed.migration.abortIncoming('m-unknown'));
  await refused(deposed.migration.resumeSource('m-unknown', 'node-a', 1));
  // Its reads are still answered.
  expect((await deposed.control.getGuest('vm'))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await deposed.migration.getMigration('m-unknown')).toBeUndefined();
  expect(() => process.kill(created.pid, 0)).not.toThrow();

  // A read by a newer leader fences the one before it, although that one never changed anything here.
  const leader3 = operatorAs(3);
  await leader3.control.getGuest('vm');
  await refused(leader2.control.stopGuest('vm', 1_000));
  expect(existsSync(join(stateDir, FENCING_FILE))).toBe(true);

  // Killed outright and started again, the daemon still refuses the older leaders.
  expect(await daemon.stop('SIGKILL')).toBeNull();
  daemon = await startDaemon();
  const after = { deposed: operatorAs(1), leader2: operatorAs(2), leader3: operatorAs(3) };
  expect((await after.deposed.control.getGuest('vm'))?.pid).toBe(created.pid);
  expect((await refused(after.leader2.control.deleteGuest('vm', 1_000))).highestToken).toBe(3);
  await refused(after.deposed.control.stopGuest('vm', 1_000));
  expect(() => process.kill(created.pid, 0)).not.toThrow();

  // The current leader is obeyed.
  await after.leader3.control.deleteGuest('vm', 3_000);
  expect(await after.leader3.control.getGuest('vm')).toBeUndefined();
  expect(() => process.kill(created.pid, 0)).toThrow();
}, 120_000);

it('refuses a call without a token (an unfenced operator) once an elected leader has called', async () => {
  const raw = controlClient(
    `127.0.0.1:${daemon.grpcPort}`,
    { ca: certs.ca.cert, cert: certs.operator.cert, key: certs.operator.key },
    'node-a',
  );
  closers.push(raw);
  const error = await new Promise<grpc.ServiceError | null>((resolve) =>
    raw.deleteGuest({ name: 'nothing' }, (e) => resolve(e)),
  );
  expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(error?.details).toMatch(/fencing token 0 \(no leader election, or no token sent\) is older than 3/);
});
