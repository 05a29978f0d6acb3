import { qmpTimestampUs, wallClockUs } from './wall-clock.js';

test('wallClockUs stays within the millisecond Date.now() reports and never runs backwards between reads', () => {
  // Many reads (the edge of a millisecond is rare), checked without expect() in the loop to keep it fast.
  const violations: string[] = [];
  let last = 0;
  for (let i = 0; i < 200_000 && violations.length < 5; i++) {
    const before = Date.now();
    const us = wallClockUs();
    const after = Date.now();
    if (us < before * 1000) violations.push(`${us} before Date.now() ${before} ms`);
    if (us >= (after + 1) * 1000) violations.push(`${us} after Date.now() ${after} ms`);
    if (us < last - 1000) violations.push(`${us} ran back from ${last}`);
    if (!Number.isInteger(us)) violations.push(`${us} is not whole microseconds`);
    last = us;
  }
  expect(violations).toEqual([]);
});

test("a QMP event's timestamp in µs", () => {
  expect(qmpTimestampUs({ seconds: 1_800_000_000, microseconds: 123_456 })).toBe(1_800_000_000_123_456);
});
