// The Quiescing step's evidence (docs/disks.md "Quiescing"): QEMU has paused the guest at pre-switchover, and its
// vm_stop drained every in-flight request (bdrv_drain_all) and flushed every block node (bdrv_flush_all; a failed
// flush fails the migration before pre-switchover). The engine then completes the local disks' mirrors and, before
// it lets QEMU continue, proves that no guest request reached any disk since the pause: QEMU's per-device request
// counters (query-blockstats, which count the guest's requests as the device completes them) are sampled when the
// step begins and again at its end, and must not have moved. QEMU 10 has no QMP command that flushes a node by
// itself (blockdev-set-active inactivates: see docs/disks.md), so `flushed` means "flushed by QEMU's pause, and
// nothing written since".
import type { DiskStorage, GuestDefinition } from '../../model/guest.js';
import type { QmpClient } from '../../qemu/qmp-client.js';

/** One disk in the quiesce report. */
export interface QuiescedDisk {
  name: string;
  storage: DiskStorage;
  /** The guest's writes and flushes QEMU had completed on this disk when the step began (the guest paused). */
  writes: number;
  flushes: number;
  /** Completed between the pause and the step's end: 0 on a quiesced disk. */
  writesAfterPause: number;
  flushesAfterPause: number;
  /** Reads, discards, and failed or invalid requests of any kind between the pause and the step's end: 0. */
  otherAfterPause: number;
  /** A local disk's mirror concluded, so the target's copy is final; always false for a shared disk. */
  mirrorCompleted: boolean;
  /** QEMU's pause flushed it and no request reached it since (checked at the step's end). */
  flushed: boolean;
}

export interface QuiesceReport {
  /** From the start of the step (the pause seen) to its end (Freezing next, or the failure). */
  durationMs: number;
  disks: QuiescedDisk[];
  /** Why the step failed; absent when it succeeded. */
  error?: string;
}

/** The counters of one disk's device (query-blockstats `stats`), as far as the step reads them. */
export interface DiskCounters {
  rd_operations: number;
  wr_operations: number;
  flush_operations: number;
  unmap_operations: number;
  failed_rd_operations: number;
  failed_wr_operations: number;
  failed_flush_operations: number;
  failed_unmap_operations: number;
  invalid_rd_operations: number;
  invalid_wr_operations: number;
  invalid_flush_operations: number;
  invalid_unmap_operations: number;
}

const OTHER_COUNTERS = [
  'rd_operations',
  'unmap_operations',
  'failed_rd_operations',
  'failed_wr_operations',
  'failed_flush_operations',
  'failed_unmap_operations',
  'invalid_rd_operations',
  'invalid_wr_operations',
  'invalid_flush_operations',
  'invalid_unmap_operations',
] as const satisfies readonly (keyof DiskCounters)[];

interface BlockStatsEntry {
  qdev?: string;
  stats: DiskCounters;
}

/**
 * Whether `qdev` (query-blockstats) names the device of disk `index`: qemu/argv.ts gives it the id `vd<i>`; QEMU
 * reports a virtio-blk device's backend by its QOM path (/machine/peripheral/vd<i>/virtio-backend), an ide-hd by
 * its id.
 */
export function isDiskDevice(qdev: string | undefined, index: number): boolean {
  const id = `vd${index}`;
  return qdev === id || qdev?.startsWith(`/machine/peripheral/${id}/`) === true;
}

/** Each disk's device counters (by disk index); throws when a disk has no device in QEMU's answer. */
export async function sampleDiskCounters(
  qmp: QmpClient,
  spec: GuestDefinition,
): Promise<Map<number, DiskCounters>> {
  const entries = await qmp.execute<BlockStatsEntry[]>('query-blockstats');
  const counters = new Map<number, DiskCounters>();
  spec.disks.forEach((disk, index) => {
    const entry = entries.find((candidate) => isDiskDevice(candidate.qdev, index));
    if (entry === undefined)
      throw new Error(`QEMU reports no I/O counters for disk ${disk.name} (device vd${index})`);
    counters.set(index, entry.stats);
  });
  return counters;
}

/**
 * The report from the counters at the pause and at the step's end (`after` undefined: the end could not be read,
 * so nothing is proven flushed). `mirrored` holds the indices of the local disks whose mirror completed.
 */
export function quiesceReport(
  spec: GuestDefinition,
  before: Map<number, DiskCounters>,
  after: Map<number, DiskCounters> | undefined,
  mirrored: ReadonlySet<number>,
  durationMs: number,
): QuiesceReport {
  const disks = spec.disks.map((disk, index): QuiescedDisk => {
    const start = before.get(index)!;
    const end = after?.get(index);
    const moved = (key: keyof DiskCounters): number => (end === undefined ? 0 : end[key] - start[key]);
    const writesAfterPause = moved('wr_operations');
    const flushesAfterPause = moved('flush_operations');
    const otherAfterPause = OTHER_COUNTERS.reduce((sum, key) => sum + moved(key), 0);
    return {
      name: disk.name,
      storage: disk.storage,
      writes: start.wr_operations,
      flushes: start.flush_operations,
      writesAfterPause,
      flushesAfterPause,
      otherAfterPause,
      mirrorCompleted: mirrored.has(index),
      flushed: end !== undefined && writesAfterPause + flushesAfterPause + otherAfterPause === 0,
    };
  });
  return { durationMs, disks };
}

/** Why a report does not show a quiesced guest, or undefined when it does. */
export function quiesceFailure(report: QuiesceReport): string | undefined {
  const moved = report.disks.filter(
    (disk) => disk.writesAfterPause + disk.flushesAfterPause + disk.otherAfterPause > 0,
  );
  if (moved.length === 0) return undefined;
  const list = moved
    .map(
      (disk) =>
        `${disk.name} (${disk.writesAfterPause} writes, ${disk.flushesAfterPause} flushes, ${disk.otherAfterPause} other requests)`,
    )
    .join(', ');
  return `guest I/O reached the source's disks after QEMU paused the guest: ${list}`;
}
