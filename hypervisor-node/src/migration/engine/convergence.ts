// The convergence policy: a pure function from the progress history, the policy and what has been done so far
// to the next action. QEMU itself never gives up on a pre-copy that does not converge (anchors-qemu.md §3.1),
// so the daemon escalates: raise the downtime target in steps, then throttle the guest (auto-converge), then
// switch to post-copy if allowed; it fails the migration at the completion or stall timeout.
import { downtimeRamp, type ResolvedMigrationPolicy } from './policy.js';
import { throughputBytesPerSec, type ProgressSample } from './progress.js';

/** What the engine has done so far; updated by the engine after each applied action. */
export interface ConvergenceState {
  /** Date.now() when the migration started. */
  startedAtMs: number;
  /** The downtime-limit QEMU currently has. */
  downtimeLimitMs: number;
  /** The current ceiling of the vCPU throttle; 0 while throttling has not been raised. */
  cpuThrottleCeiling: number;
  postCopyStarted: boolean;
  /** Round during which the last action was applied; 0 before any. */
  lastActionRound: number;
  /** Date.now() of the last action; 0 before any. */
  lastActionAtMs: number;
}

export type ConvergenceDecision =
  | { action: 'none'; reason: string }
  | { action: 'raise-downtime'; downtimeLimitMs: number; reason: string }
  | { action: 'raise-throttle'; cpuThrottleCeiling: number; reason: string }
  | { action: 'start-postcopy'; reason: string }
  | { action: 'abort'; cause: 'Timeout' | 'Stalled'; reason: string };

export interface ConvergenceInput {
  policy: ResolvedMigrationPolicy;
  /** Guest memory, for the completion budget. */
  memoryBytes: number;
  /** Every progress sample so far, oldest first. */
  history: readonly ProgressSample[];
  state: ConvergenceState;
  nowMs: number;
}

