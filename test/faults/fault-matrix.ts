// The fault matrix of issue 11 on the local cluster (network namespaces, real apiserver + etcd, the operator, two
// daemons, a real QEMU guest): each cell holds a live migration at one step, injects one fault there, and checks
// that every path ends (docs/architecture.md, "Failure model"):
// - the Migration reaches Succeeded, Failed or Aborted, the last two with a failureReason, within TERMINAL_WITHIN_MS
//   of the fault;
// - the VM ends Running with activeMigration cleared on exactly the node its record (status.node) names, its guest
//   runs there and its memory verifier answers OK, and the other node has no guest of it (daemon and processes);
// - a two-node watch (the move's destination asked first) never sees the guest's vCPUs running on both nodes;
// - the guest was restarted (a new QEMU, condition Restarted) only where the fault killed the only QEMU that held
//   it whole (restartAllowed below), never elsewhere.
// `npm run test:faults` runs the whole matrix (fault-matrix-main.ts); fault-matrix.int.test.ts one cell per fault.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Condition, Migration, VirtualMachine } from '../../crds/index.js';
import type { MigrationClient, MigrationState__Output } from '../../proto/index.js';
import { daemonMigrationId, migrationAttempt } from '../../operator/src/migration/state.js';
import { TERMINAL_MIGRATION_PHASES, smallVm, type E2eCluster } from '../e2e/e2e-cluster.js';
import { unary } from '../harness/control-client.js';
import { eventually } from '../harness/eventually.js';
import { migrationClient } from '../harness/migration-driver.js';
import { kubectlOn, type Kubectl } from '../harness/operator-cluster.js';
import { runKubectl } from '../local-cluster/kubectl.js';
import { isOurs } from '../local-cluster/processes.js';

