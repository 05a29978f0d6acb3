import type { QmpMigrationInfo } from '../../qemu/qmp-client.js';
import { progressFromInfo, throughputBytesPerSec } from './progress.js';

// Captured from QEMU 10.0.2 (TCG) in round 3 of a migration limited to 20 MiB/s, with auto-converge throttling.
const ACTIVE: QmpMigrationInfo = JSON.parse(
  '{"expected-downtime":1592,"cpu-throttle-percentage":60,"status":"active","setup-time":1,"total-time":6279,' +
    '"ram":{"total":268967936,"postcopy-requests":0,"dirty-sync-count":3,"multifd-bytes":0,' +
    '"pages-per-second":5120,"downtime-bytes":0,"page-size":4096,"remaining":26910720,"postcopy-bytes":0,' +
    '"mbps":168.10128,"transferred":132655743,"dirty-sync-missed-zero-copy":0,"precopy-bytes":132654869,' +
    '"duplicate":43394,"dirty-pages-rate":5103,"normal-bytes":132005888,"normal":32228}}',
) as QmpMigrationInfo;

test('maps an active query-migrate reply', () => {
  expect(progressFromInfo(ACTIVE, 42)).toEqual({
    atMs: 42,
    status: 'active',
    round: 3,
    transferredBytes: 132655743,
    remainingBytes: 26910720,
    totalBytes: 268967936,
    dirtyRateBytesPerSec: 5103 * 4096,
    throughputMbps: 168.10128,
    expectedDowntimeMs: 1592,
    cpuThrottlePercent: 60,
    qemuTotalTimeMs: 6279,
  });
});

test('throughput in bytes/s from megabit/s', () => {
  expect(throughputBytesPerSec({ throughputMbps: 168.10128 })).toBeCloseTo(21_012_660, 0);
});

test('no sample while QEMU reports no RAM statistics (setup, cancelled, nothing yet)', () => {
  expect(progressFromInfo({ status: 'setup' }, 1)).toBeUndefined();
  expect(progressFromInfo({}, 1)).toBeUndefined();
});

test('fields QEMU leaves out in a state default to 0', () => {
  const info: QmpMigrationInfo = JSON.parse(
    '{"status":"completed","setup-time":1,"downtime":14,"total-time":355,"ram":{"total":268967936,' +
      '"postcopy-requests":0,"dirty-sync-count":3,"multifd-bytes":0,"pages-per-second":0,"page-size":4096,' +
      '"remaining":0,"postcopy-bytes":0,"mbps":1688.2,"transferred":75395483,"duplicate":50108,' +
      '"dirty-pages-rate":0,"normal-bytes":74776576,"normal":18256}}',
  ) as QmpMigrationInfo;
  expect(progressFromInfo(info, 7)).toMatchObject({
    status: 'completed',
    round: 3,
    remainingBytes: 0,
    expectedDowntimeMs: 0,
    cpuThrottlePercent: 0,
  });
});