/** One pass over memory, summarised: the dirty set is the largest `remaining` seen in the round. */
export interface RoundSummary {
  round: number;
  dirtyBytes: number;
  firstAtMs: number;
  /** Dirty rate and throughput of the round's last sample. */
  dirtyRateBytesPerSec: number;
  throughputBytesPerSec: number;
  expectedDowntimeMs: number;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** A round's dirty set must be this much (fraction) below the reference to count: dirty sets jitter by ~1%. */
export const MIN_SHRINK = 0.05;

export function summariseRounds(history: readonly ProgressSample[]): RoundSummary[] {
  const rounds: RoundSummary[] = [];
  for (const sample of history) {
    if (sample.round < 1) continue;
    let last = rounds.at(-1);
    if (last === undefined || last.round !== sample.round) {
      last = {
        round: sample.round,
        dirtyBytes: 0,
        firstAtMs: sample.atMs,
        dirtyRateBytesPerSec: 0,
        throughputBytesPerSec: 0,
        expectedDowntimeMs: 0,
      };
      rounds.push(last);
    }
    last.dirtyBytes = Math.max(last.dirtyBytes, sample.remainingBytes);
    last.dirtyRateBytesPerSec = sample.dirtyRateBytesPerSec;
    if (sample.throughputMbps > 0) last.throughputBytesPerSec = throughputBytesPerSec(sample);
    if (sample.expectedDowntimeMs > 0) last.expectedDowntimeMs = sample.expectedDowntimeMs;
  }
  return rounds;
}

/** Completion budget: completionTimeoutPerGiBSeconds × guest memory in GiB. */
export function completionTimeoutMs(policy: ResolvedMigrationPolicy, memoryBytes: number): number {
  return Math.round(policy.completionTimeoutPerGiBSeconds * 1000 * (memoryBytes / GiB));
}

/**
 * When the migration last made progress: the first round's remaining reaching a new low (the bulk copy moving),
 * a later round whose dirty set is clearly (MIN_SHRINK) below every earlier round's, or a convergence action (which deserves a
 * chance to work). The start counts as progress.
 */
export function lastProgressAtMs(history: readonly ProgressSample[], state: ConvergenceState): number {
  let at = state.startedAtMs;
  let bulkLow = Infinity;
  for (const sample of history) {
    if (sample.round === 1 && sample.remainingBytes < bulkLow) {
      bulkLow = sample.remainingBytes;
      at = sample.atMs;
    }
  }
  let roundLow = Infinity;
  for (const round of summariseRounds(history)) {
    if (round.round < 2) continue;
    if (round.dirtyBytes < roundLow * (1 - MIN_SHRINK)) {
      roundLow = round.dirtyBytes;
      at = Math.max(at, round.firstAtMs);
    }
  }
  return Math.max(at, state.lastActionAtMs);
}

/**
 * Whether rounds stopped shrinking: looks only at rounds after the last action (so an action gets stallRounds
 * rounds to show its effect) and answers with the evidence, or undefined while the migration is converging
 * or it is too early to tell.
 */
export function nonConvergence(
  rounds: readonly RoundSummary[],
  policy: ResolvedMigrationPolicy,
  state: ConvergenceState,
): string | undefined {
  const k = policy.stallRounds;
  const iterative = rounds.filter((r) => r.round >= 2);
  const sinceAction = iterative.filter((r) => r.round > state.lastActionRound);
  if (sinceAction.length < k) return undefined;
  const latest = sinceAction.at(-1)!;
  if (latest.throughputBytesPerSec > 0 && latest.dirtyRateBytesPerSec >= latest.throughputBytesPerSec) {
    return (
      `round ${latest.round}: dirty rate ${mib(latest.dirtyRateBytesPerSec)}/s ≥ throughput ` +
      `${mib(latest.throughputBytesPerSec)}/s`
    );
  }
  const window = iterative.slice(-(k + 1));
  if (window.length < k + 1) return undefined;
  const base = window[0]!;
  const lowest = Math.min(...window.slice(1).map((r) => r.dirtyBytes));
  if (lowest < base.dirtyBytes * (1 - MIN_SHRINK)) return undefined;
  return (
    `dirty set did not shrink by ${MIN_SHRINK * 100}% over ${k} round(s): round ${base.round} ` +
    `${mib(base.dirtyBytes)}, rounds ${window[1]!.round}..${latest.round} no lower than ${mib(lowest)}`
  );
}

export function decideConvergence(input: ConvergenceInput): ConvergenceDecision {
  const { policy, history, state, nowMs } = input;
  if (state.postCopyStarted) {
    return {
      action: 'none',
      reason: 'post-copy running: it completes on its own and cannot be aborted safely',
    };
  }
  const elapsedMs = nowMs - state.startedAtMs;
  const budgetMs = completionTimeoutMs(policy, input.memoryBytes);
  if (elapsedMs >= budgetMs) {
    return {
      action: 'abort',
      cause: 'Timeout',
      reason:
        `not completed within ${seconds(budgetMs)} (${policy.completionTimeoutPerGiBSeconds} s/GiB × ` +
        `${(input.memoryBytes / GiB).toFixed(2)} GiB)`,
    };
  }
  const stalledMs = nowMs - lastProgressAtMs(history, state);
  if (stalledMs >= policy.stallTimeoutSeconds * 1000) {
    return {
      action: 'abort',
      cause: 'Stalled',
      reason: `no progress for ${seconds(stalledMs)} (stall timeout ${policy.stallTimeoutSeconds} s)`,
    };
  }

  const rounds = summariseRounds(history);
  const evidence = nonConvergence(rounds, policy, state);
  if (evidence === undefined) return { action: 'none', reason: 'converging' };
  const latest = rounds.at(-1)!;

  if (state.downtimeLimitMs < policy.maxDowntimeMs) {
    // Skip ramp steps that cannot help: take the first step at or above what QEMU expects the freeze to take.
    const higher = downtimeRamp(policy).filter((step) => step > state.downtimeLimitMs);
    const next = higher.find((step) => step >= latest.expectedDowntimeMs) ?? policy.maxDowntimeMs;
    return {
      action: 'raise-downtime',
      downtimeLimitMs: next,
      reason:
        `${evidence}; expected downtime ${Math.round(latest.expectedDowntimeMs)} ms: raising the downtime ` +
        `target ${state.downtimeLimitMs} → ${next} ms (max ${policy.maxDowntimeMs} ms)`,
    };
  }
  if (policy.allowAutoConverge) {
    const next = policy.cpuThrottleSteps.find((step) => step > state.cpuThrottleCeiling);
    if (next !== undefined) {
      return {
        action: 'raise-throttle',
        cpuThrottleCeiling: next,
        reason:
          `${evidence} at the maximum downtime target ${policy.maxDowntimeMs} ms: throttling the guest's ` +
          `vCPUs up to ${next}%`,
      };
    }
  }
  if (policy.allowPostCopy) {
    const before = policy.allowAutoConverge ? ` and ${state.cpuThrottleCeiling}% vCPU throttle` : '';
    return {
      action: 'start-postcopy',
      reason: `${evidence} at downtime target ${state.downtimeLimitMs} ms${before}: switching to post-copy`,
    };
  }
  return {
    action: 'none',
    reason:
      `${evidence}; no convergence measure left: the migration fails at the completion timeout ` +
      `(${seconds(budgetMs - elapsedMs)} left) or the stall timeout`,
  };
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
