// Kubernetes node maintenance end to end (docs/node-maintenance.md): the real kube-apiserver with two Node objects,
// the real operator with guard pods, the cordon mirror and its eviction webhook, real daemons running QEMU guests
// (TCG), and the real `kubectl drain` / `cordon` / `uncordon`. No kubelet: the guard pods stay Pending, which the
// Eviction API and the webhook do not care about; the operator removes a guard once its VM has left.
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { eventually, guestOn, verifyGuest } from '../../harness/operator-cluster.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';

const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];

interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
}

const cluster = twoNodeCluster({ name: 'maintenance', kubeNodes: true, evictionWebhook: true });
const { kubectl, apply, getJson } = cluster.kubectl;

const stateDir = (node: NodeName) => cluster.stateDir(node);
const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);
const getNode = (name: NodeName) => getJson<HypervisorNode>('hypervisornode', name);
const kubeNodeCordoned = async (name: NodeName) =>
  !!(await getJson<{ spec?: { unschedulable?: boolean } }>('node', name)).spec?.unschedulable;
const hvCordoned = async (name: NodeName) => {
  const spec = (await getNode(name)).spec;
  return !!(spec?.unschedulable || spec?.drain);
};
const guards = async () =>
  (await getJson<{ items: Pod[] }>('pods', '-n', 'tern-system', '-l', 'tern.dev/guard-vm-uid')).items;

/** Starts the VM on `node` (the other one cordoned meanwhile, through the mirror) and checks its VERIFY. */
async function startVmOn(node: NodeName, vm: VirtualMachine): Promise<void> {
  const other = NODES.find((n) => n !== node)!;
  await kubectl('cordon', other);
  await eventually(`${other} mirrored cordoned`, async () => ((await hvCordoned(other)) ? true : undefined));
  await apply(vm);
  await cluster.runningVm(vm.metadata.name!, node);
  await kubectl('uncordon', other);
  await eventually(`${other} mirrored uncordoned`, async () =>
    (await hvCordoned(other)) ? undefined : true,
  );
  await expectVerifyOk(node, vm.metadata.name!);
}

async function expectVerifyOk(node: NodeName, vm: string): Promise<void> {
  const result = await verifyGuest(stateDir(node), vm);
  expect(result.detail).toMatch(/^OK /);
  expect(result.ok).toBe(true);
}

/** Which nodes have the VM's guest (`running`: only those where it runs, not paused for a migration). */
async function guestNodes(vm: string, running = false): Promise<NodeName[]> {
  const found: NodeName[] = [];
  for (const node of NODES) {
    const guest = await guestOn(cluster.node(node).control, vm);
    if (guest && (!running || guest.phase === 'GUEST_PHASE_RUNNING')) found.push(node);
  }
  return found;
}

/** The guard pods per VM name, with their node. */
async function guardNodes(): Promise<Record<string, string[]>> {
  const byVm: Record<string, string[]> = {};
  for (const pod of await guards()) {
    const vm = pod.metadata.labels!['tern.dev/guard-vm-name']!;
    (byVm[vm] ??= []).push(pod.spec.nodeName!);
  }
  return byVm;
}

beforeAll(async () => {
  const started = Date.now();
  await cluster.start();
  await startVmOn('node-a', testGuestVm('vm1', cluster.images));
  const pinned = testGuestVm('vm2', cluster.images);
  pinned.spec.evictionStrategy = 'None';
  await startVmOn('node-b', pinned);
  console.log(`setup: ${Date.now() - started} ms (control plane ${cluster.controlPlane.startupMs} ms)`);
}, 240_000);

afterAll(() => cluster.stop());

it('keeps one guard pod per running VM on its node', async () => {
  const byVm = await eventually('guards on the VMs’ nodes', async () => {
    const current = await guardNodes();
    return current.vm1?.join() === 'node-a' && current.vm2?.join() === 'node-b' ? current : undefined;
  });
  expect(byVm).toEqual({ vm1: ['node-a'], vm2: ['node-b'] });
});

