// The chart's PrometheusRule and Grafana dashboard against a real Prometheus: the real operator and two real
// daemons run a real QEMU guest (TCG) on a real kube-apiserver; Prometheus (the Debian package) scrapes their plain-
// HTTP /metrics endpoints on loopback and evaluates the rules rendered by `helm template`. After a real migration
// (and a Migration of a missing VM, and a HypervisorNode with no daemon), every dashboard query returns data, every
// rule evaluates without error, and the alerts those events should raise fire.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import type { HypervisorNode, Migration, VirtualMachine } from '../../crds/index.js';
import { generateDevCerts, type DevCerts } from '../harness/certificates.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../fixtures/test-guest.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../harness/daemon-process.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { condition, eventually, kubectlOn, testDaemonArgs } from '../harness/operator-cluster.js';
import { letQemuUserThrough, qemuUserArgs } from '../harness/qemu-user.js';
import { startOperatorProcess, type OperatorProcess } from '../harness/operator-process.js';
import { PROMTOOL, requirePrometheus, startPrometheus, type Prometheus } from '../harness/prometheus.js';
import { helm } from '../helm/chart-tools.js';

const run = promisify(execFile);
const CHART = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'helm', 'tern');
const CRDS = fileURLToPath(new URL('../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
const VM = 'mon-vm';

let cp: ControlPlane;
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
let prometheus: Prometheus;
let rulesFile: string;
let ruleGroups: RuleGroup[];
let dashboardQueries: { panel: string; expr: string }[];
let startedAt: number;
const daemons: DaemonProcess[] = [];
const { kubectl, apply, getJson } = kubectlOn(() => cp);

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string }[];
}

/** The chart rendered with every monitoring toggle on; thresholds the test can reach in seconds. */
async function renderMonitoring(): Promise<{ groups: RuleGroup[]; dashboard: string }> {
  const rendered = await helm(
    'template',
    'tern',
    CHART,
    '--namespace=tern-system',
    '--set=monitoring.prometheusRule.enabled=true',
    '--set=monitoring.dashboard.enabled=true',
    // Any real migration (TCG) pauses its guest longer than 5 ms; a node not Ready fires at once.
    '--set=monitoring.prometheusRule.downtimeTargetSeconds=0.005',
    '--set=monitoring.prometheusRule.nodeNotReadyFor=1s',
  );
  const objects = parseAllDocuments(rendered).map(
    (doc) =>
      doc.toJS() as { kind?: string; spec?: { groups: RuleGroup[] }; data?: Record<string, string> } | null,
  );
  const rule = objects.find((o) => o?.kind === 'PrometheusRule');
  const configMap = objects.find((o) => o?.kind === 'ConfigMap' && o.data?.['tern.json']);
  return { groups: rule!.spec!.groups, dashboard: configMap!.data!['tern.json']! };
}

