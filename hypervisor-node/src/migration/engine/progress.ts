// Progress of a migration as Tern reports it, mapped from QEMU's query-migrate (MigrationInfo).
import type { QmpMigrationInfo, QmpMigrationStatus } from '../../qemu/qmp-client.js';

/** One query-migrate sample in Tern's units (not the Migration's status.progress in crds/). */
export interface ProgressSample {
  /** Date.now() when the sample was taken. */
  atMs: number;
  status: QmpMigrationStatus;
  /** Pass over guest memory: QEMU's dirty-sync-count (1 = the first full copy). */
  round: number;
  transferredBytes: number;
  /** Dirty bytes still to send (as of QEMU's last bitmap sync, minus what was sent since). */
  remainingBytes: number;
  /** Guest RAM size. */
  totalBytes: number;
  /** Guest dirty rate at the last bitmap sync: dirty-pages-rate × page size. */
  dirtyRateBytesPerSec: number;
  /** QEMU's measured send rate over its last ~100 ms window, megabit/s. */
  throughputMbps: number;
  /** Dirty bytes at the last sync ÷ measured bandwidth; 0 before QEMU has measured. */
  expectedDowntimeMs: number;
  /** Current auto-converge vCPU throttle, percent (0 = none). */
  cpuThrottlePercent: number;
  /** QEMU's total-time: ms since the migration started. */
  qemuTotalTimeMs: number;
  /** Local disks: bytes the mirrors copied so far, and the bytes to copy (both disks' lengths); unset without. */
  diskTransferredBytes?: number;
  diskTotalBytes?: number;
}

/** Bytes/s from QEMU's megabit/s. */
export function throughputBytesPerSec(progress: Pick<ProgressSample, 'throughputMbps'>): number {
  return (progress.throughputMbps * 1e6) / 8;
}

/** Maps a query-migrate reply to a progress sample; undefined while QEMU reports no RAM statistics yet. */
export function progressFromInfo(info: QmpMigrationInfo, atMs: number): ProgressSample | undefined {
  const ram = info.ram;
  if (info.status === undefined || ram === undefined) return undefined;
  const pageSize = ram['page-size'] > 0 ? ram['page-size'] : 4096;
  return {
    atMs,
    status: info.status,
    round: ram['dirty-sync-count'],
    transferredBytes: ram.transferred,
    remainingBytes: ram.remaining,
    totalBytes: ram.total,
    dirtyRateBytesPerSec: ram['dirty-pages-rate'] * pageSize,
    throughputMbps: ram.mbps,
    expectedDowntimeMs: info['expected-downtime'] ?? 0,
    cpuThrottlePercent: info['cpu-throttle-percentage'] ?? 0,
    qemuTotalTimeMs: info['total-time'] ?? 0,
  };
}
