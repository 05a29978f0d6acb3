// Guest-perceived downtime: the largest gap between agent heartbeats, as received by the host, around the
// switchover. Heartbeats from the source QEMU stop when it pauses; the target's start when it resumes. Host
// wall-clock timestamps make the two clients (possibly in two daemons) comparable.
import type { Heartbeat } from '../../../../guest/host/agent-client.js';

export interface SwitchoverGap {
  /** Largest gap (ms) between consecutive heartbeats within windowMs of the switchover. */
  gapMs: number;
  /** The gap from the source's last heartbeat to the target's first. */
  switchoverMs: number;
  lastSourceBeat: Heartbeat;
  firstTargetBeat: Heartbeat;
  /** Heartbeats the guest sent that reached neither host (the sequence number is guest memory). */
  lostBeats: number;
}

export function switchoverGap(
  sourceBeats: readonly Heartbeat[],
  targetBeats: readonly Heartbeat[],
  windowMs = 1000,
): SwitchoverGap {
  const firstTargetBeat = targetBeats[0];
  if (firstTargetBeat === undefined) throw new Error('no heartbeat arrived from the target');
  const before = sourceBeats.filter((beat) => beat.wallMs < firstTargetBeat.wallMs);
  const lastSourceBeat = before.at(-1);
  if (lastSourceBeat === undefined) throw new Error('no heartbeat arrived from the source before the target');
  const from = lastSourceBeat.wallMs - windowMs;
  const to = firstTargetBeat.wallMs + windowMs;
  const merged = [...before, ...targetBeats].filter((beat) => beat.wallMs >= from && beat.wallMs <= to);
  let gapMs = 0;
  for (let i = 1; i < merged.length; i++) gapMs = Math.max(gapMs, merged[i]!.wallMs - merged[i - 1]!.wallMs);
  return {
    gapMs,
    switchoverMs: firstTargetBeat.wallMs - lastSourceBeat.wallMs,
    lastSourceBeat,
    firstTargetBeat,
    lostBeats: Math.max(0, firstTargetBeat.seq - lastSourceBeat.seq - 1),
  };
}
