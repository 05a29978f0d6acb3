// The wall clock both sides of the switchover timeline stamp with (the daemons' steps, the operator's, and the
// daemons' ReadClock answers), in microseconds since the epoch. Date.now() has whole milliseconds only; QMP's event
// timestamps have microseconds. performance.now() is finer but monotonic: it drifts from the wall clock when NTP
// slews it. So the fine reading is kept within the millisecond Date.now() reports, corrected by the least step
// whenever it leaves it. All arithmetic is on whole microseconds (exact in a double up to 2^53 µs, the year 2255):
// clamping in fractional milliseconds rounded up into the next millisecond.
let correctionUs = 0;

/** The wall clock (CLOCK_REALTIME) in microseconds since the epoch, at sub-millisecond resolution. */
export function wallClockUs(): number {
  const coarseUs = Date.now() * 1000;
  const fineUs = Math.floor((performance.timeOrigin + performance.now()) * 1000) + correctionUs;
  if (fineUs < coarseUs) {
    correctionUs += coarseUs - fineUs;
    return coarseUs;
  }
  if (fineUs > coarseUs + 999) {
    correctionUs -= fineUs - (coarseUs + 999);
    return coarseUs + 999;
  }
  return fineUs;
}

/** A QMP event's timestamp (QEMU's wall clock at the event) in microseconds since the epoch. */
export function qmpTimestampUs(timestamp: { seconds: number; microseconds: number }): number {
  return timestamp.seconds * 1_000_000 + timestamp.microseconds;
}