export const FAULTS = [
  'kill-source-qemu',
  'kill-target-qemu',
  'kill-source-daemon',
  'kill-target-daemon',
  'kill-operator',
  'stop-source-daemon',
  'stop-target-daemon',
  'cut-source-link',
  'cut-target-link',
  'stop-apiserver',
] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * Where the fault lands:
 * - Initializing: the target prepared (its incoming QEMU up, the VM locked), the source not started yet (an
 *   admission hold refuses the Migration's Initializing status write, which comes between the two);
 * - Copying: bytes on the wire at 4 MiB/s;
 * - Switchover: the guest paused on the source and loaded on the target, the operator stopped right before the
 *   ownership compare-and-swap (holdOwnershipRecord);
 * - AfterSwap: the record names the target, which has not resumed the guest (the target QEMU is SIGSTOPped while
 *   the hold is lifted, so ResumeTarget's `cont` waits on it; SIGCONT once the fault is in);
 * - Resumed: the target runs the guest and the source was released, but the Migration's status writes the
 *   operator held back from the source's outcome until the resume (its phases, progress and quiesce report:
 *   docs/architecture.md "The switchover's critical path") have not landed (an admission hold refuses the write of
 *   the quiesce report, so the run fails and is retried until the hold lifts after the fault). The source has no
 *   QEMU left here: kill-source-qemu does not apply (cellApplies);
 * - PostCopy: post-copy running. A Migration that allows post-copy and cannot converge (a guest dirtying faster
 *   than the 1 MiB/s link, no downtime ramp, no auto-converge) switches after three rounds; at the post-copy
 *   switch the record moves to the target, which runs the guest while the remaining pages still stream (at
 *   1 MiB/s: for minutes). The fault lands once status says PostCopy, the record names the target, the guest runs
 *   there and the source still holds its paused QEMU (the pages not sent yet).
 */
export const PHASES = ['Initializing', 'Copying', 'Switchover', 'AfterSwap', 'Resumed', 'PostCopy'] as const;
export type Phase = (typeof PHASES)[number];

/** A Migration is terminal within this long after the fault began (the longest fault lasts 30 s). */
export const TERMINAL_WITHIN_MS = 180_000;
/** The VM settles (Running where its record says, activeMigration cleared) within this long after that. */
export const SETTLE_WITHIN_MS = 120_000;
const STOP_DAEMON_MS = 30_000;
const CUT_LINK_MS = 20_000;
const STOP_APISERVER_MS = 20_000;
/** Reaching a phase (a post-copy needs four rounds at 1 MiB/s first). */
const REACH_PHASE_MS = 180_000;

/** The guest: 8 MiB working set dirtied at 400 pages/s (1.6 MiB/s), faster than a 1 MiB/s link, slower than 4. */
const GUEST = { dirtyPps: 400, wssMib: 8 };
const OVERRIDES: Record<Phase, object | undefined> = {
  Initializing: undefined,
  Copying: { bandwidth: '4Mi' },
  Switchover: undefined,
  AfterSwap: undefined,
  Resumed: undefined,
  PostCopy: {
    bandwidth: '1Mi',
    allowPostCopy: true,
    allowAutoConverge: false,
    downtimeTargetMs: 1,
    maxDowntimeMs: 1,
    // Four rounds at 1 MiB/s come before the switch: more than the default budget (150 s/GiB × 256 MiB).
    completionTimeoutPerGiBSeconds: 600,
    // A post-copy that cannot go on (a target QEMU killed) fails once its stream has been broken this long: longer
    // than the longest fault (a 30 s stop, a 20 s cut, which it must survive), shorter than the default 150 s.
    stallTimeoutSeconds: 45,
  },
};

export interface CellOptions {
  /**
   * Deletes the Migration as soon as the fault is in (once the apiserver is back, for its fault): the cell then
   * checks that the Migration is gone within the terminal bound, and the same invariants of the VM.
   */
  deleteMigration?: boolean;
}

export interface CellResult {
  /** The fault, `+delete` when the Migration was deleted during it. */
  fault: string;
  phase: Phase;
  trial: number;
  migration: string;
  /** Terminal phase, or what it was stuck in. */
  outcome: string;
  reason: string;
  message: string;
  /** From the fault's start to the Migration observed terminal. */
  terminalMs?: number;
  guestNode?: string;
  restarted: boolean;
  pass: boolean;
  /** Why it failed (empty when it passed). */
  problems: string[];
  /** What happened on the way that is not a failure. */
  notes: string[];
  /** Run states the watch saw, e.g. "node-b=PAUSED node-a=RUNNING" → count. */
  watch: Record<string, number>;
}

export interface Matrix {
  cluster: E2eCluster;
  log: (line: string) => void;
  /** The VM the cells migrate (replaced by a fresh one when a cell leaves it beyond repair). */
  vm: string;
  serial: number;
  kube: Kubectl;
  migrationApis: Map<string, MigrationClient>;
}

const PROBE_MIGRATION = 'hold-probe';
/** The admission holds' names (holdInitializing, holdOwnershipRecord, holdStatusAfterResume). */
const HOLDS = ['hold-initializing', 'hold-ownership-record', 'hold-status-after-resume'];

/** Whether the fault can land at the phase (a fault on a QEMU that is gone by then cannot). */
export function cellApplies(fault: Fault, phase: Phase): boolean {
  return !(fault === 'kill-source-qemu' && phase === 'Resumed');
}

/** Sets up the matrix on a cluster that is up: the admission-hold probe and the first VM, Running and verified. */
export async function prepareMatrix(cluster: E2eCluster, log: (line: string) => void): Promise<Matrix> {
  const kube = kubectlOn(() => ({
    kubectl: (args: string[], opts?: { input?: string }) => runKubectl(cluster.kubeconfig, args, opts?.input),
  }));
  const { ca, operator } = cluster.certs;
  const migrationApis = new Map(
    cluster.state.nodes.map(({ name, endpoint }) => [
      name,
      migrationClient(endpoint!, { ca: ca.cert, cert: operator.cert, key: operator.key }),
    ]),
  );
  // A Migration of no VM, for the dry runs that tell when a hold on Migration status writes is in force.
  await kube.apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: PROBE_MIGRATION, namespace: 'default' },
    spec: { vmName: 'no-such-vm' },
  });
  const matrix: Matrix = { cluster, log, vm: '', serial: 0, kube, migrationApis };
  await freshVm(matrix);
  return matrix;
}

export function closeMatrix(matrix: Matrix): void {
  for (const client of matrix.migrationApis.values()) client.close();
}

const other = (matrix: Matrix, node: string) => matrix.cluster.state.nodes.find((n) => n.name !== node)!.name;

async function getVm(matrix: Matrix): Promise<VirtualMachine> {
  return matrix.cluster.getVm(matrix.vm);
}

async function getMigration(matrix: Matrix, name: string): Promise<Migration | undefined> {
  const list = await matrix.cluster.getJson<{ items: Migration[] }>('migrations');
  return list.items.find((m) => m.metadata.name === name);
}

