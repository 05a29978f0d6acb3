// A deposed operator leader cannot change a guest (docs/architecture.md "The hand-over rule"): two real operator
// processes with leader election, one real daemon, a real QEMU guest. The leader's StopGuest is held on its way to
// the daemon (a gRPC proxy the daemon advertises stands for a slow network), the leader is frozen (SIGSTOP) past
// its lease, the user wants the VM running again, and the standby takes over and reads the guest. When the frozen
// leader's StopGuest reaches the daemon at last, the daemon refuses it for its stale fencing token and the guest
// keeps running; woken up (SIGCONT), the deposed leader exits.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import type { GuestControlClient, ListGuestsResponse__Output } from '../../../proto/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient, unary } from '../../harness/control-client.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { GrpcHoldProxy } from '../../harness/grpc-hold-proxy.js';
import { condition, eventually, kubectlOn, testDaemonArgs } from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../../fixtures/test-guest.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const LEASE_SECONDS = 6;
const VM = 'fenced';

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let proxy: GrpcHoldProxy;
let daemon: DaemonProcess;
let direct: GuestControlClient;
const replicas: OperatorProcess[] = [];
const { kubectl, apply, getJson } = kubectlOn(() => cp);

const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
const holder = async () =>
  (
    await getJson<{ spec: { holderIdentity?: string; leaseTransitions?: number } }>(
      'lease',
      '-n',
      'tern-system',
      'tern-operator-fencing',
    )
  ).spec;

/** The VM's guest on the daemon (found by the VM's uid, whatever the daemon names it), asked directly. */
async function guestOfVm(uid: string) {
  const { guests } = await unary<ListGuestsResponse__Output>((done) => direct.listGuests({}, done));
  return guests.find((guest) => guest.spec?.uuid === uid);
}

