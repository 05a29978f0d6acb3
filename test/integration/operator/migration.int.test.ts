// Migrations end to end: the real operator process, a real kube-apiserver and two real daemon processes running a
// QEMU guest (TCG, 256 MiB, 16 MiB working set). Every migration ends with the guest agent's VERIFY OK on the node
// the VM's record names; the guest never runs on both nodes. The daemons run QEMU as the unprivileged test user
// (--qemu-user), as the Helm chart does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTerminalMigrationPhase, type Migration, type VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { DaemonClientPool } from '../../../operator/src/daemon/client-pool.js';
import { UNFENCED } from '../../../operator/src/daemon/fencing.js';
import {
  VM_STATUS_UPDATES,
  condition,
  eventually,
  guestOn,
  verifyGuest,
} from '../../harness/operator-cluster.js';
import type { OperatorProcess } from '../../harness/operator-process.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';
import { ATTEMPT_ANNOTATION } from '../../../operator/src/migration/state.js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { guestDirOfVm } from '../../harness/guest-lookup.js';

const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const VM = 'mvm';

const cluster = twoNodeCluster({
  name: 'migration-reconciler',
  qemuUser: true,
  operatorArgs: ['--migration-progress-interval-ms', '500'],
});
let pool: DaemonClientPool;
const { kubectl, apply, getJson, eventReasons, holdWrites, dryRunRefused, holdOwnershipRecord } =
  cluster.kubectl;

const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
const getMigration = (name: string) => getJson<Migration>('migration', name);

const migrationIn = (name: string, phases: string[], ms?: number) =>
  eventually(
    `${name} in ${phases.join('|')}`,
    async () => {
      const migration = await getMigration(name);
      return phases.includes(migration.status?.phase ?? '') ? migration : undefined;
    },
    ms,
  );

const stateDir = (node: NodeName) => cluster.stateDir(node);

/** A daemon's record of a migration id (undefined: it has none), through its Migration API. */
const daemonMigration = (node: NodeName, id: string) =>
  pool.migrationClient(node, `127.0.0.1:${cluster.node(node).daemon.grpcPort}`).getMigration(id);

const logged = (operatorProcess: OperatorProcess, msg: string, migrationUid?: string) =>
  operatorProcess.logs.filter(
    (line) => line.msg === msg && (migrationUid === undefined || line.migration === migrationUid),
  );

/** How often a run of the Migration broke off with an error (its next reconcile resumes it). */
const failedRuns = (operatorProcess: OperatorProcess, migrationUid: string) =>
  logged(operatorProcess, 'migration run failed; the next reconcile resumes it', migrationUid).length;

const guestOnNode = (node: NodeName) => guestOn(cluster.node(node).control, VM);

/** Connects to the guest agent on `node` and runs VERIFY there. */
async function expectVerifyOk(node: NodeName): Promise<void> {
  const result = await verifyGuest(stateDir(node), VM);
  expect(result.detail).toMatch(/^OK /);
  expect(result.ok).toBe(true);
}

/** Polls both daemons until stopped; stop() throws if the guest ever ran on both. */
function watchOwnership(): () => Promise<void> {
  let violation: string | undefined;
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const phases = await Promise.all(NODES.map((node) => guestOnNode(node).then((g) => g?.phase)));
      if (phases.every((phase) => phase === 'GUEST_PHASE_RUNNING')) violation ??= phases.join(', ');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return async () => {
    watching = false;
    await loop;
    expect(violation).toBeUndefined();
  };
}

function migration(name: string, spec: Partial<Migration['spec']> = {}) {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name, namespace: 'default' },
    spec: { vmName: VM, ...spec },
  };
}

const other = (node: NodeName): NodeName => (node === 'node-a' ? 'node-b' : 'node-a');

