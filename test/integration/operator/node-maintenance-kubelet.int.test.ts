// Node maintenance on real kubelet nodes (test/harness/kubelet-cluster.ts; root only): the guard pods run (the
// pause image, under the nodes' containerd), the garbage collector of kube-controller-manager accepts their owner
// (the HypervisorNode), and the real `kubectl drain` waits for the VM to be live-migrated away, after which the
// kubelet of the drained node has no guard pod left and the other node runs the VM's new one. The daemons run as
// host processes, as in the other operator tests (the chart on these nodes is issue 13 item 4).
import type { VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { kubeletClusterLeftovers, PAUSE_IMAGE } from '../../harness/kubelet-cluster.js';
import { eventually, guestOn, verifyGuest } from '../../harness/operator-cluster.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';

type NodeName = 'node-a' | 'node-b';
const POD_TIMEOUT_MS = 90_000;

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status?: { phase?: string };
}

const cluster = twoNodeCluster({
  name: 'maintenance-kubelet',
  kubelets: true,
  evictionWebhook: true,
  operatorArgs: ['--guard-image', PAUSE_IMAGE],
});
const { kubectl, apply, getJson } = cluster.kubectl;

const stateDir = (node: NodeName) => cluster.stateDir(node);
const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);
const guards = async () =>
  (await getJson<{ items: Pod[] }>('pods', '-n', 'tern-system', '-l', 'tern.dev/guard-vm-name=vm1')).items;

/** The VM's one guard pod once it runs on `node` (and no other guard is left). */
const runningGuardOn = (node: NodeName) =>
  eventually(
    `vm1's guard Running on ${node}, alone`,
    async () => {
      const pods = await guards();
      return pods.length === 1 && pods[0]!.spec.nodeName === node && pods[0]!.status?.phase === 'Running'
        ? pods[0]
        : undefined;
    },
    POD_TIMEOUT_MS,
    250,
  );

beforeAll(async () => {
  const started = Date.now();
  await cluster.start();
  // vm1 starts on node-a: node-b cordoned meanwhile (through the mirror).
  await kubectl('cordon', 'node-b');
  await eventually('HypervisorNode node-b cordoned', async () =>
    (await getJson<{ spec?: { unschedulable?: boolean } }>('hypervisornode', 'node-b')).spec?.unschedulable
      ? true
      : undefined,
  );
  await apply(testGuestVm('vm1', cluster.images));
  await cluster.runningVm('vm1', 'node-a');
  await kubectl('uncordon', 'node-b');
  await eventually('HypervisorNode node-b uncordoned', async () =>
    (await getJson<{ spec?: { unschedulable?: boolean } }>('hypervisornode', 'node-b')).spec?.unschedulable
      ? undefined
      : true,
  );
  console.log(`setup: ${Date.now() - started} ms (kubelet cluster ${cluster.kubeletCluster!.startupMs} ms)`);
}, 300_000);

afterAll(async () => {
  const id = cluster.kubeletCluster?.id;
  await cluster.stop();
  if (id !== undefined) expect(await kubeletClusterLeftovers(id)).toEqual([]);
}, 120_000);

it('runs the guard pod of a running VM on its node', async () => {
  const guard = await runningGuardOn('node-a');
  expect(guard.metadata.labels?.['tern.dev/guard-vm-namespace']).toBe('default');
});

it('kubectl drain waits for the VM to be live-migrated away; its guard then runs on the other node only', async () => {
  const before = await runningGuardOn('node-a');
  const started = Date.now();
  const result = await cluster.controlPlane.kubectl([
    'drain',
    'node-a',
    '--ignore-daemonsets',
    '--timeout=180s',
  ]);
  console.log(`kubectl drain node-a (${Date.now() - started} ms):\n${result.stdout}\n${result.stderr}`);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/VirtualMachine default\/vm1 is being live-migrated off node node-a/);
  const vm = await getVm('vm1');
  expect(vm.status).toMatchObject({ node: 'node-b', phase: 'Running' });
  expect(await guestOn(cluster.node('node-a').control, 'vm1')).toBeUndefined();
  expect((await guestOn(cluster.node('node-b').control, 'vm1'))?.phase).toBe('GUEST_PHASE_RUNNING');
  const result2 = await verifyGuest(stateDir('node-b'), 'vm1');
  expect(result2.detail).toMatch(/^OK /);
  const after = await runningGuardOn('node-b');
  expect(after.metadata.uid).not.toBe(before.metadata.uid);
  await kubectl('uncordon', 'node-a');
  await eventually('HypervisorNode node-a eligible', async () => {
    const spec = (
      await getJson<{ spec?: { unschedulable?: boolean; drain?: boolean } }>('hypervisornode', 'node-a')
    ).spec;
    return spec?.unschedulable || spec?.drain ? undefined : true;
  });
}, 240_000);
