// Node loss with real parts: a real operator, a real kube-apiserver and two real daemons with QEMU guests (TCG).
// node-a's daemon dies (SIGKILL) and never renews its Lease again; its fence watchdog kills its guests after the
// fence time. Only after the fence time plus the operator's margin, on the operator's clock, does node-a become
// Fenced: the VM with nodeLossPolicy Restart then starts on node-b with the ownership epoch + 1 (never while its
// QEMU on node-a still ran), the one with Wait only gets NodeLost. When node-a returns, the guest that moved stays
// down there, and the one that waited is restarted there by its restartPolicy. A Migration whose source node is
// lost at the hand-over ends NodeLost and lets the VM's nodeLossPolicy act; one whose target is lost there ends
// NodeLost with the guest resumed on the source.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import type { GuestControlClient } from '../../../proto/index.js';
import { runningWatchdog } from '../../../hypervisor-node/src/self-fencing/watchdog.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient } from '../../harness/control-client.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { condition, eventually, guestOn, kubectlOn, testDaemonArgs } from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const FENCE_SECONDS = 8;
const MARGIN_SECONDS = 2;

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
const daemons = {} as Record<NodeName, DaemonProcess>;
const clients: GuestControlClient[] = [];
const { kubectl, apply, getJson, eventReasons, holdOwnershipRecord } = kubectlOn(() => cp);

const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);
const getNode = (name: NodeName) => getJson<HypervisorNode>('hypervisornode', name);

// Short: a guest's QMP socket path must fit in 107 bytes.
const stateDir = (node: NodeName) => join(work, node.slice(-1));

const startDaemon = async (node: NodeName) => {
  daemons[node] = await startDaemonProcess([
    ...testDaemonArgs({
      node,
      certs,
      stateDir: stateDir(node),
      imagesRoot: images.root,
      kubeconfig: cp.kubeconfigPath,
      leaseDurationSeconds: 3,
    }),
    ...['--fence-after-seconds', String(FENCE_SECONDS)],
  ]);
};

function guestOnNode(node: NodeName, name: string) {
  const client = controlClient(`127.0.0.1:${daemons[node].grpcPort}`, {
    ca: certs.ca.cert,
    cert: certs.operator.cert,
    key: certs.operator.key,
  });
  clients.push(client);
  return guestOn(client, name);
}

const qemuAlive = (pid: number) =>
  readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (cmdline) => cmdline.includes('qemu'),
    () => false,
  );

const nodeReady = (node: NodeName) =>
  eventually(`${node} Ready`, async () => {
    const hvn = await getNode(node);
    return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
  });

const vmRunningOn = (name: string, node: NodeName) =>
  eventually(
    `${name} Running on ${node}`,
    async () => {
      const vm = await getVm(name);
      return vm.status?.phase === 'Running' && vm.status.node === node ? vm : undefined;
    },
    90_000,
  );

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tnl-'));
  [cp, images] = await Promise.all([startControlPlane({ name: 'node-loss' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  await Promise.all(NODES.map((node) => startDaemon(node)));
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ...['--leader-lease-duration-seconds', '6', '--node-loss-margin-seconds', String(MARGIN_SECONDS)],
  ]);
  for (const node of NODES) await nodeReady(node);
}, 180_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await operator?.stop();
  await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(stateDir(node));
    // The fence watchdogs exit once their state dirs are gone.
    // A killed QEMU's exit shim may still write into its guest dir: retry a directory that is not empty yet.
    await rm(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
  await cp?.stop();
});

