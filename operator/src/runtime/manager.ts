// The manager runs the controller core of one operator replica:
// informers start at once on every replica (a standby keeps a warm cache), controllers' workers run only
// while this replica leads, and SIGTERM stops workers, releases the lease and closes the watches.
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { KubeClient } from '../../../kube/client.js';
import type { KubeObject, ListOptions, ResourceType } from '../../../kube/types.js';
import { sleep, systemClock, type Clock } from './clock.js';
import { Controller, type ControllerOptions } from './controller.js';
import { Informer, listWatch } from './informer.js';
import { UNFENCED_TOKEN } from '../../../proto/index.js';
import { LeaderElector, NotLeadingError, type LeaderElectionOptions } from './leader.js';

export interface ManagerOptions {
  client: KubeClient;
  logger?: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Without it this replica always leads (a single-replica deployment). */
  leaderElection?: Omit<LeaderElectionOptions, 'clock' | 'logger'>;
  /** How long stop() waits for running reconciles before it goes on without them. */
  shutdownTimeoutMs?: number;
}

/** Leadership was lost while running: state may be half-written, so the process should exit and restart. */
export class LeadershipLostError extends Error {
  constructor() {
    super('leader election lost');
    this.name = 'LeadershipLostError';
  }
}

export class Manager {
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly elector: LeaderElector | undefined;
  private readonly clock: Clock;
  private readonly shutdownTimeoutMs: number;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly controllers: Controller[] = [];
  private readonly stopAbortController = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;

  constructor(options: ManagerOptions) {
    this.client = options.client;
    this.logger = options.logger ?? pino({ enabled: false });
    this.registry = options.registry ?? new Registry();
    this.clock = options.clock ?? systemClock;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
    if (options.leaderElection) {
      this.elector = new LeaderElector(this.client, {
        ...options.leaderElection,
        clock: this.clock,
        logger: this.logger,
      });
    }
  }

  /** The shared informer for a resource (one list+watch per resource and filter, whatever the number of users). */
  informer<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Informer<T> {
    const id = JSON.stringify([
      type.group,
      type.version,
      type.plural,
      options.namespace,
      options.labelSelector,
      options.fieldSelector,
    ]);
    let informer = this.informers.get(id);
    if (!informer) {
      informer = new Informer<KubeObject>(listWatch(this.client, type, options), {
        clock: this.clock,
        logger: this.logger,
      });
      this.informers.set(id, informer);
    }
    return informer as unknown as Informer<T>;
  }

  addController(options: Omit<ControllerOptions, 'clock' | 'logger' | 'registry'>): Controller {
    if (this.running) throw new Error('add controllers before start()');
    const controller = new Controller({
      ...options,
      clock: this.clock,
      logger: this.logger,
      registry: this.registry,
    });
    this.controllers.push(controller);
    return controller;
  }

  /** Readiness: every informer has loaded its first list. */
  hasSynced(): boolean {
    return this.allInformers().every((informer) => informer.hasSynced());
  }

  /** Whether this replica's controllers are running (always, once synced, without leader election). */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * The fencing token every call to a daemon carries: the leader Lease's term (LeaderElector.fencingToken), or
   * UNFENCED_TOKEN (0) without leader election. Throws NotLeadingError while the controllers do not run (before
   * leading, once leadership ended or the manager stops), so that nothing left over calls a daemon.
   */
  fencingToken(): number {
    if (!this.leading) throw new NotLeadingError("this replica's controllers are not running");
    return this.elector ? this.elector.fencingToken() : UNFENCED_TOKEN;
  }

  /** Runs until stop(); rejects with LeadershipLostError when leadership is lost. */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  /** Graceful shutdown: stop workers (bounded wait), release the lease, close the watches. */
  async stop(): Promise<void> {
    this.stopAbortController.abort();
    await this.running?.catch(() => {});
  }

  /** Calls stop() on SIGTERM/SIGINT; returns a function that removes the handlers. */
  handleSignals(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
    const onSignal = (signal: NodeJS.Signals) => {
      this.logger.info({ signal }, 'shutting down');
      void this.stop();
    };
    for (const signal of signals) process.once(signal, onSignal);
    return () => {
      for (const signal of signals) process.off(signal, onSignal);
    };
  }

  private async run(): Promise<void> {
    const signal = this.stopAbortController.signal;
    const informers = this.allInformers();
    for (const informer of informers) informer.start();
    try {
      await Promise.race([
        Promise.all(informers.map((informer) => informer.waitForSync())),
        new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
      ]);
      if (signal.aborted) return;
      this.logger.info({ informers: informers.map((i) => i.description) }, 'caches synced');
      if (!this.elector) {
        this.startControllers();
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        await this.stopControllers();
        return;
      }
      const outcome = await this.elector.run(signal, {
        onStartedLeading: () => this.startControllers(),
        onStoppedLeading: () => this.stopControllers(),
      });
      if (outcome === 'lost') throw new LeadershipLostError();
    } finally {
      await Promise.all(informers.map((informer) => informer.stop()));
      this.logger.info('manager stopped');
    }
  }

  /** The manager's informers and any others its controllers watch, each once. */
  private allInformers(): Informer<KubeObject>[] {
    return [...new Set([...this.informers.values(), ...this.controllers.flatMap((c) => c.informers)])];
  }

  private startControllers(): void {
    this.leading = true;
    for (const controller of this.controllers) controller.start();
  }

  private async stopControllers(): Promise<void> {
    this.leading = false;
    const cancelTimeout = new AbortController();
    const stopped = Promise.all(this.controllers.map((controller) => controller.stop())).then(() => true);
    const timedOut = sleep(this.clock, this.shutdownTimeoutMs, cancelTimeout.signal).then(() => false);
    const inTime = await Promise.race([stopped, timedOut]);
    cancelTimeout.abort();
    if (!inTime) {
      this.logger.warn({ timeoutMs: this.shutdownTimeoutMs }, 'reconciles still running at shutdown timeout');
    }
  }
}
