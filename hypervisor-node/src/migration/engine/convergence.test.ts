import {
  completionTimeoutMs,
  decideConvergence,
  lastProgressAtMs,
  nonConvergence,
  summariseRounds,
  type ConvergenceState,
} from './convergence.js';
import { resolveMigrationPolicy, type ResolvedMigrationPolicy } from './policy.js';
import type { ProgressSample } from './progress.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const T0 = 1_000_000;

function sample(
  atS: number,
  round: number,
  remainingMiB: number,
  extra: Partial<ProgressSample> = {},
): ProgressSample {
  return {
    atMs: T0 + atS * 1000,
    status: 'active',
    round,
    transferredBytes: 0,
    remainingBytes: remainingMiB * MiB,
    totalBytes: GiB,
    dirtyRateBytesPerSec: 10 * MiB,
    throughputMbps: 800, // 100 MB/s
    expectedDowntimeMs: 300,
    cpuThrottlePercent: 0,
    qemuTotalTimeMs: atS * 1000,
    ...extra,
  };
}

function state(over: Partial<ConvergenceState> = {}): ConvergenceState {
  return {
    startedAtMs: T0,
    downtimeLimitMs: 50,
    cpuThrottleCeiling: 0,
    postCopyStarted: false,
    lastActionRound: 0,
    lastActionAtMs: 0,
    ...over,
  };
}

/** Rounds 2.. whose dirty sets are given (MiB), one per second after a 1-round bulk copy. */
function rounds(dirty: number[], extra: Partial<ProgressSample> = {}): ProgressSample[] {
  const history = [sample(0, 1, 1024), sample(5, 1, 10)];
  dirty.forEach((mib, i) => {
    history.push(sample(6 + i, i + 2, mib, extra), sample(6.5 + i, i + 2, mib / 2, extra));
  });
  return history;
}

const policy: ResolvedMigrationPolicy = resolveMigrationPolicy({
  downtimeMs: 50,
  maxDowntimeMs: 1000,
  downtimeSteps: 4, // 50, 288, 525, 763, 1000
  stallRounds: 2,
  allowAutoConverge: true,
  cpuThrottleSteps: [30, 60, 99],
  allowPostCopy: true,
  completionTimeoutPerGiBSeconds: 100,
  stallTimeoutSeconds: 30,
});

function decide(history: ProgressSample[], st: ConvergenceState, nowS?: number, p = policy) {
  const nowMs = nowS === undefined ? history.at(-1)!.atMs : T0 + nowS * 1000;
  return decideConvergence({ policy: p, memoryBytes: GiB, history, state: st, nowMs });
}

describe('summariseRounds', () => {
  test('takes the largest remaining of each round as its dirty set and the last rates', () => {
    const summary = summariseRounds([
      sample(0, 1, 1000),
      sample(1, 1, 400),
      sample(2, 2, 80, { dirtyRateBytesPerSec: 5 * MiB }),
      sample(3, 2, 20, { dirtyRateBytesPerSec: 6 * MiB, throughputMbps: 0 }),
    ]);
    expect(summary).toEqual([
      expect.objectContaining({ round: 1, dirtyBytes: 1000 * MiB, firstAtMs: T0 }),
      expect.objectContaining({
        round: 2,
        dirtyBytes: 80 * MiB,
        firstAtMs: T0 + 2000,
        dirtyRateBytesPerSec: 6 * MiB,
        throughputBytesPerSec: 100e6, // a 0 mbps sample keeps the last measured throughput
      }),
    ]);
  });
});

describe('nonConvergence', () => {
  test('is silent while rounds shrink', () => {
    expect(nonConvergence(summariseRounds(rounds([64, 32, 16])), policy, state())).toBeUndefined();
  });

  test('is silent before stallRounds rounds after the last action', () => {
    expect(nonConvergence(summariseRounds(rounds([64])), policy, state())).toBeUndefined();
    expect(
      nonConvergence(summariseRounds(rounds([64, 64, 64, 64])), policy, state({ lastActionRound: 4 })),
    ).toBeUndefined();
  });

  test('names rounds that stopped shrinking', () => {
    expect(nonConvergence(summariseRounds(rounds([64, 64, 70])), policy, state())).toMatch(
      /dirty set did not shrink by 5% over 2 round\(s\): round 2 64\.0 MiB, rounds 3\.\.4 no lower than 64\.0 MiB/,
    );
  });

  test('treats a shrink below 5% as jitter, not progress', () => {
    expect(nonConvergence(summariseRounds(rounds([64, 62, 61.5])), policy, state())).toMatch(
      /did not shrink/,
    );
    expect(nonConvergence(summariseRounds(rounds([64, 60, 62])), policy, state())).toBeUndefined();
  });

  test('names a dirty rate at or above the throughput', () => {
    const history = rounds([64, 32], { dirtyRateBytesPerSec: 100e6 });
    expect(nonConvergence(summariseRounds(history), policy, state())).toMatch(
      /round 3: dirty rate 95\.4 MiB\/s ≥ throughput 95\.4 MiB\/s/,
    );
  });
});

