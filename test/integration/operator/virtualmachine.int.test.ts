// The real operator process against a real kube-apiserver and two real daemon processes running QEMU guests (TCG):
// placement, start, crash restart, stop, delete, an unschedulable VM, a node whose heartbeat lapses, and disk boot.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient } from '../../harness/control-client.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import type { GuestControlClient } from '../../../proto/index.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import {
  condition,
  eventually,
  guestOn,
  kubectlOn,
  testDaemonArgs,
  verifyGuest,
} from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
const daemons = {} as Record<NodeName, DaemonProcess>;
const clients: GuestControlClient[] = [];
const { kubectl, apply, getJson, eventReasons } = kubectlOn(() => cp);

const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);

const vmInPhase = (name: string, phase: string, ms?: number) =>
  eventually(
    `${name} ${phase}`,
    async () => {
      const vm = await getVm(name);
      return vm.status?.phase === phase ? vm : undefined;
    },
    ms,
  );

// Short: a guest's QMP socket path (state dir + 63-character guest name) must fit in 107 bytes.
const stateDir = (node: NodeName) => join(work, node.slice(-1));

const daemonArgs = (node: NodeName) =>
  testDaemonArgs({
    node,
    certs,
    stateDir: stateDir(node),
    imagesRoot: images.root,
    kubeconfig: cp.kubeconfigPath,
    leaseDurationSeconds: 4,
  });

function daemonClient(node: NodeName): GuestControlClient {
  const client = controlClient(`127.0.0.1:${daemons[node].grpcPort}`, {
    ca: certs.ca.cert,
    cert: certs.operator.cert,
    key: certs.operator.key,
  });
  clients.push(client);
  return client;
}

const guestOnNode = (node: NodeName, name: string) => guestOn(daemonClient(node), name);

function vmManifest(name: string, extra: Partial<VirtualMachine['spec']> = {}): string {
  const vm = {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { kernel: { path: images.kernel, initrdPath: images.initrd, cmdline: images.cmdline.join(' ') } },
      ...extra,
    },
  };
  return JSON.stringify(vm);
}

const processAlive = (pid: number) =>
  readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (cmdline) => cmdline.includes('qemu'),
    () => false,
  );

beforeAll(async () => {
  const started = Date.now();
  work = await mkdtemp(join(tmpdir(), 'tvm-'));
  [cp, images] = await Promise.all([
    startControlPlane({ name: 'vm-reconciler' }),
    testGuestImages({ bootDisk: true }),
  ]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const [a, b] = await Promise.all(NODES.map((node) => startDaemonProcess(daemonArgs(node))));
  daemons['node-a'] = a!;
  daemons['node-b'] = b!;
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...[
      '--guest-poll-interval-ms',
      '1000',
      '--guest-stop-timeout-ms',
      '3000',
      '--leader-lease-duration-seconds',
      '6',
    ],
  ]);
  for (const node of NODES) {
    await eventually(`${node} Ready`, async () => {
      const hvn = await getJson<HypervisorNode>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });
  }
  console.log(`setup: ${Date.now() - started} ms (control plane ${cp.startupMs} ms)`);
}, 180_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await operator?.stop();
  await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(stateDir(node));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

it('places a VM, starts its guest on that node and reports node, epoch, conditions and Events', async () => {
  const started = Date.now();
  await apply(vmManifest('vm1'));
  const vm = await vmInPhase('vm1', 'Running');
  console.log(`vm1 Running after ${Date.now() - started} ms`);
  // Both nodes are empty and alike: the tie-break is the name.
  expect(vm.status).toMatchObject({ node: 'node-a', epoch: 1, observedGeneration: vm.metadata.generation });
  expect(vm.status?.macAddress).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
  expect(condition(vm, 'Ready')).toMatchObject({ status: 'True', reason: 'GuestRunning' });
  expect(condition(vm, 'Scheduled')).toMatchObject({ status: 'True', reason: 'Placed' });
  expect(vm.metadata.finalizers).toContain('tern.dev/guest');

  const guest = await guestOnNode('node-a', 'vm1');
  expect(guest).toMatchObject({
    phase: 'GUEST_PHASE_RUNNING',
    // Keyed by the VM's UID on the node; people see namespace/name.
    spec: { name: vm.metadata.uid, uuid: vm.metadata.uid, displayName: 'default/vm1', memoryMib: 256 },
  });
  expect(guest?.spec?.nics[0]?.mac).toBe(vm.status?.macAddress);
  expect(await processAlive(guest!.pid)).toBe(true);
  expect(await guestOnNode('node-b', 'vm1')).toBeUndefined();
  // The guest really boots: its agent announces itself on the serial console.
  await eventually(
    'the guest agent on the console',
    async () =>
      images.readyPattern.test(
        await readFile(join(stateDir('node-a'), vm.metadata.uid!, 'console.log'), 'utf8'),
      )
        ? true
        : undefined,
    60_000,
  );
  console.log(`vm1 agent up ${Date.now() - started} ms after the VM was created`);
  expect(await eventReasons('VirtualMachine', 'vm1')).toEqual(
    expect.arrayContaining(['Pending', 'Scheduled', 'Starting', 'Started']),
  );
  expect((await kubectl('get', 'tvm', 'vm1')).split('\n')[1]).toMatch(/^vm1\s+Running\s+node-a\s+1\s+256Mi/);
});