/** A new VM (name vmN), Running and verified, after deleting the previous one and every QEMU it left. */
async function freshVm(matrix: Matrix): Promise<void> {
  const { cluster } = matrix;
  if (matrix.vm) {
    await cluster.kubectl(['delete', 'virtualmachine', matrix.vm, '--wait=false']).catch(() => undefined);
    const gone = await eventually(
      `${matrix.vm} deleted`,
      async () =>
        (await cluster.kubectl(['get', 'virtualmachines', '-o', 'name'])).includes(`/${matrix.vm}\n`)
          ? undefined
          : true,
      30_000,
    ).catch(() => false);
    if (!gone) {
      matrix.log(`  reset: ${matrix.vm} not deleted within 30 s; removing its finalizers`);
      await cluster
        .kubectl([
          'patch',
          'virtualmachine',
          matrix.vm,
          '--type=merge',
          '-p',
          '{"metadata":{"finalizers":null}}',
        ])
        .catch(() => undefined);
    }
    for (const pids of Object.values(await cluster.qemuPids(matrix.vm))) {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
  }
  matrix.vm = `mx${++matrix.serial}`;
  await cluster.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify(await smallVm(matrix.vm, GUEST.dirtyPps, GUEST.wssMib)),
  );
  const vm = await eventually(
    `${matrix.vm} Running`,
    async () => {
      const current = await getVm(matrix);
      return current.status?.phase === 'Running' ? current : undefined;
    },
    180_000,
    500,
  );
  const verified = await cluster.verify(vm.status!.node!, matrix.vm);
  if (!verified.ok) throw new Error(`a fresh ${matrix.vm} does not verify: ${verified.detail}`);
  matrix.log(`  VM ${matrix.vm} Running on ${vm.status!.node}`);
}

/**
 * Brings the cluster back to a known state between cells: every process running (a SIGSTOPped daemon continued),
 * links and the apiserver up, no Migration of the VM running (deleted, finalizers removed when stuck), the VM
 * Running on the node it records with its memory verified and no guest elsewhere; a VM that does not get there is
 * replaced.
 */
export async function restore(matrix: Matrix): Promise<void> {
  const { cluster } = matrix;
  const { state } = cluster;
  if (state.controlPlane?.stoppedApiServer) await cluster.startApiServer();
  for (const node of state.nodes) {
    await cluster.setNodeLink(node.name, true);
    if (node.daemon && isOurs(node.daemon.pid, state.dir)) cluster.signalDaemon(node.name, 'SIGCONT');
    else await cluster.startDaemon(node.name);
  }
  if (!state.operator || !isOurs(state.operator.pid, state.dir)) await cluster.startOperator();
  // Whatever a cell that broke off left behind: its admission holds, a stopped target QEMU.
  await cluster.kubectl([
    ...['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy'],
    ...[...HOLDS, '--ignore-not-found'],
  ]);
  for (const pids of Object.values(await cluster.qemuPids(matrix.vm))) {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  await eventually(
    'both nodes Ready',
    async () => {
      const out = await cluster.kubectl([
        'get',
        'hypervisornodes',
        '-o',
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}',
      ]);
      return out
        .trim()
        .split(' ')
        .filter((s) => s === 'True').length === state.nodes.length
        ? true
        : undefined;
    },
    90_000,
    500,
  );
  const list = await cluster.getJson<{ items: Migration[] }>('migrations');
  const running = list.items.filter(
    (m) => m.spec.vmName === matrix.vm && !TERMINAL_MIGRATION_PHASES.includes(m.status?.phase ?? ''),
  );
  for (const migration of running) {
    const name = migration.metadata.name!;
    matrix.log(`  reset: deleting ${name} (${migration.status?.phase ?? 'no phase'})`);
    await cluster.kubectl(['delete', 'migration', name, '--wait=false']).catch(() => undefined);
    const gone = await eventually(
      `${name} gone`,
      async () => ((await getMigration(matrix, name)) ? undefined : true),
      60_000,
      500,
    ).catch(() => false);
    if (!gone) {
      matrix.log(`  reset: ${name} not gone within 60 s; removing its finalizers`);
      await cluster
        .kubectl(['patch', 'migration', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}'])
        .catch(() => undefined);
    }
  }
  const settled = await settledVm(matrix, 60_000).catch((error: Error) => error);
  if (settled instanceof Error) {
    matrix.log(`  reset: ${settled.message}; replacing the VM`);
    await freshVm(matrix);
  }
}

/** The VM Running with no active migration, its guest running on the recorded node only and verified OK. */
async function settledVm(matrix: Matrix, ms: number): Promise<{ vm: VirtualMachine; pid: number }> {
  const { cluster } = matrix;
  const vm = await eventually(
    `${matrix.vm} Running on its recorded node alone`,
    async () => {
      const current = await getVm(matrix);
      const node = current.status?.node;
      if (current.status?.phase !== 'Running' || current.status.activeMigration !== undefined || !node)
        return;
      const phases = await cluster.guestPhases(matrix.vm);
      const pids = await cluster.qemuPids(matrix.vm);
      const elsewhere = other(matrix, node);
      return phases[node] === 'GUEST_PHASE_RUNNING' &&
        phases[elsewhere] === 'ABSENT' &&
        pids[node]!.length === 1 &&
        pids[elsewhere]!.length === 0
        ? current
        : undefined;
    },
    ms,
    500,
  );
  const node = vm.status!.node!;
  const verified = await cluster.verify(node, matrix.vm);
  if (!verified.ok) throw new Error(`memory verifier on ${node}: ${verified.detail}`);
  return { vm, pid: (await cluster.qemuPids(matrix.vm))[node]![0]! };
}

/**
 * Starts the operator or a daemon again when it exited by itself, as its Deployment or DaemonSet would (the
 * operator exits when it loses its leader Lease, e.g. while the apiserver is away); a process a fault stopped is
 * not recorded as running and is left to the fault. Each exit is reported to `exited`. Returns stop().
 */
function superviseProcesses(matrix: Matrix, exited: (what: string) => void): () => Promise<void> {
  const { cluster } = matrix;
  const { state } = cluster;
  let supervising = true;
  const loop = (async () => {
    while (supervising) {
      try {
        if (state.operator && !isOurs(state.operator.pid, state.dir)) {
          exited('operator');
          state.operator = undefined;
          await cluster.startOperator();
        }
        for (const node of state.nodes) {
          if (node.daemon && !isOurs(node.daemon.pid, state.dir)) {
            exited(`daemon ${node.name}`);
            node.daemon = undefined;
            await cluster.startDaemon(node.name);
          }
        }
      } catch (error) {
        matrix.log(`  supervisor: ${(error as Error).message}`);
      }
      await sleep(1_000);
    }
  })();
  return async () => {
    supervising = false;
    await loop;
  };
}

/**
 * Polls both daemons until stopped, the destination first (a guest that moves during one poll cannot look as if it
 * ran on both nodes); stop() returns how often each combination of states was seen.
 */
function watchRunStates(matrix: Matrix, order: string[]): () => Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let polling = true;
  const vm = matrix.vm;
  const loop = (async () => {
    while (polling) {
      const phases = await matrix.cluster.guestPhases(vm, order);
      const key = Object.entries(phases)
        .map(([node, phase]) => `${node}=${phase.replace('GUEST_PHASE_', '')}`)
        .join(' ');
      seen.set(key, (seen.get(key) ?? 0) + 1);
      await sleep(50);
    }
  })();
  return async () => {
    polling = false;
    await loop;
    return seen;
  };
}

