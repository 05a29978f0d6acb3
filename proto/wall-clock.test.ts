import { qmpTimestampUs, wallClockUs } from './wall-clock.js';

test('wallClockUs stays within the millisecond Date.now() reports and never runs backwards between reads', () => {
  let last = 0;
  for (let i = 0; i < 2_000; i++) {
    const before = Date.now();
    const us = wallClockUs();
    const after = Date.now();
    expect(us).toBeGreaterThanOrEqual(before * 1000);
    expect(us).toBeLessThan((after + 1) * 1000);
    expect(us).toBeGreaterThanOrEqual(last - 1000);
    last = us;
  }
});

test("a QMP event's timestamp in µs", () => {
  expect(qmpTimestampUs({ seconds: 1_800_000_000, microseconds: 123_456 })).toBe(1_800_000_000_123_456);
});
