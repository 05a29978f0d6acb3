// The operator killed in the middle of a live migration, on the local cluster (network namespaces): the daemons
// keep going, a new operator takes over (after the old leader Lease expires), the migration finishes, and the
// guest runs on exactly one node: the one the VM records, with its memory intact.
import {
  migrationInPhase,
  migrationsOf,
  runningVm,
  smallVm,
  e2eClusterForFile,
  TERMINAL_MIGRATION_PHASES,
} from './e2e-cluster.js';

const cluster = e2eClusterForFile();

test('a migration survives an operator restart and the guest ends on exactly one node', async () => {
  // A 128 MiB working set behind an 8 MiB/s bandwidth limit: the copy takes long enough to kill the operator in it.
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(await smallVm('mover', 500, 128)));
  const vm = await runningVm(cluster, 'mover');
  const source = vm.status!.node!;
  const target = source === 'node-a' ? 'node-b' : 'node-a';
  expect((await cluster.verify(source, 'mover')).ok).toBe(true);

  await cluster.kubectlTern(['migrate', 'mover', '--to', target, '--bandwidth', '8Mi']);
  const copying = await migrationInPhase(cluster, 'mover', ['Copying']);
  await cluster.stopOperator('SIGKILL');
  await cluster.startOperator();

  const finished = await migrationInPhase(cluster, 'mover', TERMINAL_MIGRATION_PHASES, {
    name: copying.metadata.name,
    ms: 240_000,
  });
  expect(finished.status).toMatchObject({ phase: 'Succeeded', sourceNode: source, targetNode: target });
  // No second migration was started for the VM.
  expect(await migrationsOf(cluster, 'mover')).toHaveLength(1);

  const after = await runningVm(cluster, 'mover', target);
  expect(after.status!.epoch).toBe(vm.status!.epoch! + 1);
  expect(await cluster.qemuPids('mover')).toEqual({ [source]: [], [target]: [expect.any(Number)] });
  const verify = await cluster.verify(target, 'mover');
  expect(verify.detail).toMatch(/^OK /);
  expect(verify.ok).toBe(true);
}, 420_000);
