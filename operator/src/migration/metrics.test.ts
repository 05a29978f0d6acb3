import { Registry } from 'prom-client';
import { MigrationMetrics } from './metrics.js';

test('the series the chart’s alerts count increases of exist at 0 before the first migration finishes', async () => {
  const registry = new Registry();
  new MigrationMetrics(registry, () => []);
  const lines = (await registry.metrics()).split('\n');
  expect(lines).toEqual(
    expect.arrayContaining([
      'tern_migrations_finished_total{result="Succeeded",reason=""} 0',
      'tern_migrations_finished_total{result="Failed",reason="VMNotFound"} 0',
      'tern_migrations_finished_total{result="Aborted",reason="Cancelled"} 0',
      'tern_migration_downtime_seconds_count{source="qemu"} 0',
      'tern_migration_downtime_seconds_bucket{le="1",source="qemu"} 0',
      'tern_migration_phase_duration_seconds_count{phase="Copying"} 0',
    ]),
  );
  expect(lines).not.toContain('tern_migrations_finished_total{result="Failed",reason="Cancelled"} 0');
});
