// bench:scale's scenario (issue 14 item 6): the real operator process against a real kube-apiserver + etcd and
// `nodes` hollow daemons (hollow-daemon.ts: the daemon's real gRPC API, mTLS, registration and Lease; guests kept
// as records, migrations played in `copyMs`). `vms` VirtualMachines are created and reconciled to Running, then
// `drain` nodes are drained as `kubectl tern drain` does (spec.unschedulable and spec.drain), under the operator's
// default concurrency limits, until every VM has left them. Measured: the reconcile time, the drain time against
// the ideal the limits allow, the operator's RSS and CPU (/proc), and the apiserver requests per migration.
// Every wait is bounded by `timeoutSeconds` overall; everything is torn down at the end, also on a failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import {
  API_GROUP,
  API_VERSION,
  API_VERSION_NAME,
  EVACUATION_NODE_LABEL,
  PLURALS,
  type HypervisorNode,
  type Migration,
  type VirtualMachine,
} from '../../../crds/index.js';
import { ACTIVE_MIGRATION_PHASES } from '../../../operator/src/migration/state.js';
import { generateDevCerts } from '../../harness/certificates.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import {
  apiserverRequests,
  CountingKubeConfig,
  snapshot,
  subtract,
  total,
  type RequestCounts,
} from './apiserver-requests.js';
import { startHollowDaemon, type HollowDaemon } from './hollow-daemon.js';
import { HollowFabric } from './hollow-migrations.js';
import { UsageSampler } from './process-usage.js';

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));

/** The operator's default concurrency limits (operator/src/config.ts); the bench passes none, so these apply. */
export const DEFAULT_LIMITS = { cluster: 5, outboundPerNode: 2, inboundPerNode: 2 };

export interface ScaleOptions {
  nodes: number;
  vms: number;
  /** Nodes drained at once (the first ones). */
  drain: number;
  /** A hollow migration's copy, from StartMigration to its outcome (plus downtimeMs). */
  copyMs: number;
  downtimeMs: number;
  /**
   * A window after the last VM runs and before the drain, in which the operator's apiserver requests are counted
   * (it is not idle yet: the status writes of the reconcile still wake VM reconciles).
   */
  settleSeconds: number;
  /** Bound on the whole run (set-up, reconcile, drain). */
  timeoutSeconds: number;
  /** The operator's program: a production bundle (dist/app/operator.mjs) under plain node; default its source via tsx. */
  operatorMain?: string;
  /** Progress lines while it runs. */
  log: (line: string) => void;
}

export interface ScaleResult {
  vms: number;
  nodes: number;
  drainedNodes: string[];
  reconcileSeconds: number;
  migrations: number;
  drainSeconds: number;
  /** At most this many migrations at once under the limits, and the drain time if only they bound it. */
  concurrency: number;
  idealDrainSeconds: number;
  mostActiveSeen: number;
  /** Migrations running at once, averaged over the drain's polls. */
  meanActive: number;
  /** Why Pending Migrations waited (their Scheduled condition's reason), counted over the drain's polls. */
  waitReasons: Record<string, number>;
  operatorRssPeakMiB: number;
  operatorRssAfterReconcileMiB: number;
  operatorCpuSeconds: { reconcile: number; drain: number; total: number };
  /** The operator's apiserver requests during the drain, by verb and resource. */
  drainRequests: RequestCounts;
  /** The operator's apiserver requests in the settle window, and per second. */
  settleRequestsPerSecond: number;
  settleRequests: RequestCounts;
  /**
   * Medians over the evacuation Migrations, in ms: each phase's duration, creation to the end, and each switchover
   * step's offset after the source paused ('switchover <step>').
   */
  phaseMediansMs: Record<string, number>;
  /** Each evacuation Migration, by when it ended: its creation, the start of each phase and its end, in s after the drain began. */
  timeline: string[];
  /** Everyone's, for the record: the hollow daemons' and the bench's own requests in the same window. */
  daemonRequests: RequestCounts;
  benchRequests: RequestCounts;
  /** After the drain: VMs by phase and node, and the drained nodes' guests as their daemons hold them. */
  vmPhases: Record<string, number>;
  vmsOnDrainedNodes: number;
  guestsOnDrainedNodes: number;
  guestsPerNode: Record<string, number>;
  /** VMs whose guest (keyed by the VM's UID) runs on the daemon of the node their ownership record names. */
  vmsRunningWhereRecorded: number;
}

const POLL_MS = 2_000;
const CREATE_CONCURRENCY = 10;
const CREATE_ATTEMPTS = 5;
const MIB = 2 ** 20;

