// Faults in the middle of a migration: a guest's QEMU dies (as an OOM kill would do it), the VM is deleted. The
// real operator, a real kube-apiserver and two real daemons with a TCG guest. Whatever dies, the Migration ends in a terminal phase with
// a specific reason within a bounded time, the guest ends on exactly one node (running, or restarted by its
// restartPolicy when its only QEMU died), and deleting a Migration always finishes.
import type { Migration, VirtualMachine } from '../../crds/index.js';
import type { MigrationState__Output } from '../../proto/index.js';
import { unary } from '../harness/control-client.js';
import { condition, eventually, guestOn, verifyGuest } from '../harness/operator-cluster.js';
import { twoNodeCluster } from '../harness/two-node-cluster.js';
import { testGuestVm } from '../fixtures/test-guest.js';

type NodeName = 'node-a' | 'node-b';
const VM = 'crash';
/** Whatever dies, the Migration is terminal within this bound (the daemons notice a dead QEMU at once). */
const TERMINAL_WITHIN_MS = 30_000;

const cluster = twoNodeCluster({
  name: 'qemu-crash',
  operatorArgs: ['--migration-progress-interval-ms', '500'],
});
const { kubectl, apply, getJson, eventReasons, holdOwnershipRecord } = cluster.kubectl;

const stateDir = (node: NodeName) => cluster.stateDir(node);
const other = (node: NodeName): NodeName => (node === 'node-a' ? 'node-b' : 'node-a');
const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
const guestOnNode = (node: NodeName) => guestOn(cluster.node(node).control, VM);

const migrationIn = (name: string, phases: string[], ms?: number) =>
  eventually(
    `${name} in ${phases.join('|')}`,
    async () => {
      const migration = await getJson<Migration>('migration', name);
      return phases.includes(migration.status?.phase ?? '') ? migration : undefined;
    },
    ms,
  );

/** A Migration of the VM at 1 MiB/s: its first copy of the guest's memory lasts minutes. */
const slowMigration = (name: string) => ({
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'Migration',
  metadata: { name, namespace: 'default' },
  spec: { vmName: VM, overrides: { bandwidth: '1Mi' } },
});

/** Applies a slow Migration and resolves once it copies (bytes on the wire) with the source and target nodes. */
async function copying(name: string): Promise<{ from: NodeName; to: NodeName }> {
  const from = (await getVm()).status!.node as NodeName;
  await apply(slowMigration(name));
  await eventually(`${name} copying with progress`, async () => {
    const current = await getJson<Migration>('migration', name);
    return current.status?.phase === 'Copying' && (current.status.progress?.transferredBytes ?? 0) > 0
      ? current
      : undefined;
  });
  return { from, to: other(from) };
}

/** A daemon's stage of a migration (undefined: it knows none of that id). */
const daemonStage = (node: NodeName, id: string) =>
  unary<MigrationState__Output>((done) =>
    cluster.node(node).migration.getMigration({ migrationId: id }, done),
  ).then(
    (state) => state.stage,
    () => undefined,
  );

/** The pid of the VM's QEMU on `node` as its daemon reports it. */
async function qemuPid(node: NodeName): Promise<number> {
  const guest = await guestOnNode(node);
  if (!guest?.pid) throw new Error(`${node} runs no QEMU of ${VM}`);
  return guest.pid;
}

/** The VM Running on `node` with a guest whose agent answers VERIFY OK. */
async function expectRunningOn(node: NodeName): Promise<VirtualMachine> {
  const vm = await eventually(
    `${VM} Running on ${node}`,
    async () => {
      const current = await getVm();
      const guest = await guestOnNode(node);
      return current.status?.phase === 'Running' &&
        current.status.node === node &&
        current.status.activeMigration === undefined &&
        guest?.phase === 'GUEST_PHASE_RUNNING'
        ? current
        : undefined;
    },
    90_000,
  );
  const verified = await verifyGuest(stateDir(node), VM);
  expect(verified.detail).toMatch(/^OK /);
  expect(await guestOnNode(other(node))).toBeUndefined();
  return vm;
}

beforeAll(async () => {
  await cluster.start();
  await apply(testGuestVm(VM, cluster.images));
  const vm = await cluster.runningVm(VM);
  await expectRunningOn(vm.status!.node as NodeName);
}, 240_000);

afterAll(() => cluster.stop());

it('the source QEMU killed during Copying: Failed (SourceFailed), the target aborted, the VM restarted on the source', async () => {
  const { from, to } = await copying('source-dies');
  const before = await getVm();
  const pid = await qemuPid(from);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const failed = await migrationIn('source-dies', ['Failed', 'Aborted', 'Succeeded'], TERMINAL_WITHIN_MS);
  console.log(
    `source QEMU killed → ${failed.status?.phase} in ${Date.now() - killedAt} ms: ${failed.status?.message}`,
  );
  expect(failed.status).toMatchObject({ phase: 'Failed', failureReason: 'SourceFailed' });
  expect(failed.status?.message).toMatch(/QEMU/);
  expect(condition(failed, 'Completed')).toMatchObject({ status: 'False', reason: 'SourceFailed' });
  expect(await guestOnNode(to)).toBeUndefined();
  // restartPolicy Always (the default): the VM's only QEMU died, so it starts again where its record says.
  const vm = await expectRunningOn(from);
  expect(await qemuPid(from)).not.toBe(pid);
  expect(vm.status).toMatchObject({ node: from, epoch: before.status!.epoch });
  expect(vm.status?.lastMigration).toMatchObject({ name: 'source-dies', result: 'Failed' });
  expect(await eventReasons('VirtualMachine', VM)).toEqual(expect.arrayContaining(['MigrationFailed']));
}, 180_000);

