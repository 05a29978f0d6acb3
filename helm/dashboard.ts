// The Grafana dashboard the chart ships (helm/tern/dashboards/tern.json, written by helm/generate.ts; the chart puts
// it in a ConfigMap for Grafana's sidecar when monitoring.dashboard.enabled). Every query uses only the metrics the
// operator (tern_migration*, tern_hypervisornode_*) and the daemons (tern_node_*) export;
// test/integration/monitoring.int.test.ts runs each one on a real Prometheus after a real migration. The operator's
// gauges are read on every replica (max over replicas); its counters by the replica that finishes a Migration.

type Json = { [key: string]: unknown };

interface Query {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'stat' | 'bargauge' | 'table';
  unit: string;
  queries: Query[];
  /** Width in Grafana's 24-column grid (default 12). */
  width?: number;
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

const q = (expr: string, legend: string): Query => ({ expr, legend });

const ROWS: { title: string; panels: PanelSpec[] }[] = [
  {
    title: 'Migrations',
    panels: [
      {
        title: 'Migrations finished in range, by result',
        description: 'Migrations that reached Succeeded, Failed or Aborted in the selected time range.',
        type: 'stat',
        unit: 'short',
        queries: [
          q('sum by (result) (round(increase(tern_migrations_finished_total[$__range])))', '{{result}}'),
        ],
        width: 8,
      },
      {
        title: 'Migrations finished, by result and reason',
        description: 'Finished migrations per interval; a failure shows its reason (status.failureReason).',
        type: 'timeseries',
        unit: 'short',
        queries: [
          q(
            'sum by (result, reason) (increase(tern_migrations_finished_total[$__rate_interval]))',
            '{{result}} {{reason}}',
          ),
        ],
        width: 8,
      },
      {
        title: 'Migrations by phase',
        description: 'Migrations that exist now, by phase (from the operator’s cache).',
        type: 'timeseries',
        unit: 'short',
        queries: [q('max by (phase) (tern_migrations)', '{{phase}}')],
        width: 8,
      },
    ],
  },
  {
    title: 'Downtime and phases',
    panels: [
      {
        title: 'Downtime histogram (in range)',
        description:
          'Succeeded migrations by downtime bucket: qemu is what the source QEMU reported, guest the pause-to-' +
          'resume gap the operator saw (QEMU downtime plus the hand-over).',
        type: 'bargauge',
        unit: 'short',
        queries: [
          q(
            'sum by (le) (round(increase(tern_migration_downtime_seconds_bucket{source="qemu"}[$__range])))',
            '≤ {{le}} s',
          ),
        ],
      },
      {
        title: 'Downtime p50 / p95',
        description: 'Quantiles of the downtime of migrations in the selected range.',
        type: 'timeseries',
        unit: 's',
        queries: [
          q(
            'histogram_quantile(0.5, sum by (le, source) (increase(tern_migration_downtime_seconds_bucket[$__range])))',
            'p50 {{source}}',
          ),
          q(
            'histogram_quantile(0.95, sum by (le, source) (increase(tern_migration_downtime_seconds_bucket[$__range])))',
            'p95 {{source}}',
          ),
        ],
      },
      {
        title: 'Mean phase duration',
        description: 'Mean time finished migrations spent in each phase (from status.phaseTimings).',
        type: 'bargauge',
        unit: 's',
        queries: [
          q(
            'sum by (phase) (increase(tern_migration_phase_duration_seconds_sum[$__range])) / ' +
              'sum by (phase) (increase(tern_migration_phase_duration_seconds_count[$__range]))',
            '{{phase}}',
          ),
        ],
      },
      {
        title: 'Phase duration p95',
        description: '95th percentile of each phase’s duration.',
        type: 'timeseries',
        unit: 's',
        queries: [
          q(
            'histogram_quantile(0.95, sum by (le, phase) (increase(tern_migration_phase_duration_seconds_bucket[$__range])))',
            '{{phase}}',
          ),
        ],
      },
    ],
  },
  {
    title: 'Migration traffic (source daemons)',
    panels: [
      {
        title: 'Throughput',
        description: 'QEMU’s send rate of each outgoing migration in flight, by source node and guest.',
        type: 'timeseries',
        unit: 'Bps',
        queries: [
          q('sum by (node, guest) (tern_node_migration_throughput_bytes_per_second)', '{{node}} {{guest}}'),
          q(
            'sum by (node) (rate(tern_node_migration_transferred_bytes_total[$__rate_interval]))',
            '{{node}} sent',
          ),
        ],
      },
      {
        title: 'Dirty rate and remaining memory',
        description:
          'How fast each migrating guest dirties its memory (it must stay below the throughput to converge), ' +
          'and the dirty memory still to send.',
        type: 'timeseries',
        unit: 'Bps',
        queries: [
          q(
            'sum by (node, guest) (tern_node_migration_dirty_rate_bytes_per_second)',
            'dirty {{node}} {{guest}}',
          ),
          q('sum by (node, guest) (tern_node_migration_remaining_bytes)', 'remaining {{node}} {{guest}}'),
        ],
      },
      {
        title: 'Outgoing and incoming migrations, by result',
        description:
          'Outcomes as each node’s daemon saw them (source: Completed/Failed/Aborted; target: Loaded...).',
        type: 'timeseries',
        unit: 'short',
        queries: [
          q(
            'sum by (node, result) (increase(tern_node_migrations_outgoing_total[$__rate_interval]))',
            'out {{node}} {{result}}',
          ),
          q(
            'sum by (node, result) (increase(tern_node_migrations_incoming_total[$__rate_interval]))',
            'in {{node}} {{result}}',
          ),
        ],
      },
    ],
  },
  {
    title: 'Nodes',
    panels: [
      {
        title: 'HypervisorNode Ready',
        description: '1: the node is Ready (its daemon reports, its Lease is renewed); 0: it is not.',
        type: 'stat',
        unit: 'short',
        queries: [
          q(
            'max by (node) (tern_hypervisornode_status_condition{condition="Ready",status="True"})',
            '{{node}}',
          ),
        ],
        width: 8,
      },
      {
        title: 'CPUs: requested / allocatable',
        description: 'What the VMs placed on each node request, and what guests may use there.',
        type: 'timeseries',
        unit: 'short',
        queries: [
          q('max by (node) (tern_hypervisornode_requested_cpus)', 'requested {{node}}'),
          q('max by (node) (tern_hypervisornode_allocatable_cpus)', 'allocatable {{node}}'),
          q('max by (node) (tern_hypervisornode_capacity_cpus)', 'capacity {{node}}'),
        ],
        width: 8,
      },
      {
        title: 'Memory: requested / allocatable',
        description: 'What the VMs placed on each node request, and what guests may use there.',
        type: 'timeseries',
        unit: 'bytes',
        queries: [
          q('max by (node) (tern_hypervisornode_requested_memory_bytes)', 'requested {{node}}'),
          q('max by (node) (tern_hypervisornode_allocatable_memory_bytes)', 'allocatable {{node}}'),
          q('max by (node) (tern_hypervisornode_capacity_memory_bytes)', 'capacity {{node}}'),
        ],
        width: 8,
      },
      {
        title: 'Guests per node, by phase',
        description: 'The guests each daemon runs (Running, Paused during a hand-over, ...).',
        type: 'timeseries',
        unit: 'short',
        queries: [q('sum by (node, phase) (tern_node_guests)', '{{node}} {{phase}}')],
        width: 24,
      },
    ],
  },
];

export function dashboard(): Json {
  const panels: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { x: 0, y, w: 24, h: 1 },
    });
    y += 1;
    let x = 0;
    for (const spec of row.panels) {
      const w = spec.width ?? 12;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      panels.push({
        id: id++,
        type: spec.type,
        title: spec.title,
        description: spec.description,
        datasource: DATASOURCE,
        gridPos: { x, y, w, h: 8 },
        fieldConfig: { defaults: { unit: spec.unit }, overrides: [] },
        options: spec.type === 'bargauge' ? { displayMode: 'gradient', orientation: 'horizontal' } : {},
        targets: spec.queries.map((query, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DATASOURCE,
          expr: query.expr,
          legendFormat: query.legend,
          ...(spec.type === 'stat' || spec.type === 'bargauge' ? { instant: true } : {}),
        })),
      });
      x += w;
    }
    y += 8;
  }
  return {
    title: 'Tern',
    uid: 'tern-overview',
    description: 'Tern migrations, downtime, migration traffic and hypervisor nodes.',
    tags: ['tern'],
    editable: true,
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
        },
      ],
    },
    panels,
  };
}