beforeAll(async () => {
  requirePrometheus();
  startedAt = Date.now();
  work = await mkdtemp(join(tmpdir(), 'tmon-'));
  await letQemuUserThrough(work);
  const { groups, dashboard } = await renderMonitoring();
  rulesFile = join(work, 'rules.yaml');
  ruleGroups = groups;
  await writeFile(rulesFile, stringify({ groups }));
  const panels = (JSON.parse(dashboard) as { panels: { title: string; targets?: { expr: string }[] }[] })
    .panels;
  dashboardQueries = panels.flatMap((p) => (p.targets ?? []).map(({ expr }) => ({ panel: p.title, expr })));

  [cp, images] = await Promise.all([startControlPlane({ name: 'monitoring' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  for (const node of NODES) {
    daemons.push(
      await startDaemonProcess(
        testDaemonArgs({
          node,
          certs,
          stateDir: join(work, node),
          imagesRoot: images.root,
          kubeconfig: cp.kubeconfigPath,
          leaseDurationSeconds: 6,
        }).concat(qemuUserArgs()),
      ),
    );
  }
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--migration-progress-interval-ms', '500'],
  ]);
  // Scraped from before the migration, as a Prometheus would be: counters are seen rising from 0.
  prometheus = await startPrometheus({
    dir: join(work, 'prometheus'),
    interval: '1s',
    ruleFiles: [rulesFile],
    jobs: {
      'tern-operator': [`127.0.0.1:${operator.metricsPort}`],
      'tern-hypervisor-node': daemons.map((daemon) => `127.0.0.1:${daemon.metricsPort}`),
    },
  });
  for (const node of NODES) {
    await eventually(`${node} Ready`, async () => {
      const hvn = await getJson<HypervisorNode>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });
  }
  // A scrape of each target before anything happens, as a Prometheus that has long been running has one.
  await eventually(
    'a first scrape of every target',
    async () => ((await prometheus.query('up == 1')).length === 3 ? true : undefined),
    30_000,
    250,
  );
  await apply(testGuestVm(VM, images));
  await eventually(
    'VM Running',
    async () =>
      (await getJson<VirtualMachine>('virtualmachine', VM)).status?.phase === 'Running' ? true : undefined,
    120_000,
  );
}, 240_000);

afterAll(async () => {
  await prometheus?.stop();
  await operator?.stop();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(join(work, node));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

test('promtool check rules accepts the rendered PrometheusRule groups', async () => {
  const { stdout } = await run(PROMTOOL, ['check', 'rules', rulesFile]);
  expect(stdout).toMatch(/SUCCESS: 5 rules found/);
});

const finished = (name: string) =>
  eventually(
    `${name} finished`,
    async () => {
      const migration = await getJson<Migration>('migration', name);
      return ['Succeeded', 'Failed', 'Aborted'].includes(migration.status?.phase ?? '')
        ? migration
        : undefined;
    },
    150_000,
    250,
  );

interface PromRule {
  name: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
  state?: string;
  alerts?: { labels: Record<string, string>; state: string }[];
}

test('after a real migration every dashboard query returns data, every rule evaluates, and the alerts fire', async () => {
  // A failure (VMNotFound) for TernMigrationFailed, a HypervisorNode without a daemon for TernHypervisorNodeNotReady.
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'of-nothing', namespace: 'default' },
    spec: { vmName: 'absent' },
  });
  await apply({ apiVersion: 'tern.dev/v1alpha1', kind: 'HypervisorNode', metadata: { name: 'node-gone' } });
  // The real migration, its bandwidth capped so that the copy spans several scrapes of the live gauges.
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'watched', namespace: 'default' },
    spec: { vmName: VM, overrides: { bandwidth: '4Mi' } },
  });
  expect((await finished('of-nothing')).status?.failureReason).toBe('VMNotFound');
  const done = await finished('watched');
  expect(done.status?.phase).toBe('Succeeded');
  // A scrape after it: the operator's counter has it.
  await eventually(
    'the finished migration scraped',
    async () => {
      const [series] = await prometheus.query('sum(tern_migrations_finished_total{result="Succeeded"})');
      return Number(series?.value?.[1]) >= 1 ? true : undefined;
    },
    30_000,
    500,
  );

  // Every panel query, as Grafana runs it over the time since the test began, with a few scrapes after that one
  // (the last 1 s step of a range query may fall before the sample that showed it).
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const end = Date.now();
  const rangeSeconds = Math.ceil((end - startedAt) / 1000) + 60;
  const empty: string[] = [];
  const results = new Map<string, number>();
  for (const { panel, expr } of dashboardQueries) {
    const concrete = expr.replaceAll('$__range', `${rangeSeconds}s`).replaceAll('$__rate_interval', '10s');
    const series = await prometheus.queryRange(concrete, startedAt, end, 1);
    const points = series.flatMap((s) => s.values ?? []);
    if (points.length === 0) empty.push(`${panel}: ${expr}`);
    results.set(expr, Math.max(0, ...points.map(([, v]) => Number(v)).filter(Number.isFinite)));
  }
  expect(empty).toEqual([]);
  // The live gauges were scraped while the copy ran, and the first migration's outcomes show as increases.
  const largest = (start: string) =>
    Math.max(...[...results].filter(([expr]) => expr.startsWith(start)).map(([, value]) => value));
  expect(largest('sum by (node, guest) (tern_node_migration_throughput_bytes_per_second)')).toBeGreaterThan(
    0,
  );
  expect(largest('sum by (node, result) (increase(tern_node_migrations_outgoing_total')).toBeGreaterThan(0);
  expect(largest('sum by (node, result) (increase(tern_node_migrations_incoming_total')).toBeGreaterThan(0);
  expect(largest('sum by (phase) (increase(tern_migration_phase_duration_seconds_sum')).toBeGreaterThan(0);
  expect(largest('sum by (result) (round(increase(tern_migrations_finished_total')).toBeGreaterThan(0);
  console.log(
    `${dashboardQueries.length} dashboard queries over ${rangeSeconds} s; largest values: ` +
      [...results].map(([expr, v]) => `${expr.slice(0, 60)}… = ${v}`).join('; '),
  );

  // Every rule evaluated without error since the migration; the alerts it should raise fire.
  let seen: unknown;
  const firing = await eventually(
    'the expected alerts firing',
    async () => {
      const { groups } = await prometheus.api<{ groups: { rules: PromRule[] }[] }>('rules');
      const rules = groups.flatMap((group) => group.rules);
      const broken = rules.filter((rule) => rule.health !== 'ok');
      seen = rules.map(({ name, health, lastEvaluation, alerts }) => ({
        name,
        health,
        lastEvaluation,
        alerts,
      }));
      if (broken.length > 0) throw new Error(`rules not ok: ${JSON.stringify(broken)}`);
      if (rules.some((rule) => Date.parse(rule.lastEvaluation) < end)) return undefined;
      const active = rules.flatMap((rule) =>
        (rule.alerts ?? [])
          .filter((a) => a.state === 'firing')
          .map((a): Record<string, string> => ({ ...a.labels, alert: rule.name })),
      );
      const has = (alert: string, labels: Record<string, string> = {}) =>
        active.some((a) => a.alert === alert && Object.entries(labels).every(([k, v]) => a[k] === v));
      return has('TernMigrationFailed', { reason: 'VMNotFound' }) &&
        has('TernMigrationDowntimeAboveTarget') &&
        has('TernHypervisorNodeNotReady', { node: 'node-gone' })
        ? { rules, active }
        : undefined;
    },
    60_000,
    1_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; the rules last seen: ${JSON.stringify(seen)}`);
  });
  expect(firing.rules.map((rule) => rule.name).sort()).toEqual([
    'TernHypervisorNodeNotReady',
    'TernMigrationDowntimeAboveTarget',
    'TernMigrationFailed',
    'TernOperatorMetricsAbsent',
    'TernReconcileErrors',
  ]);
  // Nothing else: the nodes with daemons are Ready, the operator is scraped, no migration failed otherwise.
  expect(firing.active.map((a) => `${a.alert} ${a.node ?? ''}${a.reason ?? ''}`).sort()).toEqual([
    'TernHypervisorNodeNotReady node-gone',
    'TernMigrationDowntimeAboveTarget ',
    'TernMigrationFailed VMNotFound',
  ]);

  // TernOperatorMetricsAbsent's expression (its alert waits 10 minutes) once the operator is gone: its series go
  // stale at the first failed scrape.
  const absent = ruleGroups
    .flatMap((g) => g.rules)
    .find((r) => r.alert === 'TernOperatorMetricsAbsent')!.expr;
  expect(await prometheus.query(absent)).toEqual([]);
  expect(await operator.stop()).toBe(0);
  await eventually(
    `${absent} once the operator stopped`,
    async () => ((await prometheus.query(absent)).length === 1 ? true : undefined),
    30_000,
    500,
  );
}, 300_000);
