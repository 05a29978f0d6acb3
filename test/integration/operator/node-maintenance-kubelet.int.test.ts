// Node maintenance on real kubelet nodes (test/harness/kubelet-cluster.ts; root only): the guard pods run (the
// pause image, under the nodes' containerd), the garbage collector of kube-controller-manager accepts their owner
// (the HypervisorNode), and the real `kubectl drain` waits for the VM to be live-migrated away, after which the
// kubelet of the drained node has no guard pod left and the other node runs the VM's new one. The daemons run as
// host processes, as in the other operator tests (the chart on these nodes is issue 13 item 4).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VirtualMachine } from '../../../crds/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient } from '../../harness/control-client.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { installEvictionWebhook } from '../../harness/eviction-webhook.js';
import {
  kubeletClusterLeftovers,
  PAUSE_IMAGE,
  startKubeletCluster,
  type KubeletCluster,
} from '../../harness/kubelet-cluster.js';
import type { GuestControlClient } from '../../../proto/index.js';
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
const POD_TIMEOUT_MS = 90_000;

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status?: { phase?: string };
}

let cluster: KubeletCluster;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
const daemons: Partial<Record<NodeName, DaemonProcess>> = {};
const controls = {} as Record<NodeName, GuestControlClient>;
const { kubectl, apply, getJson } = kubectlOn(() => cluster.controlPlane);

const stateDir = (node: NodeName) => join(work, node.slice(-1));
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
  work = await mkdtemp(join(tmpdir(), 'tmaintk-'));
  [cluster, images] = await Promise.all([startKubeletCluster(), testGuestImages()]);
  const cp = cluster.controlPlane;
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(
    join(work, 'pki'),
    NODES.map((name) => ({ name })),
  );
  const webhookArgs = await installEvictionWebhook(cp, work, 'tern-system');
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ...['--guard-image', PAUSE_IMAGE],
    ...webhookArgs,
  ]);
  for (const node of NODES) {
    const daemon = await startDaemonProcess(
      testDaemonArgs({
        node,
        certs,
        stateDir: stateDir(node),
        imagesRoot: images.root,
        kubeconfig: cp.kubeconfigPath,
        leaseDurationSeconds: 6,
      }),
    );
    daemons[node] = daemon;
    controls[node] = controlClient(`127.0.0.1:${daemon.grpcPort}`, {
      ca: certs.ca.cert,
      cert: certs.operator.cert,
      key: certs.operator.key,
    });
    await eventually(`${node} Ready`, async () => {
      const hvn = await getJson<{ status?: { conditions?: [] } }>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });
  }
  // vm1 starts on node-a: node-b cordoned meanwhile (through the mirror).
  await kubectl('cordon', 'node-b');
  await eventually('HypervisorNode node-b cordoned', async () =>
    (await getJson<{ spec?: { unschedulable?: boolean } }>('hypervisornode', 'node-b')).spec?.unschedulable
      ? true
      : undefined,
  );
  await apply(testGuestVm('vm1', images));
  await eventually('vm1 Running on node-a', async () => {
    const vm = await getVm('vm1');
    return vm.status?.phase === 'Running' && vm.status.node === 'node-a' ? vm : undefined;
  });
  await kubectl('uncordon', 'node-b');
  await eventually('HypervisorNode node-b uncordoned', async () =>
    (await getJson<{ spec?: { unschedulable?: boolean } }>('hypervisornode', 'node-b')).spec?.unschedulable
      ? undefined
      : true,
  );
  console.log(`setup: ${Date.now() - started} ms (kubelet cluster ${cluster.startupMs} ms)`);
}, 300_000);

afterAll(async () => {
  for (const client of Object.values(controls)) client.close();
  await operator?.stop();
  await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
  if (work) {
    for (const node of Object.keys(daemons) as NodeName[]) await killGuestsIn(stateDir(node));
    await rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
  if (cluster) {
    await cluster.stop();
    expect(await kubeletClusterLeftovers(cluster.id)).toEqual([]);
  }
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
  expect(await guestOn(controls['node-a'], 'vm1')).toBeUndefined();
  expect((await guestOn(controls['node-b'], 'vm1'))?.phase).toBe('GUEST_PHASE_RUNNING');
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
