import { StatusWriteQueue } from './status-queue.js';

/** A write that records when it starts and finishes once `finish()` is called. */
function pendingWrite(name: string, log: string[]) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    write: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
    },
    finish,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('StatusWriteQueue', () => {
  it('runs the writes one after the other, in order, and goes on after a failed one', async () => {
    const log: string[] = [];
    const errors: unknown[] = [];
    const queue = new StatusWriteQueue((error) => errors.push(error));
    const first = pendingWrite('first', log);
    queue.push(first.write);
    queue.push(async () => {
      log.push('failing');
      throw new Error('conflict');
    });
    queue.push(async () => void log.push('third'));
    await settle();
    expect(log).toEqual(['start first']);
    first.finish();
    await queue.release();
    expect(log).toEqual(['start first', 'end first', 'failing', 'third']);
    expect(errors).toEqual([new Error('conflict')]);
  });

  it('holds the writes that have not started when hold() comes until release(); the one under way finishes', async () => {
    const log: string[] = [];
    const queue = new StatusWriteQueue(() => undefined);
    const underWay = pendingWrite('phase', log);
    queue.push(underWay.write);
    queue.push(async () => void log.push('queued before hold'));
    await settle();
    queue.hold();
    queue.push(async () => void log.push('queued after hold'));
    underWay.finish();
    await settle();
    await settle();
    // The hand-over runs now: only the write that had started went on.
    expect(log).toEqual(['start phase', 'end phase']);
    await queue.release();
    expect(log).toEqual(['start phase', 'end phase', 'queued before hold', 'queued after hold']);
    // Released for good: later writes go at once.
    queue.push(async () => void log.push('later'));
    await queue.release();
    expect(log.at(-1)).toBe('later');
  });
});