describe('decideConvergence', () => {
  test('does nothing while the migration converges', () => {
    expect(decide(rounds([64, 32, 16]), state())).toEqual({ action: 'none', reason: 'converging' });
  });

  test('raises the downtime target to the first ramp step covering the expected downtime', () => {
    const decision = decide(rounds([64, 64, 64], { expectedDowntimeMs: 400 }), state());
    expect(decision).toMatchObject({ action: 'raise-downtime', downtimeLimitMs: 525 });
    expect(decision.reason).toMatch(/expected downtime 400 ms: raising the downtime target 50 → 525 ms/);
  });

  test('goes straight to the maximum when no step covers the expected downtime', () => {
    const decision = decide(rounds([64, 64, 64], { expectedDowntimeMs: 5000 }), state());
    expect(decision).toMatchObject({ action: 'raise-downtime', downtimeLimitMs: 1000 });
  });

  test('takes the next step above the current target when QEMU has no estimate', () => {
    const decision = decide(rounds([64, 64, 64], { expectedDowntimeMs: 0 }), state({ downtimeLimitMs: 288 }));
    expect(decision).toMatchObject({ action: 'raise-downtime', downtimeLimitMs: 525 });
  });

  test('throttles the guest through the steps once the downtime target is at its maximum', () => {
    const history = rounds([64, 64, 64, 64, 64]);
    expect(decide(history, state({ downtimeLimitMs: 1000, lastActionRound: 3 }))).toMatchObject({
      action: 'raise-throttle',
      cpuThrottleCeiling: 30,
    });
    const next = decide(
      history,
      state({ downtimeLimitMs: 1000, cpuThrottleCeiling: 30, lastActionRound: 3 }),
    );
    expect(next).toMatchObject({ action: 'raise-throttle', cpuThrottleCeiling: 60 });
    expect(next.reason).toMatch(
      /at the maximum downtime target 1000 ms: throttling the guest's vCPUs up to 60%/,
    );
  });

  test('switches to post-copy when throttling is exhausted', () => {
    const decision = decide(rounds([64, 64, 64]), state({ downtimeLimitMs: 1000, cpuThrottleCeiling: 99 }));
    expect(decision).toMatchObject({ action: 'start-postcopy' });
    expect(decision.reason).toMatch(
      /at downtime target 1000 ms and 99% vCPU throttle: switching to post-copy/,
    );
  });

  test('switches to post-copy right after the downtime ramp when auto-converge is not allowed', () => {
    const p = { ...policy, allowAutoConverge: false };
    const decision = decide(rounds([64, 64, 64]), state({ downtimeLimitMs: 1000 }), undefined, p);
    expect(decision).toMatchObject({ action: 'start-postcopy' });
  });

  test('waits for the timeouts when no measure is left', () => {
    const p = { ...policy, allowAutoConverge: false, allowPostCopy: false };
    const decision = decide(rounds([64, 64, 64]), state({ downtimeLimitMs: 1000 }), undefined, p);
    expect(decision.action).toBe('none');
    expect(decision.reason).toMatch(
      /no convergence measure left: the migration fails at the completion timeout/,
    );
  });

  test('aborts at the completion timeout (per GiB of memory)', () => {
    expect(completionTimeoutMs(policy, GiB / 4)).toBe(25_000);
    const decision = decide(rounds([64, 32, 16]), state(), 100);
    expect(decision).toEqual({
      action: 'abort',
      cause: 'Timeout',
      reason: 'not completed within 100.0 s (100 s/GiB × 1.00 GiB)',
    });
  });

  test('aborts at the stall timeout when the dirty set has not reached a new low', () => {
    // Rounds 2..4 at 6..8 s; no new low after round 2 (6 s), so the stall clock runs from there.
    const history = rounds([64, 64, 64]);
    expect(decide(history, state({ downtimeLimitMs: 1000, cpuThrottleCeiling: 99 }), 35).action).not.toBe(
      'abort',
    );
    const decision = decide(history, state({ downtimeLimitMs: 1000, cpuThrottleCeiling: 99 }), 36);
    expect(decision).toEqual({
      action: 'abort',
      cause: 'Stalled',
      reason: 'no progress for 30.0 s (stall timeout 30 s)',
    });
  });

  test('a convergence action restarts the stall clock', () => {
    const history = rounds([64, 64, 64]);
    const st = state({ downtimeLimitMs: 1000, lastActionRound: 4, lastActionAtMs: T0 + 20_000 });
    expect(decide(history, st, 45).action).not.toBe('abort');
  });

  test('never aborts or acts once post-copy runs', () => {
    const decision = decide(rounds([64, 64, 64]), state({ postCopyStarted: true }), 500);
    expect(decision.action).toBe('none');
    expect(decision.reason).toMatch(/post-copy running/);
  });
});

describe('lastProgressAtMs', () => {
  test('follows the bulk copy in round 1 and new lows of later rounds', () => {
    const history = [
      sample(0, 1, 1000),
      sample(3, 1, 500),
      sample(4, 1, 600),
      sample(5, 2, 100),
      sample(6, 3, 120),
    ];
    expect(lastProgressAtMs(history, state())).toBe(T0 + 5000);
    expect(lastProgressAtMs(history.slice(0, 3), state())).toBe(T0 + 3000);
    expect(lastProgressAtMs([], state())).toBe(T0);
  });
});
