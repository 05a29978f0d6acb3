// Migrations end to end: the real operator process, a real kube-apiserver and two real daemon processes running a
// QEMU guest (TCG, 256 MiB, 16 MiB working set). Every migration ends with the guest agent's VERIFY OK on the node
// the VM's record names; the guest never runs on both nodes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { generateDevCerts, type DevCerts } from '../../../hack/gen-certs.js';
import { testGuestImages, type TestGuestImages } from '../../../hypervisor-node/src/guests/test-guest.js';
import { controlClient } from '../../../hypervisor-node/src/testing/control-client.js';
import {
  killGuestsIn,
  startDaemonProcess,
  type DaemonProcess,
} from '../../../hypervisor-node/src/testing/daemon-process.js';
import type { GuestControlClient } from '../../../proto/index.js';
import { startControlPlane, type ControlPlane } from '../../../test/harness/control-plane.js';
import {
  condition,
  eventually,
  guestOn,
  kubectlOn,
  testDaemonArgs,
  verifyGuest,
} from '../testing/cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../testing/operator-process.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const VM = 'mvm';

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
const daemons = {} as Record<NodeName, DaemonProcess>;
const controls = {} as Record<NodeName, GuestControlClient>;
const { kubectl, apply, getJson, eventReasons } = kubectlOn(() => cp);

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

const stateDir = (node: NodeName) => join(work, node.slice(-1));

const guestOnNode = (node: NodeName) => guestOn(controls[node], VM);

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
  expect(done.status?.progress).toMatchObject({ percent: 100, remainingBytes: 0 });
  // At least the guest agent's 16 MiB working set crossed.
  expect(done.status?.progress?.transferredBytes).toBeGreaterThan(16 * 2 ** 20);
  expect(condition(done, 'Completed')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  const copying = Date.parse(timings.get('Copying')!.startedAt);
  const freezing = timings.get('Freezing')!;
  const freezeEnd = Date.parse(freezing.startedAt) + freezing.durationMs!;
  const succeeded = Date.parse(timings.get('Succeeded')!.startedAt);
  console.log(
    `${name} (${from} → ${to}): create → Copying ${copying - createdAt} ms; freeze end → Succeeded ` +
      `${succeeded - freezeEnd} ms; QEMU downtime ${done.status?.downtime?.qemuMs} ms; ` +
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

const startOperator = () =>
  startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ...['--migration-progress-interval-ms', '500'],
  ]);

beforeAll(async () => {
  const started = Date.now();
  work = await mkdtemp(join(tmpdir(), 'tmig-'));
  [cp, images] = await Promise.all([startControlPlane({ name: 'migration-reconciler' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const [a, b] = await Promise.all(
    NODES.map((node) =>
      startDaemonProcess(
        testDaemonArgs({
          node,
          certs,
          stateDir: stateDir(node),
          imagesRoot: images.root,
          kubeconfig: cp.kubeconfigPath,
          leaseDurationSeconds: 6,
        }),
      ),
    ),
  );
  daemons['node-a'] = a!;
  daemons['node-b'] = b!;
  for (const node of NODES) {
    controls[node] = controlClient(`127.0.0.1:${daemons[node].grpcPort}`, {
      ca: certs.ca.cert,
      cert: certs.operator.cert,
      key: certs.operator.key,
    });
  }
  operator = await startOperator();
  for (const node of NODES) {
    await eventually(`${node} Ready`, async () => {
      const hvn = await getJson<HypervisorNode>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });
  }
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: VM, namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { kernel: { path: images.kernel, initrdPath: images.initrd, cmdline: images.cmdline.join(' ') } },
    },
  });
  const vm = await eventually('VM Running', async () => {
    const current = await getVm();
    return current.status?.phase === 'Running' ? current : undefined;
  });
  await expectVerifyOk(vm.status!.node as NodeName);
  console.log(`setup: ${Date.now() - started} ms (control plane ${cp.startupMs} ms)`);
}, 240_000);

afterAll(async () => {
  for (const client of Object.values(controls)) client.close();
  await operator?.stop();
  await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(stateDir(node));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

it('migrates a running VM to the given targetNode through every phase, moving ownership with epoch+1', async () => {
  const from = (await getVm()).status!.node as NodeName;
  await migrateAndCheck('to-target', { targetNode: other(from) });
}, 150_000);

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
    async () => ((await cp.kubectl(['get', 'migration', 'slow'])).code !== 0 ? true : undefined),
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
  expect(await operator.stop('SIGKILL')).toBeNull();
  const restartedAt = Date.now();
  operator = await startOperator();
  const done = await migrationIn('survivor', ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(
    `restart: new operator ready and migration Succeeded ${Date.now() - restartedAt} ms after SIGKILL`,
  );
  await stopWatch();
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: other(from) });
  expect(operator.logs.filter((line) => line.msg === 'migration started')).toHaveLength(0);
  const reasons = await eventReasons('Migration', 'survivor');
  expect(reasons.filter((reason) => reason === 'Initializing')).toHaveLength(1);
  const vm = await getVm();
  expect(vm.status).toMatchObject({ phase: 'Running', node: other(from), epoch: before.status!.epoch! + 1 });
  expect(await guestOnNode(from)).toBeUndefined();
  await expectVerifyOk(other(from));
}, 150_000);
