// A work queue with client-go's guarantees:
// - a key added several times before a worker takes it is processed once (dirty set);
// - a key is never handed to two workers at once; re-added while processing, it is queued again after done();
// - failed keys come back after a per-key exponential delay (addRateLimited), forget() resets it;
// - addAfter() delays a key, keeping the earliest of several requested times.
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** Observability hooks, wired to Prometheus by the controller. */
export interface QueueMetrics {
  depth(length: number): void;
  added(): void;
  retried(): void;
}

/** The longest delay addAfter() waits: a day, far below setTimeout's limit of 2^31-1 ms. */
export const MAX_DELAY_MS = 24 * 3600 * 1000;

export interface WorkQueueOptions {
  clock?: Clock;
  /** Retry delay for addRateLimited; defaults suit long-running VM operations: 500 ms doubling to 5 min. */
  backoff?: BackoffOptions;
  metrics?: QueueMetrics;
}

export const DEFAULT_QUEUE_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 5 * 60_000 };

export class WorkQueue<K = string> {
  private readonly clock: Clock;
  private readonly backoff: ExponentialBackoff<K>;
  private readonly metrics: QueueMetrics | undefined;
  private readonly queue: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly delayed = new Map<K, { readyAt: number; timer: TimerHandle }>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  private shuttingDown = false;
  private drainQueued = false;
  private idle: (() => void)[] = [];

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.backoff = new ExponentialBackoff<K>(options.backoff ?? DEFAULT_QUEUE_BACKOFF);
    this.metrics = options.metrics;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.added();
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() queues it again
    this.enqueue(key);
  }

  addAfter(key: K, requestedMs: number): void {
    if (this.shuttingDown) return;
    if (!(requestedMs > 0)) return this.add(key);
    // setTimeout fires at once for a delay past 2^31-1 ms: a huge delay (e.g. derived from a far-future
    // timestamp) must wait long, not spin.
    const ms = Math.min(requestedMs, MAX_DELAY_MS);
    const readyAt = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    if (existing) this.clock.clearTimeout(existing.timer);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { readyAt, timer });
  }

  /** Re-adds a failed key after its backoff; every call without forget() doubles the delay. */
  addRateLimited(key: K): void {
    this.metrics?.retried();
    this.addAfter(key, this.backoff.next(key));
  }

  /** Clears the key's failure history (call after a success). */
  forget(key: K): void {
    this.backoff.forget(key);
  }

  numRequeues(key: K): number {
    return this.backoff.failures(key);
  }

  /** Next key to process, or undefined once the queue shuts down. Every key received must be passed to done(). */
  get(): Promise<K | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.shuttingDown && !this.drainQueued) this.dirty.delete(key);
    if (this.dirty.has(key)) this.enqueue(key);
    this.checkIdle();
  }

  len(): number {
    return this.queue.length;
  }

  /**
   * Stops accepting keys and cancels delayed ones. Resolves when the keys being processed are done; with
   * drain, keys already queued are still handed out and awaited too.
   */
  shutDown(options: { drain?: boolean } = {}): Promise<void> {
    this.shuttingDown = true;
    this.drainQueued = options.drain ?? false;
    for (const { timer } of this.delayed.values()) this.clock.clearTimeout(timer);
    this.delayed.clear();
    if (!this.drainQueued) {
      for (const key of this.queue) this.dirty.delete(key);
      this.queue.length = 0;
      this.metrics?.depth(0);
    }
    if (this.queue.length === 0) for (const waiter of this.waiters.splice(0)) waiter(undefined);
    return new Promise((resolve) => {
      this.idle.push(resolve);
      this.checkIdle();
    });
  }

  private enqueue(key: K): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queue.push(key);
      waiter(this.take());
    } else {
      this.queue.push(key);
      this.metrics?.depth(this.queue.length);
    }
  }

  private take(): K | undefined {
    if (this.shuttingDown && !this.drainQueued) return undefined;
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.metrics?.depth(this.queue.length);
    this.processing.add(key);
    this.dirty.delete(key);
    return key;
  }

  private checkIdle(): void {
    if (!this.shuttingDown) return;
    if (this.queue.length === 0) for (const waiter of this.waiters.splice(0)) waiter(undefined);
    if (this.processing.size > 0 || this.queue.length > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