it('restarts a Restart VM of a lost node elsewhere with epoch + 1 only after the fence time and margin, and marks a Wait VM NodeLost', async () => {
  // Both VMs on node-a: node-b is cordoned while they are placed.
  await kubectl('patch', 'hypervisornode', 'node-b', '--type=merge', '-p', '{"spec":{"unschedulable":true}}');
  await apply({
    ...testGuestVm('vm-restart', images),
    spec: { ...testGuestVm('vm-restart', images).spec, nodeLossPolicy: 'Restart' },
  });
  await apply(testGuestVm('vm-wait', images));
  const restartBefore = await vmRunningOn('vm-restart', 'node-a');
  const waitBefore = await vmRunningOn('vm-wait', 'node-a');
  expect(restartBefore.status?.epoch).toBe(1);
  expect(waitBefore.spec.nodeLossPolicy).toBe('Wait');
  await kubectl(
    'patch',
    'hypervisornode',
    'node-b',
    '--type=merge',
    '-p',
    '{"spec":{"unschedulable":false}}',
  );
  const pidA = (await guestOnNode('node-a', 'vm-restart'))!.pid;
  const watchdogA = await runningWatchdog(stateDir('node-a'));
  expect(watchdogA).toBeGreaterThan(0);

  // node-a's daemon dies; its QEMUs and its watchdog run on.
  const diedAt = Date.now();
  expect(await daemons['node-a'].stop('SIGKILL')).toBeNull();
  // Until the VM runs on node-b, watch that its record never names node-b while its QEMU on node-a lives.
  const samples: { at: number; alive: boolean; node?: string; epoch?: number }[] = [];
  const moved = await eventually(
    'vm-restart Running on node-b',
    async () => {
      const alive = await qemuAlive(pidA);
      const vm = await getVm('vm-restart');
      samples.push({ at: Date.now() - diedAt, alive, node: vm.status?.node, epoch: vm.status?.epoch });
      return vm.status?.phase === 'Running' && vm.status.node === 'node-b' ? vm : undefined;
    },
    120_000,
    200,
  );
  const killedAt = samples.find((s) => !s.alive)?.at;
  const movedAt = samples.find((s) => s.node === 'node-b')?.at;
  console.log(`node-a died; its QEMU killed after ${killedAt} ms, the record moved after ${movedAt} ms`);
  expect(samples.filter((s) => s.node === 'node-b' && s.alive)).toEqual([]);
  // The operator counts from the last renewal it saw: about one heartbeat (1 s) plus a renewal before the death.
  expect(movedAt).toBeGreaterThanOrEqual((FENCE_SECONDS + MARGIN_SECONDS - 2) * 1000);
  expect(moved.status?.epoch).toBe(2);
  expect(condition(moved, 'Restarted')).toMatchObject({ status: 'True', reason: 'NodeLost' });
  expect(condition(moved, 'NodeLost')).toMatchObject({
    status: 'False',
    reason: 'RestartedElsewhere',
    message: expect.stringMatching(
      /node node-a is lost .*the guest starts on node-b \(nodeLossPolicy Restart, ownership epoch 2\)/,
    ),
  });
  const guestB = await guestOnNode('node-b', 'vm-restart');
  expect(guestB).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', spec: { uuid: moved.metadata.uid } });

  const lost = await getNode('node-a');
  expect(condition(lost, 'Ready')).toMatchObject({ status: 'False', reason: 'LeaseExpired' });
  expect(condition(lost, 'Fenced')).toMatchObject({ status: 'True', reason: 'FenceTimeElapsed' });
  expect(await eventReasons('HypervisorNode', 'node-a')).toEqual(
    expect.arrayContaining(['NodeNotReady', 'NodeFenced']),
  );

  const waiting = await eventually('vm-wait NodeLost', async () => {
    const vm = await getVm('vm-wait');
    return condition(vm, 'NodeLost')?.status === 'True' ? vm : undefined;
  });
  expect(waiting.status).toMatchObject({ phase: 'Unknown', node: 'node-a', epoch: 1 });
  expect(condition(waiting, 'NodeLost')).toMatchObject({
    reason: 'WaitingForNode',
    message: expect.stringMatching(/^node node-a is lost \(no Lease renewal seen by the operator for \d+ s/),
  });
  expect(await guestOnNode('node-b', 'vm-wait')).toBeUndefined();
}, 240_000);

it('does not run the moved guest on the node that comes back; the waiting VM is restarted there', async () => {
  const phases: string[] = [];
  await startDaemon('node-a');
  await nodeReady('node-a');
  const back = await eventually('node-a Fenced=False', async () => {
    const hvn = await getNode('node-a');
    return condition(hvn, 'Fenced')?.status === 'False' ? hvn : undefined;
  });
  expect(condition(back, 'Fenced')).toMatchObject({ reason: 'LeaseRenewed' });
  // The waiting VM's record still names node-a: its fenced guest is restarted there (restartPolicy Always).
  const restarted = await vmRunningOn('vm-wait', 'node-a');
  expect(restarted.status?.epoch).toBe(1);
  expect(condition(restarted, 'NodeLost')).toMatchObject({ status: 'False', reason: 'NodeReturned' });
  expect(condition(restarted, 'Restarted')).toMatchObject({ status: 'True', reason: 'Fenced' });
  // The moved guest never runs on node-a again: it stays down there until the operator deletes it.
  const seen = await eventually(
    'the moved guest deleted on node-a',
    async () => {
      const guest = await guestOnNode('node-a', 'vm-restart');
      if (guest) phases.push(`${guest.phase}/${guest.reason}`);
      return guest === undefined ? phases : undefined;
    },
    60_000,
    200,
  );
  expect(seen.filter((phase) => phase !== 'GUEST_PHASE_FAILED/Fenced')).toEqual([]);
  expect(await eventReasons('VirtualMachine', 'vm-restart')).toContain('StaleGuestDeleted');
  expect(await getVm('vm-restart')).toMatchObject({ status: { phase: 'Running', node: 'node-b', epoch: 2 } });
  expect((await guestOnNode('node-b', 'vm-restart'))?.phase).toBe('GUEST_PHASE_RUNNING');
}, 180_000);

it('ends a Migration whose source node is lost at the hand-over (NodeLost); the VM then restarts by its nodeLossPolicy', async () => {
  const before = await vmRunningOn('vm-restart', 'node-b');
  // The operator gets to the hand-over and stops before the compare-and-swap: the guest is loaded and paused on
  // node-a, paused on node-b.
  const release = await holdOwnershipRecord('vm-restart');
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'm-lost', namespace: 'default' },
    spec: { vmName: 'vm-restart', targetNode: 'node-a' },
  });
  await eventually(
    'm-lost held at the hand-over',
    async () => {
      const migration = await getJson<Migration>('migration', 'm-lost');
      const target = await guestOnNode('node-a', 'vm-restart');
      return migration.status?.phase === 'Freezing' && target?.phase === 'GUEST_PHASE_PAUSED'
        ? migration
        : undefined;
    },
    120_000,
  );
  const pidB = (await guestOnNode('node-b', 'vm-restart'))!.pid;
  expect(await daemons['node-b'].stop('SIGKILL')).toBeNull();
  const failed = await eventually(
    'm-lost Failed',
    async () => {
      const migration = await getJson<Migration>('migration', 'm-lost');
      return migration.status?.phase === 'Failed' ? migration : undefined;
    },
    120_000,
  );
  expect(failed.status).toMatchObject({
    failureReason: 'NodeLost',
    message: expect.stringMatching(
      /^node node-b lost \(no Lease renewal for its fence time plus the margin\): the VM stays with node-b; its nodeLossPolicy decides/,
    ),
  });
  // The source's QEMU was fenced, the target's incoming guest aborted: the guest runs nowhere.
  expect(await qemuAlive(pidB)).toBe(false);
  expect(await guestOnNode('node-a', 'vm-restart')).toBeUndefined();
  const released = await getVm('vm-restart');
  expect(released.status?.activeMigration).toBeUndefined();
  expect(released.status).toMatchObject({ node: 'node-b', epoch: before.status!.epoch });
  expect(released.status?.lastMigration).toMatchObject({ name: 'm-lost', result: 'Failed' });

  await release();
  const moved = await vmRunningOn('vm-restart', 'node-a');
  expect(moved.status?.epoch).toBe(before.status!.epoch! + 1);
  expect(condition(moved, 'Restarted')).toMatchObject({ status: 'True', reason: 'NodeLost' });
}, 240_000);