/** Migrates the VM and checks everything a successful migration must leave behind. */
async function migrateAndCheck(name: string, spec: Partial<Migration['spec']>): Promise<void> {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  const stopWatch = watchOwnership();
  const createdAt = Date.now();
  await apply(migration(name, spec));
  const done = await migrationIn(name, ['Succeeded', 'Failed', 'Aborted'], 120_000);
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  expect(done.status?.failureReason).toBeUndefined();
  const timings = new Map(done.status!.phaseTimings!.map((t) => [t.phase, t]));
  for (const phase of [
    'Pending',
    'Scheduling',
    'Initializing',
    'Copying',
    'Quiescing',
    'Freezing',
    'Succeeded',
  ]) {
    expect(timings.get(phase as never)).toBeDefined();
  }
  expect(done.status?.downtime?.qemuMs).toBeGreaterThan(0);
  // Seen by this operator from the source's pause to the target's resume: QEMU's downtime and the hand-over.
  expect(done.status?.downtime?.guestGapMs).toBeGreaterThan(0);
  expect(done.status?.progress).toMatchObject({ percent: 100, remainingBytes: 0 });
  // At least the guest agent's 16 MiB working set crossed.
  expect(done.status?.progress?.transferredBytes).toBeGreaterThan(16 * 2 ** 20);
  expect(condition(done, 'Completed')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  // The source's Quiescing report (the test VM has no disks), ended before Freezing began.
  expect(done.status?.quiesce).toMatchObject({ disks: [] });
  expect(done.status?.quiesce?.error).toBeUndefined();
  const quiescing = timings.get('Quiescing')!;
  expect(Date.parse(quiescing.startedAt) + quiescing.durationMs!).toBeLessThanOrEqual(
    Date.parse(timings.get('Freezing')!.startedAt),
  );
  const copying = Date.parse(timings.get('Copying')!.startedAt);
  const freezing = timings.get('Freezing')!;
  const freezeEnd = Date.parse(freezing.startedAt) + freezing.durationMs!;
  const succeeded = Date.parse(timings.get('Succeeded')!.startedAt);
  console.log(
    `${name} (${from} → ${to}): create → Copying ${copying - createdAt} ms; freeze end → Succeeded ` +
      `${succeeded - freezeEnd} ms; QEMU downtime ${done.status?.downtime?.qemuMs} ms; ` +
      `pause → resume seen by the operator ${done.status?.downtime?.guestGapMs} ms; ` +
      `${((done.status?.progress?.transferredBytes ?? 0) / 2 ** 20).toFixed(1)} MiB sent; phases ` +
      done.status!.phaseTimings!.map((t) => `${t.phase} ${t.durationMs ?? '-'} ms`).join(', '),
  );

  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(vm.status?.lastMigration).toMatchObject({
    name,
    sourceNode: from,
    targetNode: to,
    result: 'Succeeded',
    downtimeMs: done.status?.downtime?.qemuMs,
  });
  expect((await guestOnNode(to))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(to);
  expect(await eventReasons('Migration', name)).toEqual(
    expect.arrayContaining(['Scheduling', 'Initializing', 'Copying', 'Quiescing', 'Freezing', 'Succeeded']),
  );
  expect(await eventReasons('VirtualMachine', VM)).toEqual(expect.arrayContaining(['Migrating', 'Migrated']));
  // The VM reconciler takes the VM back on its new node and keeps it Running there.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect((await getVm()).status).toMatchObject({ phase: 'Running', node: to });
}

beforeAll(async () => {
  const started = Date.now();
  await cluster.start();
  const { ca, operator } = cluster.certs;
  pool = new DaemonClientPool({
    tls: { caFile: ca.cert, certFile: operator.cert, keyFile: operator.key },
    callTimeoutMs: 10_000,
    fencing: UNFENCED,
  });
  await apply(testGuestVm(VM, cluster.images));
  const vm = await cluster.runningVm(VM);
  await expectVerifyOk(vm.status!.node as NodeName);
  console.log(`setup: ${Date.now() - started} ms (control plane ${cluster.controlPlane.startupMs} ms)`);
}, 240_000);

afterAll(async () => {
  pool?.close();
  await cluster.stop();
});

it('migrates a running VM to the given targetNode through every phase, moving ownership with epoch+1', async () => {
  const from = (await getVm()).status!.node as NodeName;
  await migrateAndCheck('to-target', { targetNode: other(from) });
}, 150_000);

it('a VM of the same name in another namespace runs on the same node, migrates away and back on its own', async () => {
  const node = (await getVm()).status!.node as NodeName;
  const mainPid = (await guestOnNode(node))!.pid;
  await kubectl('create', 'namespace', 'twin');
  const twin = testGuestVm(VM, cluster.images);
  await apply({
    ...twin,
    metadata: { name: VM, namespace: 'twin' },
    spec: { ...twin.spec, placement: { nodeName: node } },
  });
  const getTwin = () => getJson<VirtualMachine>('virtualmachine', VM, '-n', 'twin');
  const running = await eventually('twin/mvm Running', async () => {
    const current = await getTwin();
    return current.status?.phase === 'Running' ? current : undefined;
  });
  expect(running.status?.node).toBe(node);
  // One node, two guests told apart by the VMs' UIDs; people see namespace/name.
  const [main, twinGuest] = [
    await guestOn(cluster.node(node).control, VM),
    await guestOn(cluster.node(node).control, VM, 'twin'),
  ];
  expect(main).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: mainPid });
  expect(main!.spec).toMatchObject({ name: (await getVm()).metadata.uid, displayName: `default/${VM}` });
  expect(twinGuest).toMatchObject({ phase: 'GUEST_PHASE_RUNNING' });
  expect(twinGuest!.spec).toMatchObject({ name: running.metadata.uid, displayName: `twin/${VM}` });
  expect((await verifyGuest(stateDir(node), VM, 'twin')).ok).toBe(true);
  // The daemon's metrics name both guests by key and by display name.
  const metrics = await (
    await fetch(`http://127.0.0.1:${cluster.node(node).daemon.metricsPort}/metrics`)
  ).text();
  for (const [uid, displayName] of [
    [main!.spec!.uuid, `default/${VM}`],
    [running.metadata.uid, `twin/${VM}`],
  ])
    expect(metrics).toContain(
      `tern_node_guest_info{guest="${uid}",display_name="${displayName}",phase="Running"`,
    );

  // Migrating one moves only its own guest, there and back (a daemon holding the other's guest takes it).
  for (const [name, to] of [
    ['twin-away', other(node)],
    ['twin-back', node],
  ] as const) {
    await apply({ ...migration(name, { targetNode: to }), metadata: { name, namespace: 'twin' } });
    const done = await eventually(`twin ${name} finished`, async () => {
      const current = await getJson<Migration>('migration', name, '-n', 'twin');
      return ['Succeeded', 'Failed', 'Aborted'].includes(current.status?.phase ?? '') ? current : undefined;
    });
    expect(done.status).toMatchObject({ phase: 'Succeeded', targetNode: to });
    expect((await guestOn(cluster.node(to).control, VM, 'twin'))?.phase).toBe('GUEST_PHASE_RUNNING');
    expect(await guestOn(cluster.node(other(to)).control, VM, 'twin')).toBeUndefined();
    expect((await verifyGuest(stateDir(to), VM, 'twin')).ok).toBe(true);
    expect(await guestOnNode(node)).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: mainPid });
  }
  // (No namespace controller runs here: the VM is deleted on its own.)
  await kubectl('delete', 'virtualmachine', VM, '-n', 'twin', '--timeout=60s');
  expect(await guestOn(cluster.node(node).control, VM, 'twin')).toBeUndefined();
  expect(await guestOnNode(node)).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: mainPid });
}, 240_000);

