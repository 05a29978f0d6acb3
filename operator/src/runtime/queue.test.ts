import { ManualClock } from './clock.js';
import { MAX_DELAY_MS, WorkQueue } from './queue.js';

const backoff = { baseMs: 100, maxMs: 1_000 };

function queue(clock = new ManualClock()) {
  return new WorkQueue<string>({ clock, backoff });
}

/** Resolves with the key if get() has one right now, or 'waiting' if it would block. */
async function poll(q: WorkQueue<string>): Promise<string | undefined> {
  return Promise.race([q.get(), new Promise<string>((resolve) => setImmediate(() => resolve('waiting')))]);
}

describe('WorkQueue', () => {
  test('a key added several times before it is taken is processed once, in first-add order', async () => {
    const q = queue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.done('a');
    q.done('b');
    expect(q.len()).toBe(0);
  });

  test('a key re-added while processing is not handed to a second worker, and runs again after done', async () => {
    const q = queue();
    q.add('a');
    const first = await q.get();
    expect(first).toBe('a');
    const secondWorker = q.get();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(await secondWorker).toBe('b'); // not 'a', which is still in progress
    expect(q.len()).toBe(0);
    q.done('a');
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    q.done('b');
    expect(await poll(q)).toBe('waiting');
  });

  test('a waiting worker receives a key as soon as it is added', async () => {
    const q = queue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
  });

  test('addRateLimited delays grow exponentially per key up to the cap, forget resets them', async () => {
    const clock = new ManualClock();
    const q = queue(clock);
    const observed: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      q.addRateLimited('a');
      let waited = 0;
      while (q.len() === 0) {
        clock.advance(10);
        waited += 10;
      }
      observed.push(waited);
      expect(await q.get()).toBe('a');
      q.done('a');
    }
    expect(observed).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.numRequeues('a')).toBe(6);
    expect(q.numRequeues('b')).toBe(0);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
    q.addRateLimited('a');
    clock.advance(99);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
  });

  test('addAfter keeps the earliest requested time and an immediate add does not wait for it', async () => {
    const clock = new ManualClock();
    const q = queue(clock);
    q.addAfter('a', 500);
    q.addAfter('a', 200);
    q.addAfter('a', 1_000);
    clock.advance(199);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    clock.advance(2_000);
    expect(q.len()).toBe(0); // the later requests were merged into the earliest

    q.addAfter('b', 300);
    q.add('b');
    expect(q.len()).toBe(1);
    clock.advance(300);
    expect(q.len()).toBe(1); // the delayed add found b still queued
    q.addAfter('c', 0);
    expect(q.len()).toBe(2);
  });

  test('addAfter waits at most MAX_DELAY_MS, and a delay that is not a positive number adds at once', () => {
    const clock = new ManualClock();
    const q = queue(clock);
    q.addAfter('far', 25 * 24 * 3600 * 1000); // past setTimeout's 2^31-1 ms, which would fire at once
    clock.advance(MAX_DELAY_MS - 1);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    q.addAfter('nan', Number.NaN);
    expect(q.len()).toBe(2);
  });

  test('shutDown wakes idle workers, drops queued and delayed keys, and waits for keys in progress', async () => {
    const clock = new ManualClock();
    const q = queue(clock);
    q.add('busy');
    expect(await q.get()).toBe('busy');
    const idleWorker = q.get();
    q.add('busy'); // dirty while processing: must not be handed out after shutdown
    q.addAfter('later', 100);
    let shutDownDone = false;
    const shutDown = q.shutDown().then(() => (shutDownDone = true));
    expect(await idleWorker).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
    q.add('new');
    expect(q.len()).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(shutDownDone).toBe(false);
    q.done('busy');
    await shutDown;
    expect(await q.get()).toBeUndefined();
  });

  test('shutDown with drain still hands out queued keys and resolves after they are done', async () => {
    const q = queue();
    q.add('a');
    q.add('b');
    let drained = false;
    const shutDown = q.shutDown({ drain: true }).then(() => (drained = true));
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(await q.get()).toBe('b');
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    q.done('b');
    await shutDown;
    expect(await q.get()).toBeUndefined();
  });

  test('metrics hooks see depth, adds and retries', async () => {
    const depths: number[] = [];
    let adds = 0;
    let retries = 0;
    const clock = new ManualClock();
    const q = new WorkQueue<string>({
      clock,
      backoff,
      metrics: { depth: (n) => depths.push(n), added: () => adds++, retried: () => retries++ },
    });
    q.add('a');
    q.add('a');
    q.add('b');
    await q.get();
    q.addRateLimited('c');
    expect(adds).toBe(2);
    expect(retries).toBe(1);
    expect(depths).toEqual([1, 2, 1]);
  });
});