it('ends a Migration whose target node is lost at the hand-over (NodeLost) and resumes the guest on the source', async () => {
  await startDaemon('node-b');
  await nodeReady('node-b');
  await eventually('node-b Fenced=False', async () => {
    const hvn = await getNode('node-b');
    return condition(hvn, 'Fenced')?.status === 'False' ? hvn : undefined;
  });
  const before = await vmRunningOn('vm-wait', 'node-a');
  const sourcePid = (await guestOnNode('node-a', 'vm-wait'))!.pid;
  const release = await holdOwnershipRecord('vm-wait');
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'm-target-lost', namespace: 'default' },
    spec: { vmName: 'vm-wait', targetNode: 'node-b' },
  });
  await eventually(
    'm-target-lost held at the hand-over',
    async () => {
      const migration = await getJson<Migration>('migration', 'm-target-lost');
      const target = await guestOnNode('node-b', 'vm-wait');
      return migration.status?.phase === 'Freezing' && target?.phase === 'GUEST_PHASE_PAUSED'
        ? migration
        : undefined;
    },
    120_000,
  );
  expect((await guestOnNode('node-a', 'vm-wait'))?.phase).toBe('GUEST_PHASE_PAUSED');
  expect(await daemons['node-b'].stop('SIGKILL')).toBeNull();
  const failed = await eventually(
    'm-target-lost Failed',
    async () => {
      const migration = await getJson<Migration>('migration', 'm-target-lost');
      return migration.status?.phase === 'Failed' ? migration : undefined;
    },
    120_000,
  );
  expect(failed.status).toMatchObject({
    failureReason: 'NodeLost',
    message:
      'node node-b lost (no Lease renewal for its fence time plus the margin): the guest runs on node-a',
  });
  // The source QEMU, paused at the hand-over, runs the guest again; the record never moved.
  expect(await guestOnNode('node-a', 'vm-wait')).toMatchObject({
    phase: 'GUEST_PHASE_RUNNING',
    pid: sourcePid,
  });
  await release();
  const after = await vmRunningOn('vm-wait', 'node-a');
  expect(after.status).toMatchObject({ epoch: before.status!.epoch });
  expect(after.status?.activeMigration).toBeUndefined();
  expect(condition(after, 'Ready')).toMatchObject({ status: 'True' });
}, 240_000);
