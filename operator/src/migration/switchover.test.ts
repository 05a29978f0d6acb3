import {
  assembleSwitchover,
  estimateOffset,
  measureClockOffset,
  type SwitchoverInput,
} from './switchover.js';

describe('estimateOffset', () => {
  it('keeps the reading with the shortest round trip: offset against its midpoint, error half its round trip', () => {
    expect(
      estimateOffset([
        { sentAtUs: 1_000, daemonUs: 6_000, receivedAtUs: 3_000 }, // rtt 2000
        { sentAtUs: 10_000, daemonUs: 15_300, receivedAtUs: 10_400 }, // rtt 400: midpoint 10_200
        { sentAtUs: 20_000, daemonUs: 20_000, receivedAtUs: 29_000 }, // rtt 9000
      ]),
    ).toEqual({ offsetUs: 5_100, errorUs: 200 });
  });

  it('ignores a reading whose clock went backwards, and has nothing to say without readings', () => {
    expect(estimateOffset([{ sentAtUs: 5, daemonUs: 0, receivedAtUs: 4 }])).toBeUndefined();
    expect(estimateOffset([])).toBeUndefined();
  });
});

describe('measureClockOffset', () => {
  it('takes the readings one after another and skips those that fail', async () => {
    let calls = 0;
    const offset = await measureClockOffset(async () => {
      calls++;
      if (calls % 2 === 0) throw new Error('UNAVAILABLE');
      // A daemon 40 ms ahead.
      return Math.round((performance.timeOrigin + performance.now()) * 1000) + 40_000;
    }, 6);
    expect(calls).toBe(6);
    expect(offset!.offsetUs).toBeGreaterThan(40_000 - offset!.errorUs - 2_000);
    expect(offset!.offsetUs).toBeLessThan(40_000 + offset!.errorUs + 2_000);
  });

  it('is undefined when the daemon cannot tell (an older daemon without ReadClock)', async () => {
    expect(await measureClockOffset(() => Promise.reject(new Error('UNIMPLEMENTED')), 3)).toBeUndefined();
  });
});

describe('assembleSwitchover', () => {
  const T = 1_800_000_000_000_000; // µs since the epoch
  const input: SwitchoverInput = {
    sourceNode: 'node-a',
    targetNode: 'node-b',
    // The source's clock is 2 ms ahead of the operator's, the target's 3 ms behind.
    sourceClock: { offsetUs: 2_000, errorUs: 150 },
    targetClock: { offsetUs: -3_000, errorUs: 250 },
    source: {
      pausedAtUnixUs: T + 2_000,
      continuedAtUnixUs: T + 12_000,
      completedAtUnixUs: T + 52_000,
      outcomeAtUnixUs: T + 60_000,
      quiescingAtUnixUs: T + 5_000,
      continueSentAtUnixUs: T + 11_000,
    },
    target: {
      loadedAtUnixUs: T + 45_000,
      resumeRequestedAtUnixUs: T + 77_000,
      resumedAtUnixUs: T + 80_500,
      firstFrameAtUnixUs: T + 81_500,
      firstFrameResolutionUs: 1_100,
      firstFrameNote: '',
      firstFramePending: false,
      framesBeforeResume: 5,
      framesSteeredAtUnixUs: T + 4_000,
    },
    outcomeReceivedAtUs: T + 65_000,
    ownershipRecordedAtUs: T + 79_000,
    resumeAcknowledgedAtUs: T + 86_000,
  };

  it("puts every step on the operator's clock, in the steps' order, as ms after the source's pause", () => {
    const timeline = assembleSwitchover(input)!;
    expect(timeline.steps.map((step) => [step.step, step.offsetMs, step.node])).toEqual([
      ['SourcePaused', 0, 'node-a'],
      ['SourceQuiescing', 3, 'node-a'],
      ['FramesSteered', 7, 'node-b'],
      ['ContinueSent', 9, 'node-a'],
      ['SourceContinued', 10, 'node-a'],
      ['TargetLoaded', 48, 'node-b'],
      ['SourceCompleted', 50, 'node-a'],
      ['OutcomeSent', 58, 'node-a'],
      ['OutcomeReceived', 65, undefined],
      ['OwnershipRecorded', 79, undefined],
      ['ResumeRequested', 80, 'node-b'],
      ['TargetResumed', 83.5, 'node-b'],
      ['FirstFrame', 84.5, 'node-b'],
      ['ResumeAcknowledged', 86, undefined],
    ]);
    expect(timeline.steps[0]!.at).toBe(new Date(T / 1000).toISOString());
    expect(timeline.clocks).toEqual([
      { node: 'node-a', offsetMs: 2, errorBoundMs: 0.15 },
      { node: 'node-b', offsetMs: -3, errorBoundMs: 0.25 },
    ]);
    expect(timeline.firstFrameResolutionMs).toBe(1.1);
    expect(timeline.framesBeforeResume).toBe(5);
    expect(timeline.note).toBeUndefined();
  });

  it('leaves out what is unknown and says why there is no first frame', () => {
    const timeline = assembleSwitchover({
      ...input,
      source: { ...input.source!, continuedAtUnixUs: 0 },
      target: {
        ...input.target!,
        firstFrameAtUnixUs: 0,
        firstFrameResolutionUs: 0,
        firstFrameNote: 'the guest has no tap',
      },
      ownershipRecordedAtUs: undefined,
    })!;
    const steps = timeline.steps.map((step) => step.step);
    expect(steps).not.toContain('SourceContinued');
    expect(steps).not.toContain('OwnershipRecorded');
    expect(steps).not.toContain('FirstFrame');
    expect(timeline.firstFrameResolutionMs).toBeUndefined();
    expect(timeline.note).toBe('no FirstFrame: the guest has no tap');
  });

  it("drops a daemon's steps whose clock could not be read, and has no timeline without the source's pause", () => {
    const timeline = assembleSwitchover({ ...input, targetClock: undefined })!;
    expect(timeline.steps.map((step) => step.step)).not.toContain('TargetResumed');
    expect(timeline.note).toContain('the clock of node-b could not be read');
    expect(timeline.clocks.map((clock) => clock.node)).toEqual(['node-a']);
    expect(assembleSwitchover({ ...input, sourceClock: undefined })).toBeUndefined();
    expect(assembleSwitchover({ ...input, source: { ...input.source!, pausedAtUnixUs: 0 } })).toBeUndefined();
  });
});
