import type { KubeClient } from '../../../kube/client.js';
import { AlreadyExistsError, ConflictError, KubeApiError, NotFoundError } from '../../../kube/errors.js';
import type { KubeObject } from '../../../kube/types.js';
import { ManualClock } from './clock.js';
import { LeaderElector, NotLeadingError, type ElectionOutcome, type Lease } from './leader.js';

/** An in-memory Lease store with the apiserver's resourceVersion checks; `down` makes every call fail. */
class LeaseStore {
  lease: Lease | undefined;
  private rv = 0;
  down = new Set<string>();

  clientFor(identity: string): KubeClient {
    const check = () => {
      if (this.down.has(identity)) throw new KubeApiError(0, 'Timeout', 'apiserver unreachable');
    };
    const unsupported = () => {
      throw new Error('not used by the elector');
    };
    return {
      get: async <T extends KubeObject>() => {
        check();
        if (!this.lease) throw new NotFoundError(404, 'NotFound', 'no lease');
        return structuredClone(this.lease) as unknown as T;
      },
      create: async <T extends KubeObject>(_type: unknown, object: T) => {
        check();
        if (this.lease) throw new AlreadyExistsError(409, 'AlreadyExists', 'exists');
        this.lease = {
          ...structuredClone(object),
          metadata: { ...object.metadata, resourceVersion: String(++this.rv) },
        };
        return structuredClone(this.lease) as unknown as T;
      },
      replace: async <T extends KubeObject>(_type: unknown, object: T) => {
        check();
        if (object.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
          throw new ConflictError(409, 'Conflict', 'the object has been modified');
        }
        this.lease = {
          ...structuredClone(object),
          metadata: { ...object.metadata, resourceVersion: String(++this.rv) },
        };
        return structuredClone(this.lease) as unknown as T;
      },
      list: unsupported,
      watch: unsupported,
      replaceStatus: unsupported,
      patch: unsupported,
      delete: unsupported,
    };
  }
}

const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

function candidate(store: LeaseStore, clock: ManualClock, identity: string) {
  const elector = new LeaderElector(store.clientFor(identity), {
    namespace: 'ns',
    name: 'lease',
    identity,
    clock,
    ...timing,
  });
  const log: string[] = [];
  const stop = new AbortController();
  let outcome: ElectionOutcome | undefined;
  const done = elector
    .run(stop.signal, {
      onStartedLeading: () => log.push('started'),
      onStoppedLeading: () => void log.push('stopped'),
    })
    .then((o) => (outcome = o));
  return { elector, log, stop, done, outcome: () => outcome };
}

/** Advances the clock in small steps, letting the electors' promises run between steps. */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    clock.advance(50);
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

