// The wall clock both sides of the switchover timeline stamp with (the daemons' steps, the operator's, and the
// daemons' ReadClock answers), in microseconds since the epoch. Date.now() has whole milliseconds only; QMP's event
// timestamps have microseconds. performance.now() is finer but monotonic: it drifts from the wall clock when NTP
// slews it. So the fine reading is kept within the millisecond Date.now() reports, corrected by the least step
// whenever it leaves it.
let base = performance.timeOrigin;

/** The wall clock (CLOCK_REALTIME) in microseconds since the epoch, at sub-millisecond resolution. */
export function wallClockUs(): number {
  const coarse = Date.now();
  let fine = base + performance.now();
  if (fine < coarse) {
    base += coarse - fine;
    fine = coarse;
  } else if (fine >= coarse + 1) {
    const back = fine - (coarse + 0.999);
    base -= back;
    fine -= back;
  }
  return Math.round(fine * 1000);
}

/** A QMP event's timestamp (QEMU's wall clock at the event) in microseconds since the epoch. */
export function qmpTimestampUs(timestamp: { seconds: number; microseconds: number }): number {
  return timestamp.seconds * 1_000_000 + timestamp.microseconds;
}
