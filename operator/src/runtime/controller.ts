// A controller: informers feed keys into a work queue; N workers call reconcile(key) for each, never two for
// the same key at once. Reconcile is level-triggered: it gets only the key and reads the current state itself.
//   error         → retried after per-key exponential backoff
//   TerminalError → not retried (needs a spec change), counted as an error
//   requeueAfterMs → backoff reset, key comes back after that delay (polling)
//   otherwise     → backoff reset
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { parseObjectKey } from '../../../kube/objects.js';
import type { KubeObject, ObjectKey } from '../../../kube/types.js';
import type { BackoffOptions } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { enqueueObject, type KeyMapper } from './handlers.js';
import type { Informer } from './informer.js';
import { ControllerMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';

export interface ReconcileRequest {
  key: ObjectKey;
  namespace?: string;
  name: string;
}

export interface ReconcileContext {
  /** Child logger bound to controller, key and reconcileID. */
  logger: Logger;
  reconcileID: string;
  /** Aborted when the controller stops (shutdown or lost leadership). */
  signal: AbortSignal;
}

export type ReconcileResult = { requeueAfterMs?: number } | void;

export type Reconciler = (request: ReconcileRequest, context: ReconcileContext) => Promise<ReconcileResult>;

/** Thrown by a reconciler for failures retrying cannot fix; the key is not requeued until its objects change. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  /** Concurrent reconciles (of different keys). */
  workers?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  logger?: Logger;
  registry?: Registry;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue<ObjectKey>;
  private readonly watchedInformers: Informer<KubeObject>[] = [];
  private readonly reconcile: Reconciler;
  private readonly workers: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: ControllerMetrics;
  private readonly stopAbortController = new AbortController();
  private running: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconcile = options.reconcile;
    this.workers = options.workers ?? 1;
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? pino({ enabled: false })).child({ controller: options.name });
    this.metrics = ControllerMetrics.for(options.registry ?? new Registry());
    this.queue = new WorkQueue<ObjectKey>({
      clock: this.clock,
      backoff: options.backoff,
      metrics: this.metrics.queue(options.name),
    });
  }

  /** Enqueues the keys `map` derives from every add, update (old and new object) and delete the informer reports. */
  watch<T extends KubeObject>(informer: Informer<T>, map: KeyMapper<T> = enqueueObject<T>()): this {
    const enqueue = (object: T) => {
      for (const key of map(object)) this.queue.add(key);
    };
    informer.addHandlers({
      onAdd: enqueue,
      onUpdate: (oldObject, newObject) => {
        enqueue(oldObject);
        enqueue(newObject);
      },
      onDelete: enqueue,
    });
    this.watchedInformers.push(informer as unknown as Informer<KubeObject>);
    return this;
  }

  /** The informers this controller reads; the manager starts them and waits for their sync. */
  get informers(): readonly Informer<KubeObject>[] {
    return this.watchedInformers;
  }

  /** Starts the workers. Call after the informers have synced (the Manager does). */
  start(): void {
    if (this.running.length > 0) return;
    this.logger.info({ workers: this.workers }, 'starting workers');
    for (let i = 0; i < this.workers; i++) this.running.push(this.work());
  }

  /** Stops taking keys, aborts the context of running reconciles and waits for them to return. */
  async stop(): Promise<void> {
    this.stopAbortController.abort();
    const drained = this.queue.shutDown();
    await Promise.all(this.running);
    await drained;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: ObjectKey): Promise<void> {
    const reconcileID = randomUUID();
    const logger = this.logger.child({ key, reconcileID });
    const labels = { controller: this.name };
    const started = this.clock.now();
    this.metrics.activeWorkers.inc(labels);
    try {
      const result = await this.reconcile(
        { key, ...parseObjectKey(key) },
        { logger, reconcileID, signal: this.stopAbortController.signal },
      );
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, result.requeueAfterMs);
        this.metrics.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
      } else {
        this.metrics.reconcileTotal.inc({ ...labels, result: 'success' });
      }
    } catch (err) {
      this.metrics.reconcileErrors.inc(labels);
      if (err instanceof TerminalError) {
        this.queue.forget(key);
        this.metrics.reconcileTotal.inc({ ...labels, result: 'terminal_error' });
        logger.error({ err }, 'reconcile failed permanently');
      } else {
        this.queue.addRateLimited(key);
        this.metrics.reconcileTotal.inc({ ...labels, result: 'error' });
        logger.warn({ err, retries: this.queue.numRequeues(key) }, 'reconcile failed, will retry');
      }
    } finally {
      this.metrics.activeWorkers.dec(labels);
      this.metrics.reconcileSeconds.observe(labels, (this.clock.now() - started) / 1000);
    }
  }
}
