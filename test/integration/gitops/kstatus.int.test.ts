// Tern's objects as GitOps tools see them (docs/gitops.md), taken from a real run: a real kube-apiserver, the
// operator process, two daemons and a QEMU guest (TCG). Each object is checked with the real kstatus library
// (sigs.k8s.io/cli-utils, what Flux uses) and with the Argo CD health checks (argocd/, in lua5.1): a running VM
// is Current, a migrating one InProgress, a VM whose cpu changed while it ran InProgress with RestartRequired, a
// VM stopped by its spec Current; a Migration that runs InProgress, one that failed Failed, one that finished
// Current; a MigrationPolicy and a HypervisorNode Current. The objects have the same phase and conditions as the
// fixtures test/fixtures/gitops/ keeps for health-fixtures.int.test.ts (TERN_UPDATE_FIXTURES=1 rewrites them).
// Then a Migration applied the GitOps way (Argo CD's tracking label): retention keeps it while it prunes an
// untracked one, and applying its manifest again does not move the VM.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Condition, HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../../fixtures/test-guest.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { condition, eventually, kubectlOn, testDaemonArgs } from '../../harness/operator-cluster.js';
import { letQemuUserThrough, qemuUserArgs } from '../../harness/qemu-user.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import {
  argoHealthOf,
  fixtureExpectations,
  kstatusOf,
  readFixture,
  writeFixture,
  type FixtureExpectation,
  type ObjectJson,
} from '../../harness/gitops.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
const VM = 'gvm';
const UPDATE_FIXTURES = process.env.TERN_UPDATE_FIXTURES === '1';

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
let expectations: Record<string, FixtureExpectation>;
const daemons: DaemonProcess[] = [];
const { kubectl, apply, getJson } = kubectlOn(() => cp);

const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
const getMigration = (name: string) => getJson<Migration>('migration', name);
const has = (object: { status?: { conditions?: Condition[] } }, type: string, status = 'True') =>
  condition(object, type)?.status === status;
const observed = (object: { metadata: { generation?: number }; status?: { observedGeneration?: number } }) =>
  object.status?.observedGeneration === object.metadata.generation;

/** What a fixture and a live object must share: phase, generation observed, and each condition's type/status/reason. */
function shape(object: ObjectJson) {
  const status = object.status as
    { phase?: string; observedGeneration?: number; conditions?: Condition[] } | undefined;
  return {
    kind: object.kind,
    phase: status?.phase,
    observed: status?.observedGeneration === (object.metadata as { generation?: number }).generation,
    conditions: (status?.conditions ?? []).map((c) => `${c.type}=${c.status} ${c.reason}`).sort(),
  };
}

/** Checks a live object as kstatus and Argo CD see it, against its fixture (or stores it as the fixture). */
async function check(fixture: string, object: object): Promise<void> {
  const live = object as ObjectJson;
  const expected = expectations[fixture]!;
  const [kstatus] = await kstatusOf([live]);
  const argo = await argoHealthOf(live);
  console.log(
    `${fixture}: kstatus ${kstatus!.status} (${kstatus!.message}); Argo CD ${argo.status} (${argo.message})`,
  );
  expect(kstatus!.status).toBe(expected.kstatus);
  expect(argo.status).toBe(expected.argo);
  if (expected.says) {
    expect(kstatus!.message).toContain(expected.says);
    expect(argo.message).toContain(expected.says);
  }
  if (UPDATE_FIXTURES) await writeFixture(fixture, live);
  else expect(shape(live)).toEqual(shape(await readFixture(fixture)));
}

/** A Migration as a GitOps tool applies it: Argo CD's tracking label, no targetNode (the operator picks one). */
const TRACKED_MIGRATION = {
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'Migration',
  metadata: { name: 'from-git', namespace: 'default', labels: { 'argocd.argoproj.io/instance': 'vms' } },
  // 16 MiB/s: the copy lasts long enough to see the VM and the Migration while it runs.
  spec: { vmName: VM, overrides: { bandwidth: '16Mi' } },
};

const untracked = (name: string) => ({
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'Migration',
  metadata: { name, namespace: 'default' },
  spec: { vmName: VM, targetNode: 'node-z' },
});