const nodeName = (i: number, width: number) => `node-${String(i + 1).padStart(width, '0')}`;

function vmManifest(name: string): VirtualMachine {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      evictionStrategy: 'LiveMigrate',
      // Hollow daemons open nothing: the paths only have to pass the API's validation.
      boot: { kernel: { path: '/var/lib/tern/images/hollow/vmlinuz', cmdline: 'console=ttyS0' } },
    },
  } as VirtualMachine;
}

/** Runs `task` on each item, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const { log } = options;
  if (options.drain < 1 || options.drain >= options.nodes)
    throw new Error(`--drain must be at least 1 and fewer than --nodes (${options.nodes})`);
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  /** Polls `check` until it returns a value; past the deadline, throws saying what was awaited and the last state. */
  const until = async <T>(what: string, check: () => Promise<{ done?: T; state: string }>): Promise<T> => {
    for (;;) {
      // A poll that fails (the apiserver overloaded: a dropped connection, a timeout) counts as not done yet.
      const { done, state } = await check().catch((error: unknown) => ({
        done: undefined,
        state: `the poll failed: ${error instanceof Error ? error.message : String(error)}`,
      }));
      if (done !== undefined) return done;
      if (Date.now() > deadline)
        throw new Error(
          `bench:scale timed out (--timeout-s ${options.timeoutSeconds}) waiting for ${what}; last seen: ${state}`,
        );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  const work = await mkdtemp(join(tmpdir(), 'tern-scale-'));
  const nodes = Array.from({ length: options.nodes }, (_, i) => nodeName(i, String(options.nodes).length));
  const drained = nodes.slice(0, options.drain);
  let cp: ControlPlane | undefined;
  let operator: OperatorProcess | undefined;
  let sampler: UsageSampler | undefined;
  const daemons: HollowDaemon[] = [];
  try {
    const started = Date.now();
    cp = await startControlPlane({ name: 'scale' });
    const kubectl = async (...args: string[]): Promise<void> => {
      const result = await cp!.kubectl(args);
      if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
    };
    await kubectl('apply', '-f', CRDS);
    await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
    await kubectl('create', 'namespace', 'tern-system');
    const certs = generateDevCerts(
      join(work, 'pki'),
      nodes.map((name) => ({ name })),
    );
    // The hollow daemons' requests and the bench's own, counted apart from the operator's.
    const daemonKube = CountingKubeConfig.fromFile(cp.kubeconfigPath);
    const benchKube = CountingKubeConfig.fromFile(cp.kubeconfigPath);
    const api = benchKube.makeApiClient(CustomObjectsApi);
    const listVms = async () =>
      (
        (await api.listNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION_NAME,
          namespace: 'default',
          plural: PLURALS.VirtualMachine,
        })) as { items: VirtualMachine[] }
      ).items;
    const listMigrations = async () =>
      (
        (await api.listNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION_NAME,
          namespace: 'default',
          plural: PLURALS.Migration,
        })) as { items: Migration[] }
      ).items;
    const listNodes = async () =>
      (
        (await api.listClusterCustomObject({
          group: API_GROUP,
          version: API_VERSION_NAME,
          plural: PLURALS.HypervisorNode,
        })) as { items: HypervisorNode[] }
      ).items;

    operator = await startOperatorProcess(
      [
        ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
        ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
      ],
      ...(options.operatorMain !== undefined ? [options.operatorMain] : []),
    );
    sampler = new UsageSampler(operator.pid);
    const fabric = new HollowFabric();
    daemons.push(
      ...(await Promise.all(
        nodes.map((node) =>
          startHollowDaemon({
            node,
            certs,
            stateDir: join(work, 'nodes', node),
            kubeConfig: daemonKube,
            leaseNamespace: 'tern-system',
            leaseDurationSeconds: 40,
            heartbeatIntervalSeconds: 10,
            // Room for every VM on any node: placement, not capacity, spreads them.
            capacity: { cpus: options.vms + 8, memoryMiB: (options.vms + 8) * 256 },
            fabric,
            timing: { copyMs: options.copyMs, progressEveryMs: 250, downtimeMs: options.downtimeMs },
          }),
        ),
      )),
    );
    await until(`${nodes.length} HypervisorNodes Ready`, async () => {
      const ready = (await listNodes()).filter((n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ).length;
      return { done: ready === nodes.length ? true : undefined, state: `${ready} Ready` };
    });
    log(
      `setup: ${Date.now() - started} ms (control plane ${cp.startupMs} ms; operator; ${nodes.length} hollow daemons Ready)`,
    );

    // Reconcile: every VM created, then each Running on some node.
    const names = Array.from({ length: options.vms }, (_, i) => `vm-${String(i + 1).padStart(4, '0')}`);
    const cpuBefore = sampler.read().cpuSeconds;
    const reconcileStarted = performance.now();
    await eachLimited(names, CREATE_CONCURRENCY, async (name) => {
      // A create the apiserver dropped is sent again; one that had landed answers AlreadyExists.
      for (let attempt = 1; ; attempt++) {
        try {
          await api.createNamespacedCustomObject({
            group: API_GROUP,
            version: API_VERSION_NAME,
            namespace: 'default',
            plural: PLURALS.VirtualMachine,
            body: vmManifest(name),
          });
          return;
        } catch (error) {
          if ((error as { code?: number }).code === 409) return;
          if (attempt >= CREATE_ATTEMPTS || Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    });
    log(
      `created ${names.length} VirtualMachines in ${((performance.now() - reconcileStarted) / 1000).toFixed(1)} s`,
    );
    let lastReport = 0;
    await until(`${names.length} VMs Running`, async () => {
      const running = (await listVms()).filter(
        (vm) => vm.status?.phase === 'Running' && vm.status.node,
      ).length;
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        log(
          `  ${running}/${names.length} Running after ${((performance.now() - reconcileStarted) / 1000).toFixed(0)} s`,
        );
      }
      return { done: running === names.length ? true : undefined, state: `${running} Running` };
    });
    const reconcileSeconds = (performance.now() - reconcileStarted) / 1000;
    const afterReconcile = sampler.read();
    const placed = new Map<string, number>();
    for (const vm of await listVms()) placed.set(vm.status!.node!, (placed.get(vm.status!.node!) ?? 0) + 1);
    const toMove = drained.reduce((sum, node) => sum + (placed.get(node) ?? 0), 0);
    log(
      `all ${names.length} VMs Running after ${reconcileSeconds.toFixed(1)} s; ` +
        `${Math.min(...placed.values())}–${Math.max(...placed.values())} per node`,
    );

    // Settle: every VM runs; what the operator still asks of the apiserver before the drain.
    const settleApiBefore = await apiserverRequests(cp);
    const settleDaemonsBefore = snapshot(daemonKube.counts);
    const settleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, options.settleSeconds * 1000));
    const settleRequests = subtract(
      await apiserverRequests(cp),
      settleApiBefore,
      subtract(daemonKube.counts, settleDaemonsBefore),
    );
    const settleRequestsPerSecond = total(settleRequests) / ((performance.now() - settleStarted) / 1000);
    log(
      `the next ${options.settleSeconds} s: the operator made ${settleRequestsPerSecond.toFixed(1)} apiserver requests/s ` +
        `(${[...settleRequests]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([key, n]) => `${key} ${n}`)
          .join(', ')})`,
    );

    // Drain: as `kubectl tern drain` marks a node, all of them at once; done when no VM is left on them.
    const apiBefore = await apiserverRequests(cp);
    const daemonsBefore = snapshot(daemonKube.counts);
    const benchBefore = snapshot(benchKube.counts);
    const cpuBeforeDrain = sampler.read().cpuSeconds;
    const drainStarted = performance.now();
    const drainStartedAt = Date.now();
    for (const node of drained) {
      await api.patchClusterCustomObject(
        {
          group: API_GROUP,
          version: API_VERSION_NAME,
          plural: PLURALS.HypervisorNode,
          name: node,
          body: { spec: { unschedulable: true, drain: true } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    let mostActiveSeen = 0;
    let polls = 0;
    let activeSum = 0;
    const waitReasons: Record<string, number> = {};
    lastReport = performance.now();
    await until(`${drained.join(', ')} evacuated`, async () => {
      const [vms, migrations, hvns] = await Promise.all([listVms(), listMigrations(), listNodes()]);
      const active = migrations.filter(
        (m) => m.status?.phase && ACTIVE_MIGRATION_PHASES.includes(m.status.phase),
      );
      mostActiveSeen = Math.max(mostActiveSeen, active.length);
      polls += 1;
      activeSum += active.length;
      for (const m of migrations) {
        if (m.status?.phase !== undefined && m.status.phase !== 'Pending') continue;
        const scheduled = m.status?.conditions?.find((c) => c.type === 'Scheduled');
        const reason = scheduled?.status === 'False' ? scheduled.reason : 'not admitted yet';
        waitReasons[reason] = (waitReasons[reason] ?? 0) + 1;
      }
      const left = vms.filter((vm) => drained.includes(vm.status?.node ?? '')).length;
      const evacuated = hvns.filter(
        (n) => drained.includes(n.metadata.name!) && n.status?.evacuation?.phase === 'Evacuated',
      ).length;
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        log(
          `  ${toMove - left}/${toMove} moved after ${((performance.now() - drainStarted) / 1000).toFixed(0)} s (${active.length} migrating)`,
        );
      }
      const done = left === 0 && evacuated === drained.length;
      return {
        done: done ? true : undefined,
        state: `${left} VMs left on ${drained.join(', ')}, ${evacuated} Evacuated, ${active.length} migrating`,
      };
    });
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    const apiAfter = await apiserverRequests(cp);
    const daemonRequests = subtract(daemonKube.counts, daemonsBefore);
    const benchRequests = subtract(benchKube.counts, benchBefore);
    const drainRequests = subtract(apiAfter, apiBefore, daemonRequests, benchRequests);
    const end = sampler.read();

    const [vms, migrations] = await Promise.all([listVms(), listMigrations()]);
    const evacuations = migrations.filter((m) =>
      drained.includes(m.metadata.labels?.[EVACUATION_NODE_LABEL] ?? ''),
    );
    const succeeded = evacuations.filter((m) => m.status?.phase === 'Succeeded').length;
    const durations = new Map<string, number[]>();
    const sample = (key: string, ms: number) => durations.set(key, [...(durations.get(key) ?? []), ms]);
    for (const m of evacuations) {
      for (const timing of m.status?.phaseTimings ?? [])
        if (timing.durationMs !== undefined) sample(timing.phase, timing.durationMs);
      // The switchover timeline (status.switchover): where the guest's pause went, ms after the source paused.
      for (const step of m.status?.switchover?.steps ?? []) sample(`switchover ${step.step}`, step.offsetMs);
      const last = m.status?.phaseTimings?.find((t) => t.phase === m.status?.phase);
      if (last !== undefined)
        sample('created→end', Date.parse(last.startedAt) - Date.parse(m.metadata.creationTimestamp!));
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
    const phaseMediansMs = Object.fromEntries(
      [...durations].map(([key, values]) => [key, Math.round(median(values))]),
    );
    const at = (time: string | undefined) => ((Date.parse(time ?? '') - drainStartedAt) / 1000).toFixed(1);
    const timeline = evacuations
      .map((m) => ({
        ended: Date.parse(m.status?.phaseTimings?.find((t) => t.phase === m.status?.phase)?.startedAt ?? ''),
        line:
          `${m.spec.vmName} ${m.status?.sourceNode}→${m.status?.targetNode}: created ${at(m.metadata.creationTimestamp)}` +
          (m.status?.phaseTimings ?? []).map((t) => `, ${t.phase} ${at(t.startedAt)}`).join(''),
      }))
      .sort((a, b) => a.ended - b.ended)
      .map(({ line }) => line);
    const vmPhases: Record<string, number> = {};
    for (const vm of vms)
      vmPhases[vm.status?.phase ?? 'none'] = (vmPhases[vm.status?.phase ?? 'none'] ?? 0) + 1;
    const guestsPerNode = Object.fromEntries(daemons.map((d) => [d.node, d.guests.list().length]));
    const concurrency = Math.min(
      DEFAULT_LIMITS.cluster,
      DEFAULT_LIMITS.outboundPerNode * drained.length,
      DEFAULT_LIMITS.inboundPerNode * (nodes.length - drained.length),
    );
    const perMigrationSeconds = (options.copyMs + options.downtimeMs) / 1000;
    return {
      vms: names.length,
      nodes: nodes.length,
      drainedNodes: drained,
      reconcileSeconds,
      migrations: succeeded,
      drainSeconds,
      concurrency,
      idealDrainSeconds: Math.ceil(toMove / concurrency) * perMigrationSeconds,
      mostActiveSeen,
      meanActive: polls > 0 ? activeSum / polls : 0,
      waitReasons,
      operatorRssPeakMiB: end.peakRssBytes / MIB,
      operatorRssAfterReconcileMiB: afterReconcile.rssBytes / MIB,
      operatorCpuSeconds: {
        reconcile: afterReconcile.cpuSeconds - cpuBefore,
        drain: end.cpuSeconds - cpuBeforeDrain,
        total: end.cpuSeconds,
      },
      drainRequests,
      settleRequestsPerSecond,
      settleRequests,
      phaseMediansMs,
      timeline,
      daemonRequests,
      benchRequests,
      vmPhases,
      vmsOnDrainedNodes: vms.filter((vm) => drained.includes(vm.status?.node ?? '')).length,
      guestsOnDrainedNodes: drained.reduce((sum, node) => sum + (guestsPerNode[node] ?? 0), 0),
      guestsPerNode,
      vmsRunningWhereRecorded: vms.filter(
        (vm) =>
          daemons.find((d) => d.node === vm.status?.node)?.guests.get(vm.metadata.uid!)?.phase === 'Running',
      ).length,
    };
  } finally {
    sampler?.stop();
    await operator?.stop();
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    await cp?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The report: what was measured, then the last line (`vms=… requests_per_migration=…`). */
export function formatReport(
  result: ScaleResult,
  options: Pick<ScaleOptions, 'copyMs' | 'downtimeMs'>,
): string[] {
  const perMigration = (options.copyMs + options.downtimeMs) / 1000;
  const idealRate = result.concurrency / perMigration;
  const rate = result.migrations / result.drainSeconds;
  const ratio = result.drainSeconds / result.idealDrainSeconds;
  const requests = total(result.drainRequests);
  // Everything the operator asked during the drain, its guests' routine included, over the migrations it made.
  const perMigrationRequests = result.migrations > 0 ? requests / result.migrations : NaN;
  const table = [...result.drainRequests]
    .sort((a, b) => b[1] - a[1])
    .map(
      ([key, n]) =>
        `    ${key.padEnd(40)} ${String(n).padStart(7)}  (${(n / Math.max(1, result.migrations)).toFixed(1)}/migration)`,
    );
  return [
    `reconcile: ${result.vms} VMs on ${result.nodes} nodes Running in ${result.reconcileSeconds.toFixed(1)} s (${(result.vms / result.reconcileSeconds).toFixed(1)} VMs/s)`,
    `drain: ${result.drainedNodes.join(', ')}: ${result.migrations} migrations in ${result.drainSeconds.toFixed(1)} s, ${rate.toFixed(2)} migrations/s`,
    `  limits: cluster ${DEFAULT_LIMITS.cluster}, outbound ${DEFAULT_LIMITS.outboundPerNode}/node, inbound ${DEFAULT_LIMITS.inboundPerNode}/node → at most ${result.concurrency} at once (most seen ${result.mostActiveSeen}, ${result.meanActive.toFixed(1)} on average); ` +
      `a hollow migration takes ${perMigration.toFixed(2)} s → ideal ${result.idealDrainSeconds.toFixed(1)} s, ${idealRate.toFixed(2)} migrations/s; ratio ${ratio.toFixed(2)}`,
    `operator: RSS peak ${result.operatorRssPeakMiB.toFixed(0)} MiB (${result.operatorRssAfterReconcileMiB.toFixed(0)} MiB after the reconcile); ` +
      `CPU ${result.operatorCpuSeconds.total.toFixed(1)} s (reconcile ${result.operatorCpuSeconds.reconcile.toFixed(1)} s, drain ${result.operatorCpuSeconds.drain.toFixed(1)} s)`,
    `  Pending Migrations waited (Migrations × polls): ${
      Object.entries(result.waitReasons)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ') || 'never'
    }`,
    `  per migration (medians, ms): ${Object.entries(result.phaseMediansMs)
      .filter(([key]) => !key.startsWith('switchover '))
      .map(([phase, ms]) => `${phase} ${ms}`)
      .join(', ')}`,
    `  switchover (medians, ms after the source paused): ${Object.entries(result.phaseMediansMs)
      .filter(([key]) => key.startsWith('switchover '))
      .map(([step, ms]) => `${step.slice('switchover '.length)} ${ms}`)
      .join(', ')}`,
    `apiserver requests by the operator during the drain: ${requests}, ${perMigrationRequests.toFixed(1)} per migration ` +
      `(the hollow daemons' ${total(result.daemonRequests)} and the bench's ${total(result.benchRequests)} left out)`,
    ...table,
    `vms=${result.vms} nodes=${result.nodes} reconcile_s=${result.reconcileSeconds.toFixed(1)} drain_s=${result.drainSeconds.toFixed(1)} ` +
      `drain_ideal_ratio=${ratio.toFixed(2)} operator_rss_peak_mib=${result.operatorRssPeakMiB.toFixed(0)} ` +
      `operator_cpu_s=${result.operatorCpuSeconds.total.toFixed(1)} requests_per_migration=${perMigrationRequests.toFixed(1)}`,
  ];
}
