// The switchover timeline (docs/monitoring.md "The switchover timeline"): the steps from the source's pause to the
// target running the guest, each stamped where it happens (QMP's event timestamps on the nodes, the operator's own
// clock for its steps), all put on the operator's clock. Each daemon's clock offset is measured NTP-style on its
// existing connection: ReadClock's answer against the midpoint of the call's round trip, the reading with the
// shortest round trip kept; the offset is then off by at most half that round trip.
import type {
  MigrationSwitchover,
  SwitchoverClock,
  SwitchoverStep,
  SwitchoverStepName,
} from '../../../crds/index.js';
import { SWITCHOVER_STEPS } from '../../../crds/index.js';
import type { SourceSwitchover__Output, TargetSwitchover__Output } from '../../../proto/index.js';
import { wallClockUs } from '../../../proto/index.js';

/** One ReadClock: the operator's clock when it was sent and answered, and the daemon's reading (µs). */
export interface ClockSample {
  sentAtUs: number;
  daemonUs: number;
  receivedAtUs: number;
}

/** A daemon's clock against the operator's: daemon − operator, within ± errorUs. */
export interface ClockOffset {
  offsetUs: number;
  errorUs: number;
}

/** The sample with the shortest round trip; undefined without samples. */
export function estimateOffset(samples: readonly ClockSample[]): ClockOffset | undefined {
  let best: ClockSample | undefined;
  for (const sample of samples) {
    if (sample.receivedAtUs < sample.sentAtUs) continue;
    if (best === undefined || rtt(sample) < rtt(best)) best = sample;
  }
  if (best === undefined) return undefined;
  return {
    offsetUs: best.daemonUs - (best.sentAtUs + best.receivedAtUs) / 2,
    errorUs: rtt(best) / 2,
  };
}

const rtt = (sample: ClockSample): number => sample.receivedAtUs - sample.sentAtUs;

/** Readings taken per daemon; the shortest round trip among them wins. */
export const CLOCK_SAMPLES = 8;

/** Reads a daemon's clock `count` times in a row (a failed reading is skipped) and estimates its offset. */
export async function measureClockOffset(
  readClock: () => Promise<number>,
  count = CLOCK_SAMPLES,
): Promise<ClockOffset | undefined> {
  const samples: ClockSample[] = [];
  for (let i = 0; i < count; i++) {
    const sentAtUs = wallClockUs();
    try {
      const daemonUs = await readClock();
      samples.push({ sentAtUs, daemonUs, receivedAtUs: wallClockUs() });
    } catch {
      // An older daemon (no ReadClock) or a lost call: fewer samples, or none.
    }
  }
  return estimateOffset(samples);
}

/** What the timeline is assembled from; every time in µs since the epoch, 0 or undefined when not known. */
export interface SwitchoverInput {
  sourceNode: string;
  targetNode: string;
  source: SourceSwitchover__Output | null | undefined;
  target: TargetSwitchover__Output | null | undefined;
  sourceClock: ClockOffset | undefined;
  targetClock: ClockOffset | undefined;
  /** The operator's own steps. */
  outcomeReceivedAtUs?: number;
  ownershipRecordedAtUs?: number;
  resumeAcknowledgedAtUs?: number;
  /** A note of the caller's (e.g. that the target ran the guest while post-copy went on). */
  note?: string;
}

const round2 = (value: number): number => Math.round(value * 100) / 100;

/**
 * The timeline for Migration.status.switchover, or undefined without the source's pause (or its clock): the steps
 * converted to the operator's clock, ordered by the canonical order of SWITCHOVER_STEPS (the order they normally
 * happen in: a clock error larger than the gap between two steps must not reorder them in the listing), with
 * their offsets from the pause.
 */
export function assembleSwitchover(input: SwitchoverInput): MigrationSwitchover | undefined {
  const { source, target, sourceClock, targetClock } = input;
  const notes: string[] = input.note !== undefined ? [input.note] : [];
  const stamped = new Map<SwitchoverStepName, { atUs: number; node?: string }>();
  const fromNode = (step: SwitchoverStepName, us: number | undefined, node: string, clock?: ClockOffset) => {
    if (!us || clock === undefined) return;
    stamped.set(step, { atUs: us - clock.offsetUs, node });
  };
  const fromOperator = (step: SwitchoverStepName, us: number | undefined) => {
    if (us) stamped.set(step, { atUs: us });
  };
  fromNode('SourcePaused', source?.pausedAtUnixUs, input.sourceNode, sourceClock);
  const paused = stamped.get('SourcePaused');
  if (paused === undefined) return undefined;
  fromNode('SourceQuiescing', source?.quiescingAtUnixUs, input.sourceNode, sourceClock);
  fromNode('ContinueSent', source?.continueSentAtUnixUs, input.sourceNode, sourceClock);
  fromNode('SourceContinued', source?.continuedAtUnixUs, input.sourceNode, sourceClock);
  fromNode('SourceCompleted', source?.completedAtUnixUs, input.sourceNode, sourceClock);
  fromNode('OutcomeSent', source?.outcomeAtUnixUs, input.sourceNode, sourceClock);
  fromOperator('OutcomeReceived', input.outcomeReceivedAtUs);
  fromOperator('OwnershipRecorded', input.ownershipRecordedAtUs);
  if (targetClock === undefined) notes.push(`the clock of ${input.targetNode} could not be read`);
  fromNode('FramesSteered', target?.framesSteeredAtUnixUs, input.targetNode, targetClock);
  fromNode('TargetLoaded', target?.loadedAtUnixUs, input.targetNode, targetClock);
  fromNode('ResumeRequested', target?.resumeRequestedAtUnixUs, input.targetNode, targetClock);
  fromNode('TargetResumed', target?.resumedAtUnixUs, input.targetNode, targetClock);
  fromNode('FirstFrame', target?.firstFrameAtUnixUs, input.targetNode, targetClock);
  fromOperator('ResumeAcknowledged', input.resumeAcknowledgedAtUs);
  if (target?.firstFrameNote) notes.push(`no FirstFrame: ${target.firstFrameNote}`);
  else if (target?.firstFramePending) notes.push('no FirstFrame: its watch was still open');
  const steps: SwitchoverStep[] = SWITCHOVER_STEPS.flatMap((step) => {
    const at = stamped.get(step);
    if (at === undefined) return [];
    return [
      {
        step,
        at: new Date(Math.round(at.atUs / 1000)).toISOString(),
        offsetMs: round2((at.atUs - paused.atUs) / 1000),
        ...(at.node !== undefined ? { node: at.node } : {}),
      },
    ];
  });
  const clocks: SwitchoverClock[] = [];
  const clock = (node: string, offset: ClockOffset | undefined) => {
    if (offset !== undefined && !clocks.some((known) => known.node === node))
      clocks.push({
        node,
        offsetMs: round2(offset.offsetUs / 1000),
        errorBoundMs: round2(offset.errorUs / 1000),
      });
  };
  clock(input.sourceNode, sourceClock);
  clock(input.targetNode, targetClock);
  return {
    steps,
    clocks,
    ...(stamped.has('FirstFrame') && target?.firstFrameResolutionUs
      ? { firstFrameResolutionMs: round2(target.firstFrameResolutionUs / 1000) }
      : {}),
    ...(target?.framesBeforeResume ? { framesBeforeResume: target.framesBeforeResume } : {}),
    ...(notes.length > 0 ? { note: notes.join('; ').slice(0, 1024) } : {}),
  };
}