it('restarts a guest whose QEMU was killed (restartPolicy Always) on the same node and reports it', async () => {
  const before = (await guestOnNode('node-a', 'vm1'))!;
  const killedAt = Date.now();
  process.kill(before.pid, 'SIGKILL');
  const vm = await eventually('vm1 restarted', async () => {
    const current = await getVm('vm1');
    const restarted = condition(current, 'Restarted');
    return current.status?.phase === 'Running' && restarted?.status === 'True' ? current : undefined;
  });
  console.log(`vm1 restarted and Running ${Date.now() - killedAt} ms after kill -9`);
  expect(vm.status).toMatchObject({ node: 'node-a', epoch: 1 });
  // The daemon's reason is a CamelCase word the condition takes over; its message says what happened.
  const restarted = condition(vm, 'Restarted');
  expect(restarted).toMatchObject({
    reason: 'Signaled',
    message: expect.stringMatching(/failed on node-a \(Signaled: QEMU killed by signal SIGKILL/),
  });
  const after = (await guestOnNode('node-a', 'vm1'))!;
  expect(after.phase).toBe('GUEST_PHASE_RUNNING');
  expect(after.pid).not.toBe(before.pid);
  expect(await processAlive(after.pid)).toBe(true);
  expect(await eventReasons('VirtualMachine', 'vm1')).toContain('GuestRestarted');
});

it('stops the guest for running: false and starts it again, with a new ownership epoch, for running: true', async () => {
  await kubectl('patch', 'tvm', 'vm1', '--type=merge', '-p', '{"spec":{"running":false}}');
  const stopped = await vmInPhase('vm1', 'Stopped');
  expect(stopped.status?.node).toBeUndefined();
  // Stopped as its spec asks: no Ready condition (kstatus: Current; docs/gitops.md), nothing reconciling.
  expect(condition(stopped, 'Ready')).toBeUndefined();
  expect(condition(stopped, 'Reconciling')).toBeUndefined();
  expect(await guestOnNode('node-a', 'vm1')).toBeUndefined();
  expect(await eventReasons('VirtualMachine', 'vm1')).toEqual(
    expect.arrayContaining(['Stopping', 'Stopped']),
  );

  await kubectl('patch', 'tvm', 'vm1', '--type=merge', '-p', '{"spec":{"running":true}}');
  const running = await vmInPhase('vm1', 'Running');
  expect(running.status?.epoch).toBe(2);
  expect((await guestOnNode(running.status!.node as NodeName, 'vm1'))?.phase).toBe('GUEST_PHASE_RUNNING');
});

it('keeps a VM whose nodeSelector matches no node Pending with a condition that says why', async () => {
  await apply(vmManifest('vm-nowhere', { placement: { nodeSelector: { 'tern.dev/accelerator': 'kvm' } } }));
  const vm = await eventually('vm-nowhere unschedulable', async () => {
    const current = await getVm('vm-nowhere');
    return condition(current, 'Scheduled')?.status === 'False' ? current : undefined;
  });
  expect(vm.status?.phase).toBe('Pending');
  expect(vm.status?.node).toBeUndefined();
  expect(condition(vm, 'Scheduled')).toMatchObject({
    reason: 'NodeSelectorMismatch',
    message: '0/2 nodes are available: 2 not matching the node selector',
  });
  expect(await eventReasons('VirtualMachine', 'vm-nowhere')).toContain('FailedScheduling');
  for (const node of NODES) expect(await guestOnNode(node, 'vm-nowhere')).toBeUndefined();
});

it('deletes the guest on the daemon before the VirtualMachine goes away', async () => {
  const node = (await getVm('vm1')).status!.node as NodeName;
  await kubectl('delete', 'tvm', 'vm1', '--timeout=30s');
  expect((await cp.kubectl(['get', 'tvm', 'vm1'])).code).not.toBe(0);
  expect(await guestOnNode(node, 'vm1')).toBeUndefined();
});

it('reports the VMs of a node whose Lease expired as Unknown, never starts them elsewhere, and recovers', async () => {
  await apply(vmManifest('vm2', { placement: { nodeName: 'node-b' } }));
  const running = await vmInPhase('vm2', 'Running');
  expect(running.status).toMatchObject({ node: 'node-b', epoch: 1 });
  const pid = (await guestOnNode('node-b', 'vm2'))!.pid;

  const stoppedAt = Date.now();
  expect(await daemons['node-b'].stop('SIGTERM')).toBe(0);
  const hvn = await eventually('node-b LeaseExpired', async () => {
    const current = await getJson<HypervisorNode>('hypervisornode', 'node-b');
    return condition(current, 'Ready')?.reason === 'LeaseExpired' ? current : undefined;
  });
  expect(condition(hvn, 'Ready')).toMatchObject({ status: 'False' });
  const unknown = await vmInPhase('vm2', 'Unknown');
  console.log(`node-b LeaseExpired and vm2 Unknown ${Date.now() - stoppedAt} ms after SIGTERM`);
  expect(unknown.status).toMatchObject({ node: 'node-b', epoch: 1 });
  expect(condition(unknown, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'NodeNotReady' });
  // Give the operator time to do the wrong thing: the guest must not appear on node-a.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  expect(await guestOnNode('node-a', 'vm2')).toBeUndefined();
  expect((await getVm('vm2')).status).toMatchObject({ phase: 'Unknown', node: 'node-b', epoch: 1 });
  // The guest's QEMU outlived its daemon.
  expect(await processAlive(pid)).toBe(true);

  daemons['node-b'] = await startDaemonProcess(daemonArgs('node-b'));
  const back = await vmInPhase('vm2', 'Running');
  expect(back.status).toMatchObject({ node: 'node-b', epoch: 1 });
  expect((await guestOnNode('node-b', 'vm2'))?.pid).toBe(pid);
  expect(await eventReasons('VirtualMachine', 'vm2')).toEqual(
    expect.arrayContaining(['NodeNotReady', 'Started']),
  );
});

it('runs a VM that boots from a disk (boot.disk) and migrates it: the firmware boots the test disk image', async () => {
  const started = Date.now();
  const manifest = JSON.parse(vmManifest('vm-disk')) as VirtualMachine;
  // The cached test disk is shared by every test: this guest only reads it (the firmware and the loader do too).
  manifest.spec.boot = { disk: 'root' };
  manifest.spec.disks = [{ name: 'root', path: images.bootDisk, storage: 'shared', readOnly: true }];
  await apply(JSON.stringify(manifest));
  const vm = await vmInPhase('vm-disk', 'Running');
  const node = vm.status!.node as NodeName;
  const guest = (await guestOnNode(node, 'vm-disk'))!;
  // The daemon got no kernel boot; the one disk is marked for the firmware.
  expect(guest.spec?.boot).toBeNull();
  expect(guest.spec?.disks).toMatchObject([
    { name: 'root', path: images.bootDisk, boot: true, readOnly: true },
  ]);
  const consoleText = await eventually(
    'the disk-booted guest agent on the console',
    async () => {
      const text = await readFile(join(stateDir(node), vm.metadata.uid!, 'console.log'), 'utf8');
      return images.readyPattern.test(text) ? text : undefined;
    },
    120_000,
  );
  // The boot loader of the image ran (not a kernel the daemon passed).
  expect(consoleText).toMatch(/SYSLINUX/);
  console.log(`vm-disk agent up ${Date.now() - started} ms after the VM was created`);
  expect((await verifyGuest(stateDir(node), 'vm-disk')).ok).toBe(true);

  // A live migration to the other node: the shared boot disk stays, the memory (firmware and guest) moves.
  const to: NodeName = node === 'node-a' ? 'node-b' : 'node-a';
  await apply(
    JSON.stringify({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name: 'vm-disk-move', namespace: 'default' },
      spec: { vmName: 'vm-disk', targetNode: to },
    }),
  );
  const done = await eventually(
    'vm-disk-move finished',
    async () => {
      const m = await getJson<Migration>('migration', 'vm-disk-move');
      return ['Succeeded', 'Failed', 'Aborted'].includes(m.status?.phase ?? '') ? m : undefined;
    },
    120_000,
  );
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: node, targetNode: to });
  expect((await vmInPhase('vm-disk', 'Running')).status?.node).toBe(to);
  expect(await guestOnNode(node, 'vm-disk')).toBeUndefined();
  expect((await guestOnNode(to, 'vm-disk'))?.spec?.boot).toBeNull();
  expect((await verifyGuest(stateDir(to), 'vm-disk')).ok).toBe(true);

  await kubectl('delete', 'tvm', 'vm-disk', '--timeout=30s');
  expect(await guestOnNode(to, 'vm-disk')).toBeUndefined();
});

it('shuts the operator down on SIGTERM with exit code 0', async () => {
  expect(await operator.stop('SIGTERM')).toBe(0);
});
