// Evacuation and concurrency limits end to end: the real operator process (outbound limit 1 per node, history
// limit 1), a real kube-apiserver and real daemons running QEMU guests (TCG, 256 MiB, 16 MiB working set).
// Draining a node moves its VMs to the other one; then a third node joins and three simultaneous Migrations run,
// never more than one leaving a node at a time. (A node here has 2 CPUs, i.e. room for two 1-CPU VMs.)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { condition, eventually, guestOn, verifyGuest } from '../../harness/operator-cluster.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';
import { EVACUATION_NODE_LABEL } from '../../../crds/index.js';
import { ACTIVE_MIGRATION_PHASES } from '../../../operator/src/migration/state.js';

const KUBECTL_TERN = fileURLToPath(new URL('../../../cli/bin/kubectl-tern', import.meta.url));
type NodeName = 'node-a' | 'node-b' | 'node-c';
const TERMINAL = ['Succeeded', 'Failed', 'Aborted'];

// node-c joins in the second test.
const cluster = twoNodeCluster({
  name: 'evacuation',
  laterNodes: ['node-c'],
  operatorArgs: ['--max-outbound-migrations-per-node', '1', '--migration-history-limit', '1'],
});
const { kubectl, apply, getJson, eventReasons } = cluster.kubectl;

const stateDir = (node: NodeName) => cluster.stateDir(node);
const control = (node: NodeName) => cluster.node(node).control;
const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);
const getNode = (name: NodeName) => getJson<HypervisorNode>('hypervisornode', name);
const listMigrations = async (...selector: string[]) =>
  (await getJson<{ items: Migration[] }>('migrations', ...selector)).items;
const setNodeSpec = (node: NodeName, spec: HypervisorNode['spec']) =>
  kubectl('patch', 'hypervisornode', node, '--type', 'merge', '-p', JSON.stringify({ spec }));

/** Creates the VMs while every other node is cordoned, so that they all start on `node`; checks their VERIFY. */
async function startVmsOn(node: NodeName, names: string[]): Promise<void> {
  const others = (Object.keys(cluster.nodes) as NodeName[]).filter((other) => other !== node);
  for (const other of others) await setNodeSpec(other, { unschedulable: true });
  for (const name of names) await apply(testGuestVm(name, cluster.images));
  for (const name of names) await cluster.runningVm(name, node);
  for (const other of others) await setNodeSpec(other, { unschedulable: false });
  for (const name of names) await expectVerifyOk(node, name);
}

async function expectVerifyOk(node: NodeName, vm: string): Promise<void> {
  const result = await verifyGuest(stateDir(node), vm);
  expect(result.detail).toMatch(/^OK /);
  expect(result.ok).toBe(true);
}

/** Polls the Migrations until `done` holds; returns the most active Migrations seen at once per source node. */
async function watchActivePerSource(done: (migrations: Migration[]) => boolean, ms: number) {
  const most = new Map<string, number>();
  const waitReasons = new Set<string>();
  await eventually(
    'migrations finished',
    async () => {
      const migrations = await listMigrations();
      const active = new Map<string, number>();
      for (const m of migrations) {
        if (m.status?.phase && ACTIVE_MIGRATION_PHASES.includes(m.status.phase)) {
          const source = m.status.sourceNode!;
          active.set(source, (active.get(source) ?? 0) + 1);
        }
        const scheduled = condition(m, 'Scheduled');
        if (m.status?.phase === 'Pending' && scheduled?.status === 'False') waitReasons.add(scheduled.reason);
      }
      for (const [source, count] of active) most.set(source, Math.max(most.get(source) ?? 0, count));
      return done(migrations) ? true : undefined;
    },
    ms,
  );
  return { most, waitReasons };
}

async function scrapeMetrics(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${cluster.operator.metricsPort}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  const started = Date.now();
  await cluster.start();
  await startVmsOn('node-a', ['vm1', 'vm2']);
  console.log(`setup: ${Date.now() - started} ms (control plane ${cluster.controlPlane.startupMs} ms)`);
}, 180_000);

afterAll(() => cluster.stop());

