// Two CreateGuest calls for one name at the same time, through the real daemon's gRPC API: usually both pass the
// service's existence check, the supervisor lets one win and the other must see ALREADY_EXISTS (not INTERNAL).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts } from '../../harness/certificates.js';
import type { GuestControlClient, Guest__Output } from '../../../proto/index.js';
import { testGuestImages } from '../../fixtures/test-guest.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';

let work: string;
let daemon: DaemonProcess | undefined;
let client: GuestControlClient | undefined;

afterAll(async () => {
  client?.close();
  await daemon?.stop();
  if (work) {
    await killGuestsIn(join(work, 'state'));
    await rm(work, { recursive: true, force: true });
  }
});

test('of two concurrent CreateGuest calls for one name, one succeeds and the other gets ALREADY_EXISTS', async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-race-'));
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  const images = await testGuestImages();
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir: join(work, 'state'), sharedImageRoot: images.root },
      ...['--stop-timeout-ms', '1000'],
    ),
  );
  const operator = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca: certs.ca.cert, ...certs.operator });
  client = operator;
  const spec = {
    name: 'race',
    uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c02',
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
  const create = (): Promise<Guest__Output> =>
    unary<Guest__Output>((done) => operator.createGuest({ spec }, done));
  const results = await Promise.allSettled([create(), create()]);

  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as grpc.ServiceError] : []));
  expect(won.map((guest) => guest.phase)).toEqual(['GUEST_PHASE_RUNNING']);
  expect(lost.map((error) => grpc.status[error.code])).toEqual(['ALREADY_EXISTS']);
  // Usually the supervisor's GuestExistsError (both calls passed the service's own check); on a slow machine the
  // second call may arrive after the first registered the guest and meet the service's check instead.
  expect(lost[0]!.details).toMatch(/^guest "?race"? already exists$/);
  await unary((done) => operator.deleteGuest({ name: 'race' }, done));
}, 120_000);
