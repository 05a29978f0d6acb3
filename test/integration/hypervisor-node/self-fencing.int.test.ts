// Self-fencing with real parts: a real daemon renewing its Lease on a real kube-apiserver, a real QEMU guest, and
// the node's fence watchdog. A daemon restarted within the fence time (an upgrade) keeps its guest; a daemon that
// is frozen (SIGSTOP), or whose apiserver is gone, loses it: the watchdog SIGKILLs QEMU once no renewal has
// succeeded for the fence time, and the daemon reports the guest Failed/Fenced and does not restart it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Lease } from '@kubernetes/client-node';
import type { HypervisorNode } from '../../../crds/index.js';
import type { GuestControlClient, GuestSpec, Guest__Output } from '../../../proto/index.js';
import { runningWatchdog } from '../../../hypervisor-node/src/self-fencing/watchdog.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient, unary } from '../../harness/control-client.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import { eventually } from '../../harness/eventually.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

const CRD = fileURLToPath(new URL('../../../crds/generated/tern.dev_hypervisornodes.yaml', import.meta.url));
/** Long enough for a daemon restart on a loaded 2-core host, short enough for a test. */
const FENCE_SECONDS = 10;

let cp: ControlPlane;
let work: string;
let stateDir: string;
let certs: DevCerts;
let images: TestGuestImages;
let daemon: DaemonProcess;
let client: GuestControlClient;

async function kubectl(...args: string[]): Promise<string> {
  const result = await cp.kubectl(args);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function startDaemon(): Promise<void> {
  client?.close();
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir, sharedImageRoot: images.root },
      ...['--network', 'user', '--stop-timeout-ms', '3000', '--kubeconfig', cp.kubeconfigPath],
      ...['--lease-duration-seconds', '3', '--heartbeat-interval-seconds', '1'],
      ...['--fence-after-seconds', String(FENCE_SECONDS)],
    ),
  );
  client = controlClient(`127.0.0.1:${daemon.grpcPort}`, {
    ca: certs.ca.cert,
    cert: certs.operator.cert,
    key: certs.operator.key,
  });
}

const getGuest = (name: string) => unary<Guest__Output>((done) => client.getGuest({ name }, done));

const qemuAlive = (pid: number) =>
  readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (cmdline) => cmdline.includes('qemu'),
    () => false,
  );

function guestSpec(name: string): GuestSpec {
  return {
    name,
    uuid: '0b6f3c1e-5a7d-4e2b-9c41-7d2f8e6a1b03',
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1', 'tern.wss_mib=8'] },
    disks: [],
    nics: [],
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-fence-'));
  stateDir = join(work, 'state');
  [cp, images] = await Promise.all([startControlPlane({ name: 'fencing' }), testGuestImages()]);
  await kubectl('apply', '-f', CRD);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', 'crd/hypervisornodes.tern.dev');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  await startDaemon();
}, 180_000);

