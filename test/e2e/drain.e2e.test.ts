// `kubectl tern drain NODE` on the local cluster (network namespaces, real daemons, real QEMU guests, the
// operator): every VM on the node moves live to the other node, the node's evacuation completes, and every guest's
// memory verifies after the move.
import type { HypervisorNode } from '../../crds/index.js';
import { eventually, migrationsOf, smallVm, e2eClusterForFile, startVmsOnNodeA } from './e2e-cluster.js';

const cluster = e2eClusterForFile();

const getNode = (name: string) => cluster.getJson<HypervisorNode>('hypervisornode', name);

test('kubectl tern drain moves every VM off the node and the evacuation completes', async () => {
  const names = ['drain-1', 'drain-2', 'drain-3'];

  const started = await startVmsOnNodeA(cluster, await Promise.all(names.map((name) => smallVm(name, 200))));
  const before = new Map(started.map((vm) => [vm.metadata.name!, vm.status!.epoch!]));

  // It waits until the node is empty, showing each VM's move (a timeout exits non-zero, failing the test here).
  const out = await cluster.kubectlTern(['drain', 'node-a', '--timeout', '4m']);
  console.log(`kubectl tern drain node-a:\n${out}`);
  expect(out).toContain(`hypervisornode.tern.dev/node-a drained (${names.length} VMs moved)`);

  const evacuated = await eventually(
    'node-a Evacuated',
    async () => {
      const node = await getNode('node-a');
      return node.status?.evacuation?.phase === 'Evacuated' ? node : undefined;
    },
    240_000,
  );
  expect(evacuated.status!.evacuation).toMatchObject({ total: names.length, remaining: 0 });
  expect(evacuated.spec?.drain).toBe(true);

  for (const name of names) {
    const vm = await cluster.getVm(name);
    expect(vm.status).toMatchObject({ phase: 'Running', node: 'node-b', epoch: before.get(name)! + 1 });
    const migrations = await migrationsOf(cluster, name);
    // The evacuation retries a failed attempt: exactly one attempt succeeded; failed ones say why in the log.
    const failed = migrations.filter(({ status }) => status?.phase !== 'Succeeded');
    for (const { metadata, status } of failed)
      console.log(`${name}: ${metadata.name} ${status?.phase} ${status?.failureReason}: ${status?.message}`);
    expect(migrations.filter(({ status }) => status?.phase === 'Succeeded')).toHaveLength(1);
    expect(failed.every(({ status }) => status?.phase === 'Failed')).toBe(true);
    const succeeded = migrations.find(({ status }) => status?.phase === 'Succeeded')!;
    expect(succeeded.status).toMatchObject({ sourceNode: 'node-a', targetNode: 'node-b' });
    // Exactly one QEMU runs the guest, on node-b, and its memory is intact.
    expect(await cluster.qemuPids(name)).toEqual({ 'node-a': [], 'node-b': [expect.any(Number)] });
    const verify = await cluster.verify('node-b', name);
    expect(verify.detail).toMatch(/^OK /);
    expect(verify.ok).toBe(true);
  }
}, 420_000);
