import { Registry } from 'prom-client';
import type { SourceOutcome } from './engine/source.js';
import { NodeMigrationMetrics, type ActiveOutgoing } from './metrics.js';

const outcome = (overrides: Partial<SourceOutcome>): SourceOutcome => ({
  result: 'Completed',
  reason: 'done',
  phases: [
    { phase: 'Initializing', startedAtMs: 0, durationMs: 20 },
    { phase: 'Copying', startedAtMs: 20, durationMs: 3000 },
    { phase: 'Completed', startedAtMs: 3020, durationMs: 0 },
  ],
  durationMs: 3020,
  postCopy: false,
  decisions: [],
  transferredBytes: 1000,
  downtimeMs: 40,
  ...overrides,
});

test('counts outcomes by result and cause, bytes, downtime and phase durations, and shows live progress', async () => {
  const registry = new Registry();
  const active: ActiveOutgoing[] = [];
  const metrics = new NodeMigrationMetrics(registry, () => active);
  metrics.observeOutgoing(outcome({}));
  metrics.observeOutgoing(outcome({ result: 'Failed', cause: 'Timeout', transferredBytes: 500 }));
  metrics.observeIncoming('Loaded');
  active.push(
    { guest: 'vm1', latest: undefined },
    {
      guest: 'vm2',
      latest: {
        atMs: 0,
        status: 'active',
        round: 2,
        transferredBytes: 10,
        remainingBytes: 4096,
        totalBytes: 1 << 30,
        dirtyRateBytesPerSec: 8192,
        throughputMbps: 800,
        expectedDowntimeMs: 10,
        cpuThrottlePercent: 0,
        qemuTotalTimeMs: 100,
      },
    },
  );
  const text = await registry.metrics();
  expect(text).toContain('tern_node_migrations_outgoing_total{result="Completed",cause=""} 1');
  expect(text).toContain('tern_node_migrations_outgoing_total{result="Failed",cause="Timeout"} 1');
  expect(text).toContain('tern_node_migrations_incoming_total{result="Loaded"} 1');
  expect(text).toContain('tern_node_migration_transferred_bytes_total 1500');
  // Only the completed migration's downtime; terminal phases have no duration worth a bucket.
  expect(text).toContain('tern_node_migration_downtime_seconds_count 1');
  expect(text).toContain('tern_node_migration_phase_duration_seconds_count{phase="Copying"} 2');
  expect(text).not.toContain('phase="Completed"');
  expect(text).toContain('tern_node_migration_throughput_bytes_per_second{guest="vm2"} 100000000');
  expect(text).toContain('tern_node_migration_dirty_rate_bytes_per_second{guest="vm2"} 8192');
  expect(text).not.toContain('guest="vm1"');
});

test('the outcome series a dashboard plots increases of exist at 0 before the first migration', async () => {
  const registry = new Registry();
  new NodeMigrationMetrics(registry, () => []);
  const lines = (await registry.metrics()).split('\n');
  expect(lines).toEqual(
    expect.arrayContaining([
      'tern_node_migrations_outgoing_total{result="Completed",cause=""} 0',
      'tern_node_migrations_incoming_total{result="Loaded"} 0',
      'tern_node_migrations_incoming_total{result="Failed"} 0',
    ]),
  );
});
