// A write the operator makes once when it starts (publishing its console endpoint, its eviction webhook's CA) must
// not keep it from starting: the apiserver may be down at that moment (a restart after losing leadership while
// the apiserver was away), and the informers and leader election wait for it anyway. The write is retried with
// backoff until it succeeds or the operator stops.
import type { Logger } from 'pino';
import { ExponentialBackoff } from './backoff.js';
import { sleep, systemClock, type Clock } from './clock.js';

export interface StartUpWrite {
  /** Resolves true once the write succeeded, false when stopped first. */
  readonly done: Promise<boolean>;
  stop(): void;
}

export interface StartUpWriteOptions {
  baseMs?: number;
  maxMs?: number;
  clock?: Clock;
}

export function startUpWrite(
  what: string,
  write: () => Promise<void>,
  logger: Logger,
  options: StartUpWriteOptions = {},
): StartUpWrite {
  const stopped = new AbortController();
  const backoff = new ExponentialBackoff({ baseMs: options.baseMs ?? 500, maxMs: options.maxMs ?? 10_000 });
  const clock = options.clock ?? systemClock;
  const done = (async () => {
    while (!stopped.signal.aborted) {
      try {
        await write();
        return true;
      } catch (error) {
        const delayMs = backoff.next(what);
        logger.warn({ err: error, retryInMs: delayMs }, `${what} failed; retrying`);
        await sleep(clock, delayMs, stopped.signal);
      }
    }
    return false;
  })();
  return { done, stop: () => stopped.abort() };
}
