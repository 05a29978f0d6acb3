import type { Heartbeat } from '../../../../guest/host/agent-client.js';
import { switchoverGap } from './downtime.js';

function beats(firstSeq: number, wallMs: number[]): Heartbeat[] {
  return wallMs.map((w, i) => ({ seq: firstSeq + i, t: w - 1000, wallMs: w }));
}

test('the gap runs from the last source heartbeat to the first target heartbeat', () => {
  const source = beats(0, [1000, 1005, 1010, 1015]);
  const target = beats(12, [1090, 1095, 1100]);
  expect(switchoverGap(source, target)).toMatchObject({
    gapMs: 75,
    switchoverMs: 75,
    lastSourceBeat: { seq: 3, wallMs: 1015 },
    firstTargetBeat: { seq: 12, wallMs: 1090 },
    lostBeats: 8,
  });
});

test('a larger gap just before the switchover (guest throttled) counts, one outside the window does not', () => {
  const source = beats(0, [0, 1000, 1005, 1300, 1305]);
  const target = beats(5, [1340, 1345]);
  const gap = switchoverGap(source, target, 500);
  expect(gap.gapMs).toBe(295);
  expect(gap.switchoverMs).toBe(35);
  expect(gap.lostBeats).toBe(0);
});

test('source heartbeats after the target started are not part of the switchover', () => {
  const gap = switchoverGap(beats(0, [100, 105, 500]), beats(3, [150, 155]));
  expect(gap).toMatchObject({ switchoverMs: 45, lastSourceBeat: { seq: 1 } });
});

test('needs heartbeats on both sides', () => {
  expect(() => switchoverGap(beats(0, [1, 2]), [])).toThrow('no heartbeat arrived from the target');
  expect(() => switchoverGap(beats(0, [10]), beats(1, [5]))).toThrow('no heartbeat arrived from the source');
});