/** A daemon's stage of a migration (undefined: it knows none of that id, or does not answer). */
function daemonStage(
  matrix: Matrix,
  node: string,
  id: string,
): Promise<MigrationState__Output['stage'] | undefined> {
  return unary<MigrationState__Output>((done) =>
    matrix.migrationApis
      .get(node)!
      .getMigration({ migrationId: id }, { deadline: new Date(Date.now() + 2_000) }, done),
  ).then(
    (state) => state.stage,
    () => undefined,
  );
}

/**
 * Holds the operator before it writes the Initializing phase of Migration `name` (after PrepareIncoming, before
 * StartMigration); release() lifts the hold.
 */
function holdInitializing(matrix: Matrix, name: string): Promise<() => Promise<void>> {
  return matrix.kube.holdWrites(
    'hold-initializing',
    {
      resourceRules: [
        {
          apiGroups: ['tern.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['UPDATE'],
          resources: ['migrations/status'],
          resourceNames: [name, PROBE_MIGRATION],
        },
      ],
      validations: [
        {
          expression:
            "!has(object.status) || !has(object.status.phase) || object.status.phase != 'Initializing'",
          message: 'test hold: the Migration stays before Initializing',
        },
      ],
    },
    () =>
      matrix.kube.dryRunRefused([
        ...['patch', 'migration', PROBE_MIGRATION, '--subresource=status', '--type=merge'],
        ...['-p', JSON.stringify({ status: { phase: 'Initializing' } })],
      ]),
  );
}

/**
 * Holds the operator's Migration status write that carries the quiesce report (the first of the writes it holds
 * back until the target runs the guest), for Migration `name`; release() lifts the hold.
 */
function holdStatusAfterResume(matrix: Matrix, name: string): Promise<() => Promise<void>> {
  return matrix.kube.holdWrites(
    'hold-status-after-resume',
    {
      resourceRules: [
        {
          apiGroups: ['tern.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['UPDATE'],
          resources: ['migrations/status'],
          resourceNames: [name, PROBE_MIGRATION],
        },
      ],
      validations: [
        {
          expression: '!has(object.status) || !has(object.status.quiesce)',
          message: 'test hold: the Migration status stays without its quiesce report',
        },
      ],
    },
    () =>
      matrix.kube.dryRunRefused([
        ...['patch', 'migration', PROBE_MIGRATION, '--subresource=status', '--type=merge'],
        ...['-p', JSON.stringify({ status: { quiesce: { durationMs: 0, disks: [] } } })],
      ]),
  );
}

interface Held {
  /** Lets the migration go on from the held step (no-op for a phase that is not held). */
  release(): Promise<void>;
}

/** Creates Migration `name` of the VM to `to` and returns once it is at `phase` (held there where it can be). */
async function reachPhase(
  matrix: Matrix,
  phase: Phase,
  name: string,
  from: string,
  to: string,
): Promise<Held> {
  const { cluster, kube } = matrix;
  const migration = {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name, namespace: 'default' },
    spec: { vmName: matrix.vm, targetNode: to, ...(OVERRIDES[phase] ? { overrides: OVERRIDES[phase] } : {}) },
  };
  const statusIs = (want: (m: Migration) => boolean) => async () => {
    const current = await getMigration(matrix, name);
    if (current && TERMINAL_MIGRATION_PHASES.includes(current.status?.phase ?? ''))
      throw new PhaseMissed(`${name} ended ${current.status?.phase} before ${phase}`);
    return current && want(current) ? current : undefined;
  };
  const waitFor = (what: string, probe: () => Promise<unknown>) =>
    eventually(
      what,
      async () =>
        probe().catch((error: unknown) => {
          if (error instanceof PhaseMissed) return error;
          throw error;
        }),
      REACH_PHASE_MS,
      250,
    ).then((value) => {
      if (value instanceof PhaseMissed) throw value;
      return value;
    });
  /** The daemons' id of the Migration's current attempt. */
  const daemonId = (m: Migration) => daemonMigrationId(m.metadata.uid!, migrationAttempt(m));
  const loadedOnTarget = statusIs(() => true);
  const heldAtSwitchover = async () => {
    const current = await loadedOnTarget();
    if (!current) return;
    const id = daemonId(current);
    const [source, target] = [await daemonStage(matrix, from, id), await daemonStage(matrix, to, id)];
    return source === 'MIGRATION_STAGE_FINISHED' && target === 'MIGRATION_STAGE_LOADED' ? current : undefined;
  };
  switch (phase) {
    case 'Initializing': {
      const release = await holdInitializing(matrix, name);
      await kube.apply(migration);
      await waitFor(`${name} prepared on ${to}`, async () => {
        const vm = await getVm(matrix);
        const phases = await cluster.guestPhases(matrix.vm, [to]);
        // PAUSED: the incoming QEMU runs (STARTING may not have spawned it yet: no QEMU to kill).
        return vm.status?.activeMigration === name && phases[to] === 'GUEST_PHASE_PAUSED' ? vm : undefined;
      });
      return { release };
    }
    case 'Copying':
      await kube.apply(migration);
      await waitFor(
        `${name} copying`,
        statusIs((m) => m.status?.phase === 'Copying' && (m.status.progress?.transferredBytes ?? 0) > 0),
      );
      return { release: async () => undefined };
    case 'Switchover': {
      const release = await kube.holdOwnershipRecord(matrix.vm);
      await kube.apply(migration);
      await waitFor(`${name} held at the switchover`, heldAtSwitchover);
      return { release };
    }
    case 'AfterSwap': {
      const releaseRecord = await kube.holdOwnershipRecord(matrix.vm);
      await kube.apply(migration);
      await waitFor(`${name} held at the switchover`, heldAtSwitchover);
      // ResumeTarget's `cont` waits on the stopped target QEMU (its daemon answers everything else) while the record
      // moves. The daemon gives up on a QMP command after 10 s: the fault lands well within that.
      const [targetQemu] = (await cluster.qemuPids(matrix.vm))[to]!;
      if (targetQemu === undefined) throw new Error(`${to} runs no QEMU of ${matrix.vm}`);
      process.kill(targetQemu, 'SIGSTOP');
      const resumeQemu = () => {
        try {
          process.kill(targetQemu, 'SIGCONT');
        } catch {
          // killed by the fault
        }
      };
      try {
        await releaseRecord();
        await eventually(
          `${matrix.vm}'s record on ${to}`,
          async () => ((await getVm(matrix)).status?.node === to ? true : undefined),
          60_000,
          100,
        );
      } catch (error) {
        resumeQemu();
        throw error;
      }
      return { release: async () => resumeQemu() };
    }
    case 'Resumed': {
      const release = await holdStatusAfterResume(matrix, name);
      await kube.apply(migration);
      try {
        await waitFor(`${name}: the guest runs on ${to}, the status held back`, async () => {
          const current = await loadedOnTarget();
          if (!current || current.status?.quiesce !== undefined) return undefined;
          const vm = await getVm(matrix);
          const phases = await cluster.guestPhases(matrix.vm, [to, from]);
          return vm.status?.node === to && phases[to] === 'GUEST_PHASE_RUNNING' && phases[from] === 'ABSENT'
            ? current
            : undefined;
        });
      } catch (error) {
        await release();
        throw error;
      }
      return { release };
    }
    case 'PostCopy': {
      await kube.apply(migration);
      const inPostCopy = statusIs((m) => m.status?.phase === 'PostCopy');
      await waitFor(`${name} in post-copy, the guest running on ${to}`, async () => {
        const current = await inPostCopy();
        if (!current) return undefined;
        const vm = await getVm(matrix);
        const phases = await cluster.guestPhases(matrix.vm, [to, from]);
        const sourceStage = await daemonStage(matrix, from, daemonId(current));
        return vm.status?.node === to &&
          phases[to] === 'GUEST_PHASE_RUNNING' &&
          sourceStage === 'MIGRATION_STAGE_RUNNING'
          ? current
          : undefined;
      });
      return { release: async () => undefined };
    }
  }
}

class PhaseMissed extends Error {}

interface Injected {
  /** Waits out the fault and undoes it (restarts what was killed, continues, reconnects, restarts the apiserver). */
  end(): Promise<void>;
  /** The fault takes the apiserver away: a hold is lifted only after end(). */
  apiServerDown?: boolean;
}

async function inject(matrix: Matrix, fault: Fault, from: string, to: string): Promise<Injected> {
  const { cluster } = matrix;
  const startedAt = Date.now();
  const after = (ms: number) => sleep(Math.max(0, startedAt + ms - Date.now()));
  const node = fault.includes('-source-') ? from : to;
  switch (fault) {
    case 'kill-source-qemu':
    case 'kill-target-qemu': {
      const pids = (await cluster.qemuPids(matrix.vm))[node]!;
      if (pids.length !== 1) throw new Error(`${node} runs ${pids.length} QEMUs of ${matrix.vm}, expected 1`);
      process.kill(pids[0]!, 'SIGKILL');
      return { end: async () => undefined };
    }
    case 'kill-source-daemon':
    case 'kill-target-daemon': {
      await cluster.stopDaemon(node, 'SIGKILL');
      return { end: () => cluster.startDaemon(node) };
    }
    case 'kill-operator':
      await cluster.stopOperator('SIGKILL');
      return { end: () => cluster.startOperator() };
    case 'stop-source-daemon':
    case 'stop-target-daemon': {
      cluster.signalDaemon(node, 'SIGSTOP');
      return {
        async end() {
          await after(STOP_DAEMON_MS);
          cluster.signalDaemon(node, 'SIGCONT');
        },
      };
    }
    case 'cut-source-link':
    case 'cut-target-link': {
      await cluster.setNodeLink(node, false);
      return {
        async end() {
          await after(CUT_LINK_MS);
          await cluster.setNodeLink(node, true);
        },
      };
    }
    case 'stop-apiserver':
      await cluster.stopApiServer();
      return {
        apiServerDown: true,
        async end() {
          await after(STOP_APISERVER_MS);
          await cluster.startApiServer();
        },
      };
  }
}

/**
 * Whether the fault kills the only QEMU that holds the guest whole, so that a restart by the restartPolicy is the
 * expected end. The source QEMU holds it until the record moves (Initializing, Copying); in post-copy neither side
 * does (the target runs with part of the memory, the source holds the rest): killing either loses the guest by
 * nature (the guest starts again on the target, which the record names since the post-copy switch); a cut link
 * (20 s) comes back within the stall timeout (150 s) and post-copy recovers without a restart. Once the target is loaded (Switchover) each side holds it whole, so killing one QEMU must not lose it.
 * AfterSwap kills the target QEMU while ResumeTarget's `cont` waits on it: from the durable resume mark on, the
 * guest may have run on the target, so the source's paused memory is stale and never runs again (docs/
 * architecture.md "The hand-over rule"); the guest starts again on the target, and the Migration says so. At
 * Resumed the target's QEMU is the only one left (the source was released).
 */
export function restartAllowed(fault: Fault, phase: Phase): boolean {
  if (fault === 'kill-source-qemu')
    return phase === 'Initializing' || phase === 'Copying' || phase === 'PostCopy';
  if (fault === 'kill-target-qemu')
    return phase === 'AfterSwap' || phase === 'Resumed' || phase === 'PostCopy';
  return false;
}

const conditionOf = (vm: VirtualMachine, type: string): Condition | undefined =>
  vm.status?.conditions?.find((c) => c.type === type);

/** Polls until `probe` answers, tolerating a cluster that does not answer for a while (the fault itself). */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms: number,
): Promise<T | undefined> {
  return eventually(what, probe, ms, 500).catch(() => undefined);
}

