import { watchFirstFrame } from './first-frame.js';

// `lo` stands in for a tap: its counter file exists on every Linux host; the reads are the test's.
describe('watchFirstFrame', () => {
  it('reports the first read that saw the counter grow, and the interval since the read before it', async () => {
    let reads = 0;
    const counts = [10, 10, 10, 11];
    const watch = watchFirstFrame(['lo'], 2_000, () => counts[Math.min(reads++, counts.length - 1)]!);
    expect(watch.baseline).toBe(10);
    const frame = await watch.result;
    expect(frame).toMatchObject({ atUs: expect.any(Number), resolutionUs: expect.any(Number) });
    if (!('atUs' in frame)) throw new Error('no frame');
    expect(frame.resolutionUs).toBeGreaterThan(0);
    expect(frame.resolutionUs).toBeLessThan(1_000_000);
    expect(reads).toBe(4);
  });

  it('ends after its window without a frame, and says so', async () => {
    const frame = await watchFirstFrame(['lo'], 30, () => 7).result;
    expect(frame).toEqual({ note: 'no frame from the guest within 30 ms of its resume' });
  });

  it('needs a tap, and a readable counter', async () => {
    expect(await watchFirstFrame([]).result).toEqual({
      note: 'the guest has no tap (user-mode networking or no NIC)',
    });
    const missing = await watchFirstFrame(['tt-no-such-if']).result;
    expect('note' in missing && missing.note).toContain("the tap's counters cannot be read");
  });

  it('can be cancelled', async () => {
    const watch = watchFirstFrame(['lo'], 5_000, () => 1);
    watch.cancel();
    expect(await watch.result).toEqual({ note: 'the watch was cancelled' });
  });
});