describe('LeaderElector', () => {
  test('one of two candidates leads; the other takes over only after the leader stops renewing for leaseDuration', async () => {
    const clock = new ManualClock(Date.parse('2026-11-28T10:00:00Z'));
    const store = new LeaseStore();
    const a = candidate(store, clock, 'a');
    await advance(clock, 100);
    const b = candidate(store, clock, 'b');
    await advance(clock, 5_000);
    expect(a.log).toEqual(['started']);
    expect(b.log).toEqual([]);
    expect(store.lease?.spec).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 3,
      leaseTransitions: 0,
    });
    expect(store.lease?.spec?.renewTime).toMatch(/^2026-11-28T10:00:0\d\.\d{6}Z$/); // MicroTime

    store.down.add('a'); // a is partitioned from the apiserver
    const cutAt = clock.now();
    let lostAfter: number | undefined;
    let acquiredAfter: number | undefined;
    for (let t = 0; t < 6_000 && acquiredAfter === undefined; t += 50) {
      await advance(clock, 50);
      if (lostAfter === undefined && a.outcome() === 'lost') lostAfter = clock.now() - cutAt;
      if (b.log.includes('started')) acquiredAfter = clock.now() - cutAt;
    }
    // a gives up within renewDeadline (+ one retry period), before b may acquire (leaseDuration after b last saw a change).
    expect(lostAfter).toBeGreaterThanOrEqual(1_500);
    expect(lostAfter).toBeLessThanOrEqual(2_500);
    expect(acquiredAfter).toBeGreaterThan(lostAfter!);
    expect(acquiredAfter).toBeGreaterThanOrEqual(2_500);
    // b saw a's last renewal up to one jittered retry period (≤ 600 ms) late, waits leaseDuration from then, and
    // tries again up to one more jittered period later; the loop observes in 50 ms steps.
    expect(acquiredAfter).toBeLessThanOrEqual(3_000 + 2 * 600 + 50);
    expect(a.log).toEqual(['started', 'stopped']);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    b.stop.abort();
    await b.done;
  });

  test('a graceful stop releases the lease and a standby acquires it on its next retry', async () => {
    const clock = new ManualClock(Date.parse('2026-11-28T10:00:00Z'));
    const store = new LeaseStore();
    const a = candidate(store, clock, 'a');
    await advance(clock, 100);
    const b = candidate(store, clock, 'b');
    await advance(clock, 2_000);
    a.stop.abort();
    await advance(clock, 50);
    expect(await a.done).toBe('stopped');
    expect(store.lease?.spec?.holderIdentity).toBe('');
    await advance(clock, 700);
    expect(b.log).toEqual(['started']);
    expect(b.elector.isLeader()).toBe(true);
    b.stop.abort();
    await b.done;
  });

  test('each leadership term has its own fencing token: leaseTransitions + 1 as the acquiring write left it', async () => {
    const clock = new ManualClock(Date.parse('2026-11-28T10:00:00Z'));
    const store = new LeaseStore();
    const a = candidate(store, clock, 'a');
    await advance(clock, 100);
    const b = candidate(store, clock, 'b');
    await advance(clock, 1_000);
    expect(a.elector.fencingToken()).toBe(1); // created with leaseTransitions 0
    expect(() => b.elector.fencingToken()).toThrow(NotLeadingError);
    a.stop.abort();
    await advance(clock, 1_000);
    expect(() => a.elector.fencingToken()).toThrow(NotLeadingError);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.elector.fencingToken()).toBe(2);
    expect(store.lease?.spec?.leaseTransitions).toBe(1);
    // The same identity in a second process (a restarted container whose predecessor still runs): a new term, so
    // the daemons fence the predecessor, which shares the name but keeps the old token.
    const b2 = candidate(store, clock, 'b');
    await advance(clock, 100);
    expect(b2.elector.fencingToken()).toBe(3);
    expect(b.elector.fencingToken()).toBe(2);
    b.stop.abort();
    b2.stop.abort();
    await advance(clock, 100);
    await Promise.all([b.done, b2.done]);
  });

  test('a leader paused past its renew deadline has no fencing token, before its renew loop notices', async () => {
    const clock = new ManualClock(Date.parse('2026-11-28T10:00:00Z'));
    const store = new LeaseStore();
    const a = candidate(store, clock, 'a');
    await advance(clock, 1_000);
    expect(a.elector.fencingToken()).toBe(1);
    // As after SIGSTOP: the clock jumped, and none of the elector's continuations has run yet.
    clock.advance(timing.renewDeadlineMs);
    expect(a.elector.isLeader()).toBe(true);
    expect(() => a.elector.fencingToken()).toThrow(/last renewed 2\d{3} ms ago \(renew deadline 2000 ms\)/);
    a.stop.abort();
    await advance(clock, 100);
    await a.done;
  });

  test('rejects timings that could let two leaders overlap', () => {
    const store = new LeaseStore();
    const options = { namespace: 'ns', name: 'l', identity: 'x' };
    expect(
      () =>
        new LeaderElector(store.clientFor('x'), {
          ...options,
          leaseDurationMs: 2_000,
          renewDeadlineMs: 2_000,
        }),
    ).toThrow(/retryPeriod < renewDeadline < leaseDuration/);
    expect(
      () => new LeaderElector(store.clientFor('x'), { ...options, ...timing, leaseDurationMs: 2_500 }),
    ).toThrow(/whole seconds/);
  });
});