/** One cell: the fault at the phase, then the invariants. Leaves the cluster for restore(). */
export async function runCell(
  matrix: Matrix,
  fault: Fault,
  phase: Phase,
  trial: number,
  { deleteMigration = false }: CellOptions = {},
): Promise<CellResult> {
  const { cluster, log } = matrix;
  const name =
    `mx-${fault.replace(/-/g, '')}-${phase.toLowerCase()}-${trial}${deleteMigration ? '-del' : ''}-` +
    Date.now().toString(36);
  const result: CellResult = {
    fault: deleteMigration ? `${fault}+delete` : fault,
    phase,
    trial,
    migration: name,
    outcome: '-',
    reason: '-',
    message: '',
    restarted: false,
    pass: false,
    problems: [],
    notes: [],
    watch: {},
  };
  const problems = result.problems;
  const before = await getVm(matrix);
  const from = before.status!.node!;
  const to = other(matrix, from);
  const sourcePid = (await cluster.qemuPids(matrix.vm))[from]![0]!;
  const restartedBefore = conditionOf(before, 'Restarted')?.message;
  const stopWatch = watchRunStates(matrix, [to, from]);
  const stopSupervising = superviseProcesses(matrix, (what) => {
    log(`  ${what} exited by itself: started again`);
    // The operator exits on purpose when it loses its Lease; a daemon that exits is a crash.
    if (what === 'operator') result.notes.push('operator exited (lost its Lease) and was restarted');
    else problems.push(`${what} exited by itself`);
  });
  let faultAt = 0;
  /** The VM's invariants once the Migration ended (or was deleted). */
  const checkSettled = async () => {
    const settled = await settledVm(matrix, SETTLE_WITHIN_MS).catch((error: Error) => error);
    if (settled instanceof Error) {
      const vm = await getVm(matrix).catch(() => undefined);
      const phases = await cluster.guestPhases(matrix.vm).catch(() => ({}));
      problems.push(
        `VM not settled within ${SETTLE_WITHIN_MS / 1000} s: ${settled.message}; VM ${vm?.status?.phase} on ` +
          `${vm?.status?.node} activeMigration=${vm?.status?.activeMigration ?? '-'}; daemons ${JSON.stringify(phases)}`,
      );
      return;
    }
    const node = settled.vm.status!.node!;
    result.guestNode = node;
    // A restart by the restartPolicy rewrites the Restarted condition (its message starts with the time).
    const restartedByPolicy = conditionOf(settled.vm, 'Restarted')?.message !== restartedBefore;
    // A deleted Migration is cancelled, or completes when it was past its point of no return: either node. A target
    // QEMU killed while its `cont` was on the way keeps the record, and the guest starts again there (restartAllowed).
    const resumeInterrupted =
      fault === 'kill-target-qemu' && phase === 'AfterSwap' && /may have run there/.test(result.message);
    // A post-copy that failed after its switch: the guest ran on the target, and starts again there.
    const postCopyOnTarget =
      result.reason === 'PostCopyFailed' && /ownership record names (\S+);/.exec(result.message)?.[1] === to;
    const moved =
      result.outcome === 'Succeeded' || result.outcome === 'Deleted' || resumeInterrupted || postCopyOnTarget;
    const sameQemu = (node === from && settled.pid === sourcePid) || (node === to && moved);
    result.restarted = restartedByPolicy || !sameQemu;
    if (result.outcome === 'Succeeded' && node !== to)
      problems.push(`Succeeded but the guest runs on ${node}`);
    if (!moved && node !== from) problems.push(`${result.outcome} but the guest runs on ${node}`);
    if (result.restarted && !restartAllowed(fault, phase))
      problems.push(`the guest was restarted (a new QEMU on ${node}): its state is lost`);
    // At Resumed the move is done: a target QEMU killed then is a crash after it, whose restart loses no move.
    const crashAfterMove = fault === 'kill-target-qemu' && phase === 'Resumed';
    if (result.restarted && result.outcome === 'Succeeded' && !crashAfterMove)
      problems.push('Succeeded although the guest was restarted (its running state is lost)');
    if (!sameQemu && !restartedByPolicy)
      problems.push(`a new QEMU runs the guest on ${node} without a Restarted condition saying why`);
    if (result.restarted) result.message += ` [restarted: ${conditionOf(settled.vm, 'Restarted')?.reason}]`;
  };
  try {
    let held: Held;
    try {
      held = await reachPhase(matrix, phase, name, from, to);
    } catch (error) {
      problems.push(`harness: ${phase} not reached: ${(error as Error).message}`);
      result.outcome = 'phase missed';
      return result;
    }
    log(`  ${name}: at ${phase} (${from} → ${to}); injecting ${fault}`);
    faultAt = Date.now();
    const injected = await inject(matrix, fault, from, to);
    const deleteIt = async () => {
      if (!deleteMigration) return;
      result.reason = (await getMigration(matrix, name))?.status?.phase ?? '-';
      await cluster.kubectl(['delete', 'migration', name, '--wait=false']);
      log(`  ${name}: deleted in ${result.reason}`);
    };
    if (!injected.apiServerDown) {
      await held.release();
      await deleteIt();
    }
    await injected.end();
    if (injected.apiServerDown) {
      await held.release();
      await deleteIt();
    }
    log(`  ${name}: fault over after ${Date.now() - faultAt} ms`);
    if (deleteMigration) {
      const gone = await until(
        `${name} gone`,
        async () => ((await getMigration(matrix, name)) ? undefined : true),
        TERMINAL_WITHIN_MS - (Date.now() - faultAt),
      );
      if (!gone) {
        result.outcome = (await getMigration(matrix, name).catch(() => undefined))?.status?.phase ?? 'none';
        result.reason = `deleted in ${result.reason}`;
        problems.push(`the deleted Migration is not gone within ${TERMINAL_WITHIN_MS / 1000} s of the fault`);
        return result;
      }
      result.outcome = 'Deleted';
      result.reason = `in ${result.reason}`;
      result.terminalMs = Date.now() - faultAt;
      await checkSettled();
      return result;
    }

    const terminal = await until(
      `${name} terminal`,
      async () => {
        const current = await getMigration(matrix, name);
        return current && TERMINAL_MIGRATION_PHASES.includes(current.status?.phase ?? '')
          ? current
          : undefined;
      },
      TERMINAL_WITHIN_MS - (Date.now() - faultAt),
    );
    const last = terminal ?? (await getMigration(matrix, name).catch(() => undefined));
    result.outcome = last?.status?.phase ?? 'none';
    result.reason = last?.status?.failureReason ?? '-';
    result.message = last?.status?.message ?? '';
    if (!terminal) {
      problems.push(`not terminal within ${TERMINAL_WITHIN_MS / 1000} s of the fault (${result.outcome})`);
      // Deleting a Migration always finishes: the one that still runs is deleted now.
      const deletedAt = Date.now();
      await cluster.kubectl(['delete', 'migration', name, '--wait=false']).catch(() => undefined);
      const gone = await until(
        `${name} gone`,
        async () => ((await getMigration(matrix, name)) ? undefined : true),
        60_000,
      );
      problems.push(
        gone
          ? `deleting it finished in ${Date.now() - deletedAt} ms`
          : 'deleting it did not finish within 60 s',
      );
      return result;
    }
    result.terminalMs = Date.now() - faultAt;
    if (result.outcome !== 'Succeeded' && !terminal.status?.failureReason)
      problems.push(`${result.outcome} without a failureReason`);

    await checkSettled();
  } catch (error) {
    problems.push(`harness: ${(error as Error).message}`);
  } finally {
    await stopSupervising();
    const seen = await stopWatch();
    result.watch = Object.fromEntries(seen);
    const twice = [...seen.keys()].filter((key) => (key.match(/=RUNNING/g)?.length ?? 0) > 1);
    if (twice.length > 0) problems.push(`the watch saw the guest running on both nodes: ${twice.join(', ')}`);
    result.pass = problems.length === 0;
  }
  return result;
}

/** One result as a table row. */
export function tableRow(r: CellResult): string[] {
  return [
    r.fault,
    r.phase,
    String(r.trial),
    r.outcome,
    r.reason,
    r.terminalMs === undefined ? '-' : `${(r.terminalMs / 1000).toFixed(1)} s`,
    r.guestNode ?? '-',
    r.pass ? 'PASS' : `FAIL: ${r.problems.join('; ')}`,
  ];
}

export const TABLE_HEADER = [
  'fault',
  'phase',
  'trial',
  'outcome',
  'reason',
  'to terminal',
  'guest node',
  'result',
];

export function formatTable(rows: string[][]): string {
  const all = [TABLE_HEADER, ...rows];
  const widths = TABLE_HEADER.map((_, i) =>
    i === TABLE_HEADER.length - 1 ? 0 : Math.max(...all.map((row) => row[i]!.length)),
  );
  return all
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