/** Runs `kubectl tern <args>` (the plugin's executable) against the control plane. */
function kubectlTern(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(KUBECTL_TERN, [...args, '--kubeconfig', cluster.controlPlane.kubeconfigPath]);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('drains a node with 2 LiveMigrate VMs: both move to the other node and the evacuation completes', async () => {
  const started = Date.now();
  // `kubectl tern drain` sets drain and unschedulable, then waits for the node to be empty.
  const drain = kubectlTern(['drain', 'node-a', '--timeout', '2m']);
  const { most } = await watchActivePerSource(
    (migrations) =>
      migrations.length === 2 && migrations.every((m) => TERMINAL.includes(m.status?.phase ?? '')),
    120_000,
  );
  const node = await eventually('node-a Evacuated', async () => {
    const hvn = await getNode('node-a');
    return hvn.status?.evacuation?.phase === 'Evacuated' ? hvn : undefined;
  });
  console.log(`drain: 2 VMs evacuated in ${Date.now() - started} ms`);
  const cli = await drain;
  console.log(`kubectl tern drain node-a:\n${cli.stdout}`);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  const lines = cli.stdout.trimEnd().split('\n');
  expect(lines[0]).toBe('hypervisornode.tern.dev/node-a cordoned');
  expect(lines.at(-1)).toBe('hypervisornode.tern.dev/node-a drained (2 VMs moved)');
  for (const vm of ['vm1', 'vm2']) {
    // Each VM's move: its phases (those the CLI's reads caught), then its result, last.
    const mine = lines.filter((line) => line.startsWith(`default/${vm}`));
    expect(mine.at(-1)).toMatch(
      new RegExp(
        `^default/${vm} moved: node-a → node-b in [\\d.ms]+( ms| s)?( \\(downtime [\\d.]+ m?s\\))?$`,
      ),
    );
    for (const line of mine.slice(0, -1)) {
      expect(line).toMatch(
        new RegExp(`^default/${vm}: node-a → (\\?|node-b): [A-Za-z]+ \\(migration default/${vm}-evac-`),
      );
    }
  }
  expect(node.status?.evacuation).toMatchObject({ total: 2, remaining: 0, migrating: 0, failed: 0 });
  expect(most.get('node-a')).toBe(1);

  const migrations = await listMigrations('-l', `${EVACUATION_NODE_LABEL}=node-a`);
  expect(migrations.map((m) => m.spec.vmName).sort()).toEqual(['vm1', 'vm2']);
  for (const m of migrations) {
    expect(m.metadata.name!.startsWith(`${m.spec.vmName}-evac-`)).toBe(true);
    expect(m.spec.targetNode).toBeUndefined();
    expect(m.status).toMatchObject({ phase: 'Succeeded', sourceNode: 'node-a', targetNode: 'node-b' });
  }
  for (const name of ['vm1', 'vm2']) {
    expect((await getVm(name)).status).toMatchObject({ phase: 'Running', node: 'node-b' });
    expect(await guestOn(control('node-a'), name)).toBeUndefined();
    expect((await guestOn(control('node-b'), name))?.phase).toBe('GUEST_PHASE_RUNNING');
    await expectVerifyOk('node-b', name);
  }
  expect(await eventReasons('HypervisorNode', 'node-a')).toEqual(
    expect.arrayContaining(['EvacuationStarted', 'Evacuated']),
  );
  // Level-triggered, not repeated: nothing more is created while the node stays drained.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(await listMigrations()).toHaveLength(2);
}, 150_000);

it('runs 3 simultaneous Migrations with at most 1 leaving a node at a time (outbound limit 1), keeps 1 finished per VM, and counts them in /metrics', async () => {
  await setNodeSpec('node-a', { drain: false, unschedulable: false });
  // The operator clears the finished evacuation once it sees the node undrained, not within the patch.
  await eventually('node-a evacuation cleared', async () => {
    const hvn = await getNode('node-a');
    return hvn.status?.evacuation === undefined ? hvn : undefined;
  });
  await cluster.startNode('node-c');
  await startVmsOn('node-a', ['vm3']);
  const before = await scrapeMetrics();
  expect(metric(before, 'tern_migrations_finished_total{result="Succeeded",reason=""}')).toBe(2);

  const started = Date.now();
  // vm1 and vm2 leave node-b, vm3 leaves node-a.
  await apply({
    apiVersion: 'v1',
    kind: 'List',
    items: ['vm1', 'vm2', 'vm3'].map((vm) => ({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name: `move-${vm}`, namespace: 'default' },
      spec: { vmName: vm },
    })),
  });
  const names = ['move-vm1', 'move-vm2', 'move-vm3'];
  const { most, waitReasons } = await watchActivePerSource((migrations) => {
    const mine = migrations.filter((m) => names.includes(m.metadata.name!));
    return mine.length === 3 && mine.every((m) => TERMINAL.includes(m.status?.phase ?? ''));
  }, 120_000);
  console.log(
    `3 migrations with outbound limit 1: all finished ${Date.now() - started} ms after creation; ` +
      `most active per source ${JSON.stringify(Object.fromEntries(most))}; waits ${[...waitReasons]}`,
  );
  expect(Object.fromEntries(most)).toEqual({ 'node-a': 1, 'node-b': 1 });
  expect([...waitReasons]).toEqual(['OutboundLimit']);
  for (const name of names) {
    const m = await getJson<Migration>('migration', name);
    expect(m.status?.phase).toBe('Succeeded');
    expect(m.status?.sourceNode).toBe(name === 'move-vm3' ? 'node-a' : 'node-b');
    const vm = await getVm(m.spec.vmName);
    expect(vm.status).toMatchObject({ phase: 'Running', node: m.status?.targetNode });
    await expectVerifyOk(m.status!.targetNode as NodeName, m.spec.vmName);
  }

  // History limit 1: the evacuation Migrations of vm1 and vm2 are deleted once newer ones finished.
  await eventually('evacuation Migrations pruned', async () => {
    const left = (await listMigrations()).map((m) => m.metadata.name).sort();
    return left.join() === names.join() ? left : undefined;
  });

  const after = await scrapeMetrics();
  expect(metric(after, 'tern_migrations_finished_total{result="Succeeded",reason=""}')).toBe(5);
  expect(metric(after, 'tern_migrations{phase="Succeeded"}')).toBe(3);
  expect(metric(after, 'tern_migrations{phase="Pending"}')).toBe(0);
  expect(metric(after, 'tern_migration_downtime_seconds_count{source="qemu"}')).toBe(5);
  expect(metric(after, 'tern_migration_phase_duration_seconds_count{phase="Copying"}')).toBe(5);
  expect(metric(after, 'tern_migration_phase_duration_seconds_sum{phase="Copying"}')).toBeGreaterThan(0);
}, 180_000);
