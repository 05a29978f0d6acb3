// The real daemon against a real kube-apiserver: it registers its HypervisorNode (status through the status
// subresource, Ready=True), renews its Lease as heartbeat, keeps conditions others wrote, and reports
// Ready=False when it shuts down.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Lease } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import type { HypervisorNode } from '../../../crds/index.js';
import { generateDevCerts } from '../../harness/certificates.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import { eventually as pollUntil } from '../../harness/eventually.js';

const CRD = fileURLToPath(new URL('../../../crds/generated/tern.dev_hypervisornodes.yaml', import.meta.url));

let controlPlane: ControlPlane;
let work: string;
let daemon: DaemonProcess;

async function kubectl(...args: string[]): Promise<string> {
  const result = await controlPlane.kubectl(args);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function getJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl('get', ...args, '-o', 'json')) as T;
}

const eventually = <T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> =>
  pollUntil(what, probe, ms, 200);

const ready = (node: HypervisorNode) =>
  node.status?.conditions?.find((condition) => condition.type === 'Ready');

beforeAll(async () => {
  controlPlane = await startControlPlane({ name: 'registration' });
  await kubectl('apply', '-f', CRD);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', 'crd/hypervisornodes.tern.dev');
  await kubectl('create', 'namespace', 'tern-system');
  work = await mkdtemp(join(tmpdir(), 'tern-reg-'));
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir: join(work, 'state'), sharedImageRoot: work },
      ...['--kubeconfig', controlPlane.kubeconfigPath],
      ...['--lease-duration-seconds', '4', '--heartbeat-interval-seconds', '1'],
    ),
  );
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  if (work) {
    await killGuestsIn(join(work, 'state'));
    await rm(work, { recursive: true, force: true });
  }
  await controlPlane?.stop();
});

it('registers its HypervisorNode with Ready=True and its facts in status', async () => {
  const node = await eventually('Ready=True', async () => {
    const current = await getJson<HypervisorNode>('hypervisornode', 'node-a');
    return ready(current)?.status === 'True' ? current : undefined;
  });
  expect(node.status).toMatchObject({
    accelerator: 'tcg',
    cpuModel: 'max',
    endpoint: `127.0.0.1:${daemon.grpcPort}`,
    vmCount: 0,
    // Root may create taps, so the default --network auto chose the bridge (tern0 unless --bridge says otherwise).
    network: { mode: 'bridge', bridge: 'tern0' },
  });
  expect(node.status?.qemuVersion).toMatch(/^\d+\.\d+\.\d+$/);
  expect(node.status?.capacity?.cpu).toBeGreaterThan(0);
  expect(node.status?.allocatable?.memory).toMatch(/^\d+Mi$/);
  expect(ready(node)).toMatchObject({ reason: 'DaemonReady' });
  // The status subresource was used: the daemon never wrote a spec.
  expect(node.spec ?? {}).toEqual({});
  expect((await kubectl('get', 'hypervisornode', 'node-a')).split('\n')[1]).toMatch(
    /^node-a\s+True\s+tcg\s+0\s+/,
  );
});

it('renews its Lease in tern-system as heartbeat', async () => {
  const first = await eventually('the Lease', () => getJson<V1Lease>('lease', '-n', 'tern-system', 'node-a'));
  expect(first.spec).toMatchObject({ holderIdentity: 'node-a', leaseDurationSeconds: 4 });
  const renewTime = (lease: V1Lease) => Date.parse(String(lease.spec?.renewTime));
  const renewed = await eventually('a renewal', async () => {
    const lease = await getJson<V1Lease>('lease', '-n', 'tern-system', 'node-a');
    return renewTime(lease) > renewTime(first) ? lease : undefined;
  });
  expect(renewTime(renewed) - renewTime(first)).toBeGreaterThanOrEqual(900);
});

it('creates its Lease again when someone deletes it', async () => {
  const before = await getJson<V1Lease>('lease', '-n', 'tern-system', 'node-a');
  await kubectl('delete', 'lease', '-n', 'tern-system', 'node-a');
  const recreated = await eventually('a new Lease', async () => {
    const result = await controlPlane.kubectl(['get', 'lease', '-n', 'tern-system', 'node-a', '-o', 'json']);
    if (result.code !== 0) return undefined; // not yet recreated
    const lease = JSON.parse(result.stdout) as V1Lease;
    // Created first and given its renewTime by a patch right after: wait for both.
    return lease.metadata?.uid !== before.metadata?.uid && lease.spec?.renewTime ? lease : undefined;
  });
  expect(recreated.spec).toMatchObject({ holderIdentity: 'node-a', leaseDurationSeconds: 4 });
  expect(recreated.spec?.renewTime).toBeDefined();
  // And it is renewed from then on.
  const renewTime = (lease: V1Lease) => Date.parse(String(lease.spec?.renewTime));
  await eventually('a renewal of the new Lease', async () => {
    const lease = await getJson<V1Lease>('lease', '-n', 'tern-system', 'node-a');
    return renewTime(lease) > renewTime(recreated) ? lease : undefined;
  });
});

it('reports Ready=False on shutdown and keeps conditions written by others', async () => {
  const healthy = {
    type: 'Healthy',
    status: 'True',
    reason: 'Probed',
    message: 'set by the test',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  };
  const current = await getJson<HypervisorNode>('hypervisornode', 'node-a');
  await kubectl(
    'patch',
    'hypervisornode',
    'node-a',
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { conditions: [...(current.status?.conditions ?? []), healthy] } }),
  );
  expect(await daemon.stop('SIGTERM')).toBe(0);
  const node = await getJson<HypervisorNode>('hypervisornode', 'node-a');
  expect(ready(node)).toMatchObject({ status: 'False', reason: 'DaemonStopped' });
  expect(node.status?.conditions?.find((condition) => condition.type === 'Healthy')).toEqual(healthy);
});