it('a Migration deleted after its source QEMU died is gone within the bound; the VM runs again', async () => {
  const { from, to } = await copying('deleted-after-crash');
  process.kill(await qemuPid(from), 'SIGKILL');
  const deletedAt = Date.now();
  await kubectl('delete', 'migration', 'deleted-after-crash', '--wait=false');
  await eventually(
    'deleted-after-crash gone',
    async () => {
      const list = await getJson<{ items: Migration[] }>('migrations');
      return list.items.some((m) => m.metadata.name === 'deleted-after-crash') ? undefined : true;
    },
    TERMINAL_WITHIN_MS,
  );
  console.log(`Migration deleted after the source QEMU died: gone in ${Date.now() - deletedAt} ms`);
  expect(await guestOnNode(to)).toBeUndefined();
  await expectRunningOn(from);
}, 180_000);

it('the target QEMU killed during Copying: Failed (TransportFailed), the guest runs on at the source', async () => {
  const { from, to } = await copying('target-dies');
  const sourcePid = await qemuPid(from);
  const killedAt = Date.now();
  process.kill(await qemuPid(to), 'SIGKILL');
  const failed = await migrationIn('target-dies', ['Failed', 'Aborted', 'Succeeded'], TERMINAL_WITHIN_MS);
  console.log(
    `target QEMU killed → ${failed.status?.phase} in ${Date.now() - killedAt} ms: ${failed.status?.message}`,
  );
  expect(failed.status).toMatchObject({ phase: 'Failed', failureReason: 'TransportFailed' });
  await expectRunningOn(from);
  // The same QEMU: the guest never stopped.
  expect(await qemuPid(from)).toBe(sourcePid);
}, 180_000);

it('the target QEMU killed at the hand-over: the record stays with the source, which runs the guest again', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  const sourcePid = await qemuPid(from);
  // The operator stops before the ownership compare-and-swap, with the guest complete and paused on the target.
  const release = await holdOwnershipRecord(VM);
  await apply({ ...slowMigration('target-lost'), spec: { vmName: VM } });
  const held = await eventually(
    'target-lost loaded on the target',
    async () => {
      const current = await getJson<Migration>('migration', 'target-lost');
      const id = current.metadata.uid!;
      const [source, target] = await Promise.all([daemonStage(from, id), daemonStage(to, id)]);
      return source === 'MIGRATION_STAGE_FINISHED' && target === 'MIGRATION_STAGE_LOADED'
        ? current
        : undefined;
    },
    120_000,
  );
  process.kill(await qemuPid(to), 'SIGKILL');
  const killedAt = Date.now();
  await release();
  const failed = await migrationIn('target-lost', ['Failed', 'Aborted', 'Succeeded'], TERMINAL_WITHIN_MS);
  console.log(
    `target QEMU killed at the hand-over → ${failed.status?.phase} in ${Date.now() - killedAt} ms: ${failed.status?.message}`,
  );
  expect(failed.status).toMatchObject({ phase: 'Failed', failureReason: 'TargetFailed' });
  // The run that meets the lifted hold resumes one that failed at the held swap: it asks the target first, finds
  // its QEMU gone, and never moves the record (the swap-then-reclaim order is in daemon-migration.int.test.ts).
  expect(failed.status?.message).toMatch(
    /lost the guest before it resumed it .*; the ownership record stays with/,
  );
  expect(failed.metadata.uid).toBe(held.metadata.uid);
  const vm = await expectRunningOn(from);
  expect(vm.status).toMatchObject({ node: from, epoch: before.status!.epoch });
  // The same QEMU: the source paused the guest and ran it again.
  expect(await qemuPid(from)).toBe(sourcePid);
}, 240_000);

it('the VM deleted while it migrates: the Migration is Aborted, the guest deleted where it ran, the VM gone', async () => {
  const { from, to } = await copying('vm-deleted');
  const deletedAt = Date.now();
  await kubectl('delete', 'virtualmachine', VM, '--wait=false');
  const aborted = await migrationIn('vm-deleted', ['Aborted', 'Failed', 'Succeeded'], TERMINAL_WITHIN_MS);
  expect(aborted.status).toMatchObject({ phase: 'Aborted', failureReason: 'Cancelled' });
  expect(aborted.status?.message).toMatch(/the VirtualMachine is being deleted/);
  await eventually(
    `${VM} gone`,
    async () => {
      const list = await getJson<{ items: VirtualMachine[] }>('virtualmachines');
      return list.items.some((vm) => vm.metadata.name === VM) ? undefined : true;
    },
    TERMINAL_WITHIN_MS,
  );
  console.log(`VM deleted during Copying: Migration Aborted and VM gone in ${Date.now() - deletedAt} ms`);
  expect(await guestOnNode(from)).toBeUndefined();
  expect(await guestOnNode(to)).toBeUndefined();
}, 180_000);