afterAll(async () => {
  client?.close();
  if (daemon) {
    process.kill(daemon.pid, 'SIGCONT');
    await daemon.stop();
  }
  if (stateDir) await killGuestsIn(stateDir);
  // The watchdog exits within a tick once the state dir is gone.
  // A killed QEMU's exit shim may still write into its guest dir: retry a directory that is not empty yet.
  if (work) await rm(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  await cp?.stop();
});

it('publishes its fence time on the Lease and the HypervisorNode, and starts one watchdog', async () => {
  const lease = await eventually('the Lease with the fence time', async () => {
    const current = JSON.parse(
      await kubectl('get', 'lease', '-n', 'tern-system', 'node-a', '-o', 'json'),
    ) as V1Lease;
    return current.metadata?.annotations?.['tern.dev/fence-after-seconds'] ? current : undefined;
  });
  expect(lease.metadata?.annotations?.['tern.dev/fence-after-seconds']).toBe(String(FENCE_SECONDS));
  const node = await eventually('the HypervisorNode with the fence time', async () => {
    const current = JSON.parse(
      await kubectl('get', 'hypervisornode', 'node-a', '-o', 'json'),
    ) as HypervisorNode;
    return current.status?.fenceAfterSeconds !== undefined ? current : undefined;
  });
  expect(node.status?.fenceAfterSeconds).toBe(FENCE_SECONDS);
  expect(await eventually('a watchdog', () => runningWatchdog(stateDir))).toBeGreaterThan(0);
});

it('keeps the guest of a daemon restarted within the fence time (an upgrade)', async () => {
  const created = await unary<Guest__Output>((done) => client.createGuest({ spec: guestSpec('g1') }, done));
  expect(created.phase).toBe('GUEST_PHASE_RUNNING');
  const watchdog = await runningWatchdog(stateDir);
  const killedAt = Date.now();
  expect(await daemon.stop('SIGKILL')).toBeNull();
  await startDaemon();
  console.log(`daemon restarted in ${Date.now() - killedAt} ms`);
  expect((await getGuest('g1')).pid).toBe(created.pid);
  // Well past the fence time since the old daemon's last renewal: the new daemon's renewals keep the guest.
  await sleep(FENCE_SECONDS * 1000 + 3_000);
  expect(await qemuAlive(created.pid)).toBe(true);
  expect(await getGuest('g1')).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: created.pid });
  // The watchdog of the first daemon guards the guests of the second.
  expect(await runningWatchdog(stateDir)).toBe(watchdog);
}, 120_000);

it('kills the guest of a frozen daemon (SIGSTOP) after the fence time; the thawed daemon reports it Fenced and leaves it down', async () => {
  const { pid } = await getGuest('g1');
  process.kill(daemon.pid, 'SIGSTOP');
  const frozenAt = Date.now();
  await eventually('QEMU killed', async () => ((await qemuAlive(pid)) ? undefined : true), 60_000, 100);
  const killedAfterMs = Date.now() - frozenAt;
  console.log(`QEMU killed ${killedAfterMs} ms after the daemon froze (fence time ${FENCE_SECONDS} s)`);
  // Not before the fence time since the last renewal, which started about one heartbeat interval (1 s, plus the
  // renewal's own time) before the freeze.
  expect(killedAfterMs).toBeGreaterThanOrEqual((FENCE_SECONDS - 2) * 1000);
  process.kill(daemon.pid, 'SIGCONT');
  const fenced = await eventually('g1 Fenced', async () => {
    const guest = await getGuest('g1');
    return guest.phase === 'GUEST_PHASE_FAILED' ? guest : undefined;
  });
  expect(fenced.reason).toBe('Fenced');
  expect(fenced.message).toMatch(
    /^no Lease renewal for \d+ s \(fence time 10 s\): the node's fence watchdog killed QEMU \(SIGKILL\) .*; QEMU killed by signal SIGKILL \(9\)$/,
  );
  // The daemon renews again but never restarts a fenced guest by itself: that is the operator's decision.
  await sleep(3_000);
  expect(await getGuest('g1')).toMatchObject({ phase: 'GUEST_PHASE_FAILED', reason: 'Fenced' });
}, 120_000);

it('kills the guest of a running daemon whose apiserver is gone, and reports it Fenced', async () => {
  // The operator may start a fenced guest again once the node renews: it runs until the next fence.
  const started = await unary<Guest__Output>((done) => client.startGuest({ name: 'g1' }, done));
  expect(started.phase).toBe('GUEST_PHASE_RUNNING');
  await sleep(2_000);
  expect(await qemuAlive(started.pid)).toBe(true);
  const stoppedAt = Date.now();
  await cp.stop();
  const fenced = await eventually(
    'g1 Fenced',
    async () => {
      const guest = await getGuest('g1');
      return guest.phase === 'GUEST_PHASE_FAILED' ? guest : undefined;
    },
    60_000,
  );
  console.log(`g1 Fenced ${Date.now() - stoppedAt} ms after the apiserver stopped`);
  expect(fenced.reason).toBe('Fenced');
  expect(await qemuAlive(started.pid)).toBe(false);
}, 120_000);