it('picks the target itself when the Migration names none', async () => {
  await migrateAndCheck('anywhere', {});
}, 150_000);

it('refuses a Migration to the node the VM runs on (TargetIsSource) and one of a missing VM (VMNotFound)', async () => {
  const node = (await getVm()).status!.node!;
  await apply(migration('same-node', { targetNode: node }));
  await apply({ ...migration('no-vm'), spec: { vmName: 'absent' } });
  const same = await migrationIn('same-node', ['Failed']);
  const missing = await migrationIn('no-vm', ['Failed']);
  expect(same.status?.failureReason).toBe('TargetIsSource');
  expect(missing.status?.failureReason).toBe('VMNotFound');
  expect(condition(same, 'Scheduled')).toMatchObject({ status: 'False', reason: 'TargetIsSource' });
  expect(await eventReasons('Migration', 'no-vm')).toContain('VMNotFound');
  expect((await getVm()).status).toMatchObject({ phase: 'Running', node });
});

it("a Migration whose overrides exceed its MigrationPolicy's ceiling is refused (PolicyViolation) and the VM stays", async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  // Selects every VM; its own settings stay within its ceilings (the CRD refuses them otherwise).
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: 'tenant-ceilings' },
    spec: { settings: { bandwidth: '64Mi' }, ceilings: { maxBandwidth: '100Mi', allowPostCopy: false } },
  });
  try {
    // The operator's policy informer sees the policy through its watch, well within this.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await apply(
      migration('over-ceiling', { targetNode: other(from), overrides: { bandwidth: 'unlimited' } }),
    );
    const refused = await migrationIn('over-ceiling', ['Failed', 'Succeeded', 'Aborted']);
    expect(refused.status).toMatchObject({ phase: 'Failed', failureReason: 'PolicyViolation' });
    expect(refused.status?.message).toBe(
      'refused by MigrationPolicy ceilings: spec.overrides.bandwidth "unlimited" (no cap) exceeds ' +
        'ceilings.maxBandwidth "100Mi" of MigrationPolicy tenant-ceilings',
    );
    expect(condition(refused, 'Scheduled')).toMatchObject({ status: 'False', reason: 'PolicyViolation' });
    expect(condition(refused, 'Completed')).toMatchObject({ status: 'False', reason: 'PolicyViolation' });
    // Refused in Pending: it never scheduled, and no daemon heard of it.
    expect(refused.status?.phaseTimings?.map((t) => t.phase)).not.toContain('Scheduling');
    expect(refused.status?.sourceNode).toBeUndefined();
    for (const node of NODES) expect(await daemonMigration(node, refused.metadata.uid!)).toBeUndefined();
    expect(await eventReasons('Migration', 'over-ceiling')).toContain('PolicyViolation');
    const vm = await getVm();
    expect(vm.status).toMatchObject({ phase: 'Running', node: from, epoch: before.status!.epoch });
    expect(vm.status?.activeMigration).toBeUndefined();
    expect((await guestOnNode(from))?.phase).toBe('GUEST_PHASE_RUNNING');
    expect(await guestOnNode(other(from))).toBeUndefined();
  } finally {
    await kubectl('delete', 'migrationpolicy', 'tenant-ceilings', '--ignore-not-found');
  }
});