const replica = (identity: string) =>
  startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0'],
    ...['--leader-election-name', 'tern-operator-fencing', '--leader-election-identity', identity],
    ...['--leader-lease-duration-seconds', String(LEASE_SECONDS)],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
  ]).then((started) => {
    replicas.push(started);
    return started;
  });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tfen-'));
  [cp, images] = await Promise.all([startControlPlane({ name: 'fencing' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  proxy = await GrpcHoldProxy.start(certs, 'node-a');
  daemon = await startDaemonProcess([
    ...testDaemonArgs({
      node: 'node-a',
      certs,
      stateDir: join(work, 'a'),
      imagesRoot: images.root,
      kubeconfig: cp.kubeconfigPath,
      leaseDurationSeconds: 4,
    }),
    // The operators dial the proxy.
    ...['--advertise-address', proxy.address],
  ]);
  proxy.connect(`127.0.0.1:${daemon.grpcPort}`);
  direct = controlClient(
    `127.0.0.1:${daemon.grpcPort}`,
    { ca: certs.ca.cert, cert: certs.operator.cert, key: certs.operator.key },
    'node-a',
  );
  await eventually('node-a Ready', async () => {
    const hvn = await getJson<HypervisorNode>('hypervisornode', 'node-a');
    return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
  });
}, 180_000);

afterAll(async () => {
  direct?.close();
  for (const started of replicas) {
    try {
      process.kill(started.pid, 'SIGCONT');
    } catch {
      // gone already
    }
    await started.stop();
  }
  await daemon?.stop();
  await proxy?.close();
  if (work) {
    await killGuestsIn(join(work, 'a'));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

it("refuses a deposed leader's StopGuest that reaches the daemon after the new leader called it", async () => {
  const byIdentity = { 'op-1': await replica('op-1'), 'op-2': await replica('op-2') };
  const leaderId = await eventually('a leader', async () => {
    const id = (await holder()).holderIdentity;
    return id === 'op-1' || id === 'op-2' ? id : undefined;
  });
  const leader = byIdentity[leaderId];
  const standby = byIdentity[leaderId === 'op-1' ? 'op-2' : 'op-1'];
  // The term's token: the acquiring write left leaseTransitions at token - 1.
  const leaderToken = (await holder()).leaseTransitions! + 1;

  await apply(testGuestVm(VM, images));
  const running = await eventually(
    'VM Running',
    async () => {
      const vm = await getVm();
      return vm.status?.phase === 'Running' ? vm : undefined;
    },
    120_000,
  );
  const guest = (await guestOfVm(running.metadata.uid!))!;
  expect(guest.phase).toBe('GUEST_PHASE_RUNNING');

  // The leader is told to stop the guest; its StopGuest is held on the way.
  proxy.holdCalls((call) => call.method === 'StopGuest');
  await kubectl('patch', 'virtualmachine', VM, '--type=merge', '-p', '{"spec":{"running":false}}');
  await eventually(
    'the leader sent StopGuest',
    async () => (proxy.held.length > 0 ? true : undefined),
    60_000,
  );
  expect(proxy.held[0]).toMatchObject({ method: 'StopGuest', token: leaderToken });

  // Frozen past its lease; meanwhile the user wants the VM running after all.
  process.kill(leader.pid, 'SIGSTOP');
  const frozenAt = Date.now();
  await kubectl('patch', 'virtualmachine', VM, '--type=merge', '-p', '{"spec":{"running":true}}');
  const standbyId = leaderId === 'op-1' ? 'op-2' : 'op-1';
  await eventually(
    'the standby leads',
    async () => ((await holder()).holderIdentity === standbyId ? true : undefined),
    60_000,
  );
  const newToken = (await holder()).leaseTransitions! + 1;
  expect(newToken).toBeGreaterThan(leaderToken);
  // The new leader reads the guest through the daemon (its token reaches the daemon) and reports the VM Running.
  await eventually(
    'the new leader read the guest',
    async () =>
      proxy.forwarded.some((call) => call.method === 'GetGuest' && call.token === newToken)
        ? true
        : undefined,
    60_000,
  );
  await eventually(
    'VM Running again',
    async () => ((await getVm()).status?.phase === 'Running' ? true : undefined),
    60_000,
  );

  // The deposed leader's StopGuest arrives now: refused, and the guest runs on.
  const [answer] = await proxy.release();
  expect(grpc.status[answer!.code]).toBe('PERMISSION_DENIED');
  expect(answer!.details).toBe(
    `the operator's fencing token ${leaderToken} is older than ${newToken} seen on this node: a newer leader runs`,
  );
  expect(await guestOfVm(running.metadata.uid!)).toMatchObject({
    phase: 'GUEST_PHASE_RUNNING',
    pid: guest.pid,
  });
  expect(daemon.logs.some((line) => line.msg === 'control call refused' && line.method === 'StopGuest')).toBe(
    true,
  );

  // Woken up, the deposed leader finds its lease gone and exits (1: leadership lost) without acting.
  const sentBeforeWake = proxy.forwarded.length;
  const wokenAt = Date.now();
  process.kill(leader.pid, 'SIGCONT');
  expect(await leader.exited).toBe(1);
  // Awake, it made no call at all: its lease was older than the renew deadline, so it had no token to send.
  expect(proxy.forwarded.slice(sentBeforeWake).filter((call) => call.token === leaderToken)).toEqual([]);
  console.log(
    `deposed leader: frozen ${wokenAt - frozenAt} ms, exited ${Date.now() - wokenAt} ms after SIGCONT; ` +
      `its StopGuest refused (token ${leaderToken} < ${newToken})`,
  );
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(await guestOfVm(running.metadata.uid!)).toMatchObject({
    phase: 'GUEST_PHASE_RUNNING',
    pid: guest.pid,
  });
  expect((await getVm()).status?.phase).toBe('Running');
  expect(standby.logs.some((line) => line.msg === 'became leader')).toBe(true);
}, 240_000);
