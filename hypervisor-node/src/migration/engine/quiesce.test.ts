import type { DiskSpec, GuestDefinition } from '../../model/guest.js';
import type { QmpClient } from '../../qemu/qmp-client.js';
import {
  isDiskDevice,
  quiesceFailure,
  quiesceReport,
  sampleDiskCounters,
  type DiskCounters,
} from './quiesce.js';

const disk = (name: string, storage: 'local' | 'shared'): DiskSpec => ({
  name,
  path: `/images/default/${name}.img`,
  readOnly: false,
  bus: 'virtio',
  cache: 'writeback',
  io: 'threads',
  storage,
  boot: false,
});

const spec = { name: 'g', disks: [disk('data', 'local'), disk('log', 'shared')] } as GuestDefinition;

const counters = (wr: number, flush: number, extra: Partial<DiskCounters> = {}): DiskCounters => ({
  rd_operations: 7,
  wr_operations: wr,
  flush_operations: flush,
  unmap_operations: 0,
  failed_rd_operations: 0,
  failed_wr_operations: 0,
  failed_flush_operations: 0,
  failed_unmap_operations: 0,
  invalid_rd_operations: 0,
  invalid_wr_operations: 0,
  invalid_flush_operations: 0,
  invalid_unmap_operations: 0,
  ...extra,
});

describe('isDiskDevice', () => {
  it("matches a virtio-blk backend's QOM path and an ide-hd's id, never another disk's", () => {
    expect(isDiskDevice('/machine/peripheral/vd0/virtio-backend', 0)).toBe(true);
    expect(isDiskDevice('vd1', 1)).toBe(true);
    expect(isDiskDevice('/machine/peripheral/vd10/virtio-backend', 1)).toBe(false);
    expect(isDiskDevice('vd10', 1)).toBe(false);
    expect(isDiskDevice(undefined, 0)).toBe(false);
  });
});

describe('sampleDiskCounters', () => {
  it("reads each disk's device counters from query-blockstats, by device", async () => {
    const qmp = {
      execute: async () => [
        { qdev: 'vd1', stats: counters(3, 3) },
        { qdev: '/machine/peripheral/vd0/virtio-backend', stats: counters(10, 5) },
      ],
    } as unknown as QmpClient;
    const sampled = await sampleDiskCounters(qmp, spec);
    expect(sampled.get(0)?.wr_operations).toBe(10);
    expect(sampled.get(1)?.wr_operations).toBe(3);
  });

  it('refuses an answer without a device for every disk', async () => {
    const qmp = { execute: async () => [{ qdev: 'vd1', stats: counters(3, 3) }] } as unknown as QmpClient;
    await expect(sampleDiskCounters(qmp, spec)).rejects.toThrow(
      'QEMU reports no I/O counters for disk data (device vd0)',
    );
  });
});

describe('quiesceReport', () => {
  const before = new Map([
    [0, counters(10, 5)],
    [1, counters(3, 3)],
  ]);

  it('lists every disk with its counters at the pause; unchanged counters mean flushed', () => {
    const report = quiesceReport(spec, before, before, new Set([0]), 42);
    expect(report).toEqual({
      durationMs: 42,
      disks: [
        {
          name: 'data',
          storage: 'local',
          writes: 10,
          flushes: 5,
          writesAfterPause: 0,
          flushesAfterPause: 0,
          otherAfterPause: 0,
          mirrorCompleted: true,
          flushed: true,
        },
        {
          name: 'log',
          storage: 'shared',
          writes: 3,
          flushes: 3,
          writesAfterPause: 0,
          flushesAfterPause: 0,
          otherAfterPause: 0,
          mirrorCompleted: false,
          flushed: true,
        },
      ],
    });
    expect(quiesceFailure(report)).toBeUndefined();
  });

  it('a write, a flush or a failed request after the pause fails the step and names the disk', () => {
    const after = new Map([
      [0, counters(11, 6)],
      [1, counters(3, 3, { failed_wr_operations: 1, rd_operations: 8 })],
    ]);
    const report = quiesceReport(spec, before, after, new Set(), 5);
    expect(report.disks.map((d) => [d.writesAfterPause, d.flushesAfterPause, d.otherAfterPause])).toEqual([
      [1, 1, 0],
      [0, 0, 2],
    ]);
    expect(report.disks.map((d) => d.flushed)).toEqual([false, false]);
    expect(quiesceFailure(report)).toBe(
      "guest I/O reached the source's disks after QEMU paused the guest: data (1 writes, 1 flushes, 0 other " +
        'requests), log (0 writes, 0 flushes, 2 other requests)',
    );
  });

  it('without the end sample nothing is proven flushed', () => {
    const report = quiesceReport(spec, before, undefined, new Set(), 5);
    expect(report.disks.map((d) => d.flushed)).toEqual([false, false]);
  });
});