it('refuses a second Migration of a VM that is migrating (AlreadyMigrating) and aborts on delete during Copying', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const stopWatch = watchOwnership();
  // 1 MiB/s keeps the first copy of the guest's memory going for many seconds.
  await apply(migration('slow', { overrides: { bandwidth: '1Mi' } }));
  await eventually('slow copying with progress', async () => {
    const current = await getMigration('slow');
    return current.status?.phase === 'Copying' && (current.status.progress?.transferredBytes ?? 0) > 0
      ? current
      : undefined;
  });
  expect((await getVm()).status).toMatchObject({ phase: 'Migrating', activeMigration: 'slow' });

  await apply(migration('second'));
  const second = await migrationIn('second', ['Failed']);
  expect(second.status?.failureReason).toBe('AlreadyMigrating');
  expect((await getMigration('slow')).status?.phase).toBe('Copying');

  const deletedAt = Date.now();
  await kubectl('delete', 'migration', 'slow', '--wait=false');
  await eventually(
    'slow gone',
    async () =>
      (await cluster.controlPlane.kubectl(['get', 'migration', 'slow'])).code !== 0 ? true : undefined,
    60_000,
  );
  console.log(`abort: Migration deleted → gone (finalizer released) in ${Date.now() - deletedAt} ms`);
  await stopWatch();
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: from, epoch: before.status!.epoch });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(vm.status?.lastMigration).toMatchObject({ name: 'slow', result: 'Aborted', sourceNode: from });
  expect((await guestOnNode(from))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOnNode(other(from))).toBeUndefined();
  await expectVerifyOk(from);
  expect(await eventReasons('Migration', 'slow')).toEqual(expect.arrayContaining(['Copying', 'Cancelled']));
}, 150_000);

it("surfaces the daemon's completion timeout as failureReason Timeout and keeps the guest on the source", async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  // 1 s per GiB of a 256 MiB guest at 1 MiB/s: the engine gives up after a quarter of a second.
  await apply(migration('too-slow', { overrides: { bandwidth: '1Mi', completionTimeoutPerGiBSeconds: 1 } }));
  const failed = await migrationIn('too-slow', ['Failed', 'Succeeded', 'Aborted']);
  expect(failed.status).toMatchObject({ phase: 'Failed', failureReason: 'Timeout' });
  expect(failed.status?.message).toMatch(/^not completed within/);
  expect(condition(failed, 'Completed')).toMatchObject({ status: 'False', reason: 'Timeout' });
  const vm = await eventually('VM Running again', async () => {
    const current = await getVm();
    return current.status?.phase === 'Running' ? current : undefined;
  });
  expect(vm.status).toMatchObject({ node: from, epoch: before.status!.epoch });
  expect(vm.status?.lastMigration).toMatchObject({ name: 'too-slow', result: 'Failed' });
  expect(await guestOnNode(other(from))).toBeUndefined();
  await expectVerifyOk(from);
  // The failed Migration stays as a record, without the finalizer.
  expect((await getMigration('too-slow')).metadata.finalizers ?? []).not.toContain('tern.dev/migration');
});

it('finishes a migration whose operator was killed during Copying, and starts no second one', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const stopWatch = watchOwnership();
  await apply(migration('survivor', { overrides: { bandwidth: '4Mi' } }));
  await eventually('survivor copying with progress', async () => {
    const current = await getMigration('survivor');
    return current.status?.phase === 'Copying' && (current.status.progress?.transferredBytes ?? 0) > 0
      ? current
      : undefined;
  });
  expect(await cluster.operator.stop('SIGKILL')).toBeNull();
  const restartedAt = Date.now();
  await cluster.startOperator();
  const done = await migrationIn('survivor', ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(
    `restart: new operator ready and migration Succeeded ${Date.now() - restartedAt} ms after SIGKILL`,
  );
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: other(from) });
  expect(cluster.operator.logs.filter((line) => line.msg === 'migration started')).toHaveLength(0);
  const reasons = await eventReasons('Migration', 'survivor');
  expect(reasons.filter((reason) => reason === 'Initializing')).toHaveLength(1);
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: other(from), epoch: before.status!.epoch! + 1 });
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(other(from));
}, 150_000);

/** The admission rules of a hold on VirtualMachine status writes. */