beforeAll(async () => {
  expectations = await fixtureExpectations();
  work = await mkdtemp(join(tmpdir(), 'tgit-'));
  await letQemuUserThrough(work);
  [cp, images] = await Promise.all([startControlPlane({ name: 'gitops' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  daemons.push(
    ...(await Promise.all(
      NODES.map((node) =>
        startDaemonProcess(
          testDaemonArgs({
            node,
            certs,
            stateDir: join(work, node.slice(-1)),
            imagesRoot: images.root,
            kubeconfig: cp.kubeconfigPath,
            leaseDurationSeconds: 6,
          }).concat(qemuUserArgs()),
        ),
      ),
    )),
  );
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ...['--migration-progress-interval-ms', '500', '--migration-history-limit', '1'],
  ]);
  await apply(testGuestVm(VM, images));
}, 240_000);

afterAll(async () => {
  await operator?.stop();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(join(work, node.slice(-1)));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

it('a MigrationPolicy and a HypervisorNode are Current once the operator observed them', async () => {
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: 'no-post-copy' },
    spec: { settings: { allowPostCopy: false }, ceilings: { allowPostCopy: false } },
  });
  const policy = await eventually('policy observed', async () => {
    const current = await getJson<ObjectJson & Parameters<typeof observed>[0]>(
      'migrationpolicy',
      'no-post-copy',
    );
    return observed(current) && has(current as never, 'Ready') ? current : undefined;
  });
  await check('migrationpolicy-accepted', policy);
  const node = await eventually('node-a observed and Ready', async () => {
    const current = await getJson<HypervisorNode>('hypervisornode', 'node-a');
    return observed(current as never) && has(current, 'Ready') ? current : undefined;
  });
  await check('hypervisornode-ready', node);
}, 60_000);

it('a running VM is Current; while a Migration moves it, it and the Migration are InProgress; then Current', async () => {
  const running = await eventually(
    'VM Running',
    async () => {
      const vm = await getVm();
      return vm.status?.phase === 'Running' && has(vm, 'Ready') && observed(vm) ? vm : undefined;
    },
    120_000,
  );
  await check('virtualmachine-running', running);
  const from = running.status!.node!;

  await apply(TRACKED_MIGRATION);
  const [vm, migration] = await eventually(
    'VM Migrating while the Migration copies',
    async () => {
      const [v, m] = await Promise.all([getVm(), getMigration('from-git')]);
      return v.status?.phase === 'Migrating' && m.status?.phase === 'Copying' ? ([v, m] as const) : undefined;
    },
    60_000,
    50,
  );
  await check('virtualmachine-migrating', vm);
  await check('migration-running', migration);

  const done = await eventually(
    'Migration finished',
    async () => {
      const m = await getMigration('from-git');
      return ['Succeeded', 'Failed', 'Aborted'].includes(m.status?.phase ?? '') ? m : undefined;
    },
    180_000,
  );
  expect({ ...done.status, message: done.status?.message }).toMatchObject({
    phase: 'Succeeded',
    sourceNode: from,
  });
  await check('migration-succeeded', done);
  const moved = await eventually('VM Running again, no longer reconciling', async () => {
    const v = await getVm();
    return v.status?.phase === 'Running' && !condition(v, 'Reconciling') ? v : undefined;
  });
  expect(moved.status?.node).not.toBe(from);
  expect((await kstatusOf([moved as never]))[0]!.status).toBe('Current');
}, 300_000);

it('a failed Migration is Failed; retention prunes untracked Migrations, keeps the tracked one, and re-applying it moves nothing', async () => {
  await apply(untracked('nowhere-1'));
  const failed = await eventually('nowhere-1 Failed', async () => {
    const m = await getMigration('nowhere-1');
    return m.status?.phase === 'Failed' ? m : undefined;
  });
  expect(failed.status?.failureReason).toBe('TargetNotFound');
  await check('migration-failed', failed);

  // History limit 1: nowhere-2 finishing prunes nowhere-1; from-git (older still) is tracked and stays.
  const tracked = await getMigration('from-git');
  const before = await getVm();
  await apply(untracked('nowhere-2'));
  await eventually('nowhere-1 pruned', async () => {
    const names = (await getJson<{ items: Migration[] }>('migrations')).items.map((m) => m.metadata.name);
    return !names.includes('nowhere-1') ? names : undefined;
  });
  const kept = await getMigration('from-git');
  expect(kept.metadata.uid).toBe(tracked.metadata.uid);

  // Argo CD's next sync applies the same manifest again: the finished Migration is unchanged and the VM stays.
  await apply(TRACKED_MIGRATION);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const after = await getMigration('from-git');
  expect(after.metadata.uid).toBe(tracked.metadata.uid);
  expect(after.status?.phase).toBe('Succeeded');
  const vm = await getVm();
  expect(vm.status).toMatchObject({
    phase: 'Running',
    node: before.status!.node,
    epoch: before.status!.epoch,
  });
  expect(vm.status?.lastMigration?.name).toBe('from-git');
}, 120_000);

it('a cpu change on a running VM is InProgress with RestartRequired until the guest starts again; stopped, it is Current', async () => {
  await kubectl(
    'patch',
    'virtualmachine',
    VM,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { cpu: { cores: 2 } } }),
  );
  const pending = await eventually('RestartRequired', async () => {
    const vm = await getVm();
    return observed(vm) && has(vm, 'RestartRequired') ? vm : undefined;
  });
  expect(pending.status?.phase).toBe('Running');
  expect(condition(pending, 'RestartRequired')?.message).toContain(
    'spec.cpu.cores is 2, the guest runs with 1',
  );
  await check('virtualmachine-restart-required', pending);

  await kubectl(
    'patch',
    'virtualmachine',
    VM,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { running: false } }),
  );
  const stopped = await eventually(
    'VM Stopped',
    async () => {
      const vm = await getVm();
      return vm.status?.phase === 'Stopped' && observed(vm) ? vm : undefined;
    },
    60_000,
  );
  expect(condition(stopped, 'RestartRequired')).toBeUndefined();
  await check('virtualmachine-stopped', stopped);

  await kubectl(
    'patch',
    'virtualmachine',
    VM,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { running: true } }),
  );
  const restarted = await eventually(
    'VM Running with 2 CPUs',
    async () => {
      const vm = await getVm();
      return vm.status?.phase === 'Running' && has(vm, 'Ready') && observed(vm) ? vm : undefined;
    },
    120_000,
  );
  expect(condition(restarted, 'RestartRequired')).toBeUndefined();
  expect((await kstatusOf([restarted as never]))[0]!.status).toBe('Current');
}, 240_000);