it('mirrors cordons both ways: Node → HypervisorNode and HypervisorNode → Node', async () => {
  await kubectl('cordon', 'node-b');
  await eventually('HypervisorNode node-b cordoned', async () =>
    (await hvCordoned('node-b')) ? true : undefined,
  );
  await kubectl('uncordon', 'node-b');
  await eventually('HypervisorNode node-b uncordoned', async () =>
    (await hvCordoned('node-b')) ? undefined : true,
  );
  // `kubectl tern cordon` writes the HypervisorNode: the Node follows, and back.
  await kubectl(
    'patch',
    'hypervisornode',
    'node-b',
    '--type',
    'merge',
    '-p',
    '{"spec":{"unschedulable":true}}',
  );
  await eventually('Node node-b cordoned', async () =>
    (await kubeNodeCordoned('node-b')) ? true : undefined,
  );
  await kubectl(
    'patch',
    'hypervisornode',
    'node-b',
    '--type',
    'merge',
    '-p',
    '{"spec":{"unschedulable":null}}',
  );
  await eventually('Node node-b uncordoned', async () =>
    (await kubeNodeCordoned('node-b')) ? undefined : true,
  );
  // Settled: neither side flips back.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(await kubeNodeCordoned('node-b')).toBe(false);
  expect(await hvCordoned('node-b')).toBe(false);
});

it('kubectl drain waits until the LiveMigrate VM has been live-migrated away, then completes', async () => {
  const started = Date.now();
  let seenOnBoth = false;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      // Two QEMUs during a migration are expected (the target's paused); a guest running on both never is.
      if ((await guestNodes('vm1', true)).length > 1) seenOnBoth = true;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  const result = await cluster.controlPlane.kubectl([
    'drain',
    'node-a',
    '--ignore-daemonsets',
    '--timeout=180s',
  ]);
  watching = false;
  await watch;
  console.log(`kubectl drain node-a (${Date.now() - started} ms):\n${result.stdout}\n${result.stderr}`);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/node\/node-a cordoned/);
  expect(result.stdout).toMatch(/node\/node-a drained/);
  expect(result.stderr).toMatch(/VirtualMachine default\/vm1 is being live-migrated off node node-a/);
  const vm = await getVm('vm1');
  expect(vm.status?.node).toBe('node-b');
  expect(vm.status?.phase).toBe('Running');
  expect(await guestNodes('vm1')).toEqual(['node-b']);
  expect(seenOnBoth).toBe(false);
  await expectVerifyOk('node-b', 'vm1');
  expect((await getNode('node-a')).spec).toMatchObject({ drain: true, unschedulable: true });
  expect((await guardNodes()).vm1).toEqual(['node-b']);
}, 240_000);

it('kubectl uncordon makes the node eligible again', async () => {
  await kubectl('uncordon', 'node-a');
  const node = await eventually('HypervisorNode node-a eligible', async () => {
    const hvn = await getNode('node-a');
    return hvn.spec?.unschedulable || hvn.spec?.drain ? undefined : hvn;
  });
  expect(node.status?.evacuation).toBeUndefined();
});

it('a VM with evictionStrategy None stops the drain with a message naming it; the others still move', async () => {
  const result = await cluster.controlPlane.kubectl([
    'drain',
    'node-b',
    '--ignore-daemonsets',
    '--timeout=180s',
  ]);
  console.log(`kubectl drain node-b:\n${result.stdout}\n${result.stderr}`);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(
    /VirtualMachine default\/vm2 has evictionStrategy None and stays on node node-b/,
  );
  // vm1 (LiveMigrate) went back to node-a meanwhile; vm2 runs on, untouched.
  const vm1 = await getVm('vm1');
  expect(vm1.status?.node).toBe('node-a');
  expect(await guestNodes('vm1')).toEqual(['node-a']);
  await expectVerifyOk('node-a', 'vm1');
  const vm2 = await getVm('vm2');
  expect(vm2.status).toMatchObject({ node: 'node-b', phase: 'Running' });
  expect(await guestNodes('vm2')).toEqual(['node-b']);
  await expectVerifyOk('node-b', 'vm2');
  expect((await guardNodes()).vm2).toEqual(['node-b']);
  await kubectl('uncordon', 'node-b');
  await eventually('HypervisorNode node-b eligible', async () =>
    (await hvCordoned('node-b')) ? undefined : true,
  );
}, 240_000);