/**
 * Waits until Migration `name` stands in Freezing, held: its operator's run failed on the refused write at least
 * once, and the daemons' sides of the migration are at the given stages.
 */
function heldInFreezing(
  name: string,
  from: NodeName,
  to: NodeName,
  stages: { source: string; target: string },
): Promise<Migration> {
  return eventually(
    `${name} held in Freezing`,
    async () => {
      const current = await getMigration(name);
      const id = current.metadata.uid!;
      if (current.status?.phase !== 'Freezing' || failedRuns(cluster.operator, id) === 0) return;
      const [source, target] = await Promise.all([daemonMigration(from, id), daemonMigration(to, id)]);
      return source?.stage === stages.source && target?.stage === stages.target ? current : undefined;
    },
    120_000,
  );
}

/** SIGKILLs the held operator, lifts the hold, starts a new operator; returns Migration `name` once it ended. */
async function killOperatorAndRelease(
  release: () => Promise<void>,
  name: string,
  what: string,
): Promise<Migration> {
  expect(await cluster.operator.stop('SIGKILL')).toBeNull();
  const killedAt = Date.now();
  await release();
  await cluster.startOperator();
  const done = await migrationIn(name, ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(`${what}: migration ${done.status?.phase} ${Date.now() - killedAt} ms after SIGKILL`);
  return done;
}

it('finishes a migration whose operator was killed in Freezing before the ownership compare-and-swap', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  // Refuses any write of the VM's status that moves its node: the operator gets to the hand-over and stops there
  // (its run fails and is retried), with the guest loaded and paused on the target and paused on the source.
  const release = await holdOwnershipRecord(VM);
  const stopWatch = watchOwnership();
  await apply(migration('frozen'));
  const held = await heldInFreezing('frozen', from, to, {
    source: 'MIGRATION_STAGE_FINISHED',
    target: 'MIGRATION_STAGE_LOADED',
  });
  const source = await daemonMigration(from, held.metadata.uid!);
  expect(source?.outcome?.result).toBe('RESULT_COMPLETED');
  expect((await guestOnNode(from))?.phase).not.toBe('GUEST_PHASE_RUNNING');
  expect((await getVm()).status).toMatchObject({ node: from, epoch: before.status!.epoch });
  // The failing runs show in status, with the refused write's error and the next attempt.
  const retrying = await eventually('the failed runs in status', async () => {
    const found = condition(await getMigration('frozen'), 'Retrying');
    return found?.status === 'True' ? found : undefined;
  });
  expect(retrying.reason).toBe('RunFailed');
  expect(retrying.message).toMatch(
    /runs? in a row failed; the next starts at .*test hold: the ownership record stays/,
  );

  const done = await killOperatorAndRelease(release, 'frozen', 'killed in Freezing');
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  // Cleared once a run moved it on.
  expect(condition(done, 'Retrying')).toMatchObject({ status: 'False', reason: 'Progressed' });
  expect(done.status?.downtime?.qemuMs).toBeGreaterThan(0);
  // The pause happened before this operator: it does not claim to know the gap.
  expect(done.status?.downtime?.guestGapMs).toBeUndefined();
  expect(logged(cluster.operator, 'migration started')).toHaveLength(0);
  const reasons = await eventReasons('Migration', 'frozen');
  expect(reasons.filter((reason) => reason === 'Initializing')).toHaveLength(1);
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(vm.status?.lastMigration).toMatchObject({ name: 'frozen', result: 'Succeeded', targetNode: to });
  expect((await daemonMigration(to, held.metadata.uid!))?.stage).toBe('MIGRATION_STAGE_RESUMED');
  expect((await daemonMigration(from, held.metadata.uid!))?.stage).toBe('MIGRATION_STAGE_RELEASED');
  expect((await guestOnNode(to))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(to);
}, 240_000);

it('finishes a migration whose operator was killed in Freezing after the ownership compare-and-swap', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  // Refuses the VM status write that ends the migration (activeMigration cleared): the operator has moved the
  // record, resumed the target and released the source, and stops before the Migration's terminal phase. A
  // canary rule (a documentation address as guestAddress) shows when the policy is in force.
  const canary = '192.0.2.1';
  const release = await holdWrites(
    'hold-release',
    {
      resourceRules: VM_STATUS_UPDATES,
      validations: [
        {
          expression:
            '!has(oldObject.status) || !has(oldObject.status.activeMigration) || ' +
            '(has(object.status) && has(object.status.activeMigration))',
          message: 'test hold: the VM stays Migrating',
        },
        {
          expression: `!has(object.status) || !has(object.status.guestAddress) || object.status.guestAddress != '${canary}'`,
          message: 'test hold: canary',
        },
      ],
    },
    () =>
      dryRunRefused([
        ...['patch', 'virtualmachine', VM, '--subresource=status', '--type=merge'],
        ...['-p', JSON.stringify({ status: { guestAddress: canary } })],
      ]),
  );
  const stopWatch = watchOwnership();
  await apply(migration('committed'));
  const held = await heldInFreezing('committed', from, to, {
    source: 'MIGRATION_STAGE_RELEASED',
    target: 'MIGRATION_STAGE_RESUMED',
  });
  expect((await getVm()).status).toMatchObject({
    phase: 'Migrating',
    activeMigration: 'committed',
    node: to,
    epoch: before.status!.epoch! + 1,
  });

  const done = await killOperatorAndRelease(release, 'committed', 'killed after the hand-over');
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  expect(logged(cluster.operator, 'migration started')).toHaveLength(0);
  const vm = await getVm();
  // The epoch moved once, by the killed operator's compare-and-swap.
  expect(vm.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(vm.status?.lastMigration).toMatchObject({ name: 'committed', result: 'Succeeded', targetNode: to });
  expect((await daemonMigration(to, held.metadata.uid!))?.stage).toBe('MIGRATION_STAGE_RESUMED');
  expect((await guestOnNode(to))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(to);
}, 240_000);

const HOLD_START_LABEL = { 'tern.test/hold': 'start' };

/**
 * For Migrations labelled HOLD_START_LABEL: refuses the status write that follows PrepareIncoming (phase
 * Initializing), and the annotation of a fresh attempt. The operator prepares the target and stops there; its
 * retries stop at the annotation, before touching a daemon, so the prepared target stays as the first run left it.
 */
function holdBeforeStart(): Promise<() => Promise<void>> {
  const label = HOLD_START_LABEL;
  return holdWrites(
    'hold-start',
    {
      resourceRules: [
        {
          apiGroups: ['tern.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['migrations', 'migrations/status'],
        },
      ],
      objectSelector: { matchLabels: label },
      validations: [
        {
          expression:
            "!has(object.status) || !has(object.status.phase) || object.status.phase != 'Initializing'",
          message: 'test hold: no Initializing',
        },
        {
          expression: `!has(object.metadata.annotations) || !('${ATTEMPT_ANNOTATION}' in object.metadata.annotations)`,
          message: 'test hold: no fresh attempt',
        },
      ],
    },
    async () => {
      const probe = migration('probe');
      const manifest = join(cluster.work, 'probe.json');
      const metadata = { ...probe.metadata, labels: label, annotations: { [ATTEMPT_ANNOTATION]: '1' } };
      await writeFile(manifest, JSON.stringify({ ...probe, metadata }));
      return dryRunRefused(['create', '-f', manifest]);
    },
  );
}

it('replaces a target prepared by an operator killed before StartMigration, and migrates once', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  const label = HOLD_START_LABEL;
  const release = await holdBeforeStart();
  const stopWatch = watchOwnership();
  const gap = migration('gap');
  await apply({ ...gap, metadata: { ...gap.metadata, labels: label } });
  const held = await eventually(
    'gap prepared on the target and held',
    async () => {
      const current = await getMigration('gap');
      // Two failed runs: the first after PrepareIncoming, the retry at the fresh attempt.
      if (failedRuns(cluster.operator, current.metadata.uid!) < 2) return;
      return current.status?.phase === 'Scheduling' ? current : undefined;
    },
    120_000,
  );
  const uid = held.metadata.uid!;
  expect((await daemonMigration(to, uid))?.stage).toBe('MIGRATION_STAGE_RUNNING');
  expect(await daemonMigration(from, uid)).toBeUndefined();
  expect((await getVm()).status).toMatchObject({ phase: 'Migrating', activeMigration: 'gap', node: from });

  expect(await cluster.operator.stop('SIGKILL')).toBeNull();
  const killedAt = Date.now();
  await release();
  await cluster.startOperator();
  const done = await migrationIn('gap', ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(
    `killed between PrepareIncoming and StartMigration: Succeeded ${Date.now() - killedAt} ms after SIGKILL`,
  );
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  expect(done.metadata.annotations?.[ATTEMPT_ANNOTATION]).toBe('1');
  expect(
    logged(cluster.operator, 'target prepared by a lost run discarded; preparing it afresh'),
  ).toHaveLength(1);
  expect(logged(cluster.operator, 'migration started')).toHaveLength(1);
  // The stale target was aborted (not leaked); the migration ran once, under the fresh attempt's id.
  expect((await daemonMigration(to, uid))?.stage).toBe('MIGRATION_STAGE_ABORTED');
  expect(await daemonMigration(from, uid)).toBeUndefined();
  expect((await daemonMigration(to, `${uid}-1`))?.stage).toBe('MIGRATION_STAGE_RESUMED');
  expect((await daemonMigration(from, `${uid}-1`))?.stage).toBe('MIGRATION_STAGE_RELEASED');
  expect((await eventReasons('Migration', 'gap')).filter((reason) => reason === 'Initializing')).toHaveLength(
    1,
  );
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect((await guestOnNode(to))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(to);
}, 240_000);

it('aborts the prepared target and gives the VM back when a Migration held before StartMigration is deleted', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  const release = await holdBeforeStart();
  const held = migration('dropped');
  await apply({ ...held, metadata: { ...held.metadata, labels: HOLD_START_LABEL } });
  const prepared = await eventually(
    'dropped prepared on the target and held',
    async () => {
      const current = await getMigration('dropped');
      if (current.status?.phase !== 'Scheduling' || failedRuns(cluster.operator, current.metadata.uid!) === 0)
        return;
      return (await daemonMigration(to, current.metadata.uid!))?.stage === 'MIGRATION_STAGE_RUNNING'
        ? current
        : undefined;
    },
    120_000,
  );
  await kubectl('delete', 'migration', 'dropped', '--wait=false');
  await eventually(
    'dropped gone',
    async () =>
      (await cluster.controlPlane.kubectl(['get', 'migration', 'dropped'])).code !== 0 ? true : undefined,
    60_000,
  );
  await release();
  expect((await daemonMigration(to, prepared.metadata.uid!))?.stage).toBe('MIGRATION_STAGE_ABORTED');
  expect(await daemonMigration(from, prepared.metadata.uid!)).toBeUndefined();
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: from, epoch: before.status!.epoch });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(vm.status?.lastMigration).toMatchObject({ name: 'dropped', result: 'Aborted' });
  expect(await guestOnNode(to)).toBeUndefined();
  expect((await guestOnNode(from))?.phase).toBe('GUEST_PHASE_RUNNING');
  await expectVerifyOk(from);
}, 240_000);

it('post-copy: the target runs the guest while the pages still stream; Succeeded with the real pause and the post-copy apart', async () => {
  const before = await getVm();
  const from = before.status!.node as NodeName;
  const to = other(from);
  // The guest dirties its working set far faster than the capped link: pre-copy cannot converge.
  const agentPath = async (node: NodeName) => join(await guestDirOfVm(stateDir(node), VM), 'agent.sock');
  const agent = await AgentClient.connect(await agentPath(from), { timeoutMs: 30_000 });
  const idleRate = (await agent.stats()).dirty_pps;
  expect(await agent.setDirtyRate(20_000)).toBe(20_000);
  agent.close();
  const stopWatch = watchOwnership();
  await apply(
    migration('postcopy', {
      overrides: {
        // The guest's 16 MiB working set takes seconds in post-copy at this rate: long enough to look.
        bandwidth: '4Mi',
        // The rounds before the switch take longer than the default budget (150 s/GiB × 256 MiB).
        completionTimeoutPerGiBSeconds: 600,
        allowPostCopy: true,
        allowAutoConverge: false,
        downtimeTargetMs: 1,
        maxDowntimeMs: 1,
      },
    }),
  );
  // PostCopy while the record names the target, the guest runs there, and the source still sends pages.
  const running = await eventually(
    'postcopy in PostCopy, the guest running on the target',
    async () => {
      const current = await getMigration('postcopy');
      const phase = current.status?.phase;
      if (isTerminalMigrationPhase(phase)) return { ended: current, vm: undefined };
      if (phase !== 'PostCopy') return undefined;
      const [vm, guest, source] = await Promise.all([
        getVm(),
        guestOnNode(to),
        daemonMigration(from, current.metadata.uid!),
      ]);
      return vm.status?.node === to &&
        guest?.phase === 'GUEST_PHASE_RUNNING' &&
        source?.stage === 'MIGRATION_STAGE_RUNNING'
        ? { ended: undefined, vm }
        : undefined;
    },
    180_000,
    50,
  );
  if (running.ended !== undefined) {
    const { phase, phaseTimings, message } = running.ended.status!;
    throw new Error(`postcopy ended ${phase} first (${message}): ${JSON.stringify(phaseTimings)}`);
  }
  expect(running.vm!.status?.epoch).toBe(before.status!.epoch! + 1);
  const done = await migrationIn('postcopy', ['Succeeded', 'Failed', 'Aborted'], 300_000);
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  expect(done.status?.phaseTimings?.map((t) => t.phase)).toContain('PostCopy');
  const events = await eventReasons('Migration', 'postcopy');
  expect(events).toContain('PostCopy');
  const { guestGapMs, postCopyMs } = done.status!.downtime!;
  expect(guestGapMs).toBeGreaterThan(0);
  expect(postCopyMs).toBeGreaterThan(0);
  // The switchover ends at the post-copy switch: the target ran the guest long before the source completed.
  const steps = done.status!.switchover!.steps.map((s) => s.step);
  expect(steps).toEqual(
    expect.arrayContaining(['SourcePaused', 'TargetLoaded', 'OwnershipRecorded', 'TargetResumed']),
  );
  expect(steps).not.toContain('SourceCompleted');
  expect(done.status!.switchover!.note).toMatch(/^post-copy: /);
  console.log(
    `postcopy (${from} → ${to}): pause → target running seen by the operator ${guestGapMs} ms; the guest ran on ` +
      `the target for ${postCopyMs} ms while the pages streamed; timeline ` +
      done.status!.switchover!.steps.map((s) => `${s.step} +${s.offsetMs}`).join(', '),
  );
  // The switch's steps as the operator logged them (ms after it saw PostCopy).
  const [step] = logged(cluster.operator, 'post-copy: the target runs the guest', done.metadata.uid);
  expect(step).toMatchObject({ committedHere: true });
  console.log(`postcopy: the operator's switch ${JSON.stringify(step)}`);
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect(vm.status?.activeMigration).toBeUndefined();
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(to);
  const back = await AgentClient.connect(await agentPath(to), { timeoutMs: 30_000 });
  await back.setDirtyRate(idleRate);
  back.close();
}, 600_000);

it('two replicas: SIGKILL of the leader mid-Copying → the standby takes over within the lease time and finishes', async () => {
  const LEASE_SECONDS = 6;
  expect(await cluster.operator.stop()).toBe(0);
  const replica = (identity: string) =>
    cluster.startOperator({
      leaderElection: { name: 'tern-operator-test', identity, leaseDurationSeconds: LEASE_SECONDS },
    });
  const byIdentity = { 'op-1': await replica('op-1'), 'op-2': await replica('op-2') };
  const holder = async () =>
    (await getJson<{ spec: { holderIdentity?: string } }>('lease', '-n', 'tern-system', 'tern-operator-test'))
      .spec.holderIdentity;
  const leaderId = await eventually('a leader', async () => {
    const id = await holder();
    return id === 'op-1' || id === 'op-2' ? id : undefined;
  });
  const leader = byIdentity[leaderId];
  const standby = byIdentity[leaderId === 'op-1' ? 'op-2' : 'op-1'];

  const before = await getVm();
  const from = before.status!.node as NodeName;
  const stopWatch = watchOwnership();
  await apply(migration('failover', { overrides: { bandwidth: '4Mi' } }));
  await eventually('failover copying with progress', async () => {
    const current = await getMigration('failover');
    return current.status?.phase === 'Copying' && (current.status.progress?.transferredBytes ?? 0) > 0
      ? current
      : undefined;
  });
  expect(logged(standby, 'migration run started')).toHaveLength(0);
  expect(await leader.stop('SIGKILL')).toBeNull();
  const killedAt = Date.now();
  await eventually('the standby drives the migration', async () =>
    logged(standby, 'migration run started').length > 0 ? true : undefined,
  );
  const takeoverMs = Date.now() - killedAt;
  expect(await holder()).toBe(standby === byIdentity['op-1'] ? 'op-1' : 'op-2');
  const done = await migrationIn('failover', ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(
    `fail-over: standby drives the migration ${takeoverMs} ms after SIGKILL of the leader (lease ${LEASE_SECONDS} s); ` +
      `Succeeded ${Date.now() - killedAt} ms after it`,
  );
  await stopWatch();
  // The lease runs out at most LEASE_SECONDS after the leader's last renewal, and the standby tries again every
  // retry period (2/15 of the lease, jittered up to 1.2×).
  expect(takeoverMs).toBeLessThan(LEASE_SECONDS * 1000 + 2 * 1.2 * ((LEASE_SECONDS * 1000 * 2) / 15));
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: other(from) });
  expect(logged(standby, 'migration started')).toHaveLength(0);
  expect(logged(standby, 'migration run started')[0]).toMatchObject({ phase: 'Copying' });
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: other(from), epoch: before.status!.epoch! + 1 });
  expect(await guestOnNode(from)).toBeUndefined();
  expect((await guestOnNode(other(from)))?.phase).toBe('GUEST_PHASE_RUNNING');
  await expectVerifyOk(other(from));
  // Back to a single operator, elected still: the daemons have seen an elected leader's fencing token and refuse
  // guest changes from an operator without leader election from now on (a Migration would stay in Scheduling,
  // its run retried with "only an elected leader may").
  expect(await standby.stop()).toBe(0);
  await cluster.startOperator({
    leaderElection: { name: 'tern-operator-test', identity: 'op-3', leaseDurationSeconds: LEASE_SECONDS },
  });
  await migrateAndCheck('after-failover', {});
}, 240_000);
