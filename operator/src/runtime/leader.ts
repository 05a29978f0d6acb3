// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm:
// - a candidate takes the lease when it is free, released (empty holder), or has not changed for
//   leaseDuration as measured on the candidate's own clock since it last saw it change (no trust in peer clocks);
// - the leader renews every retryPeriod; if no renewal succeeded within renewDeadline it stops leading. With
//   renewDeadline < leaseDuration it has stopped before anyone else can take over;
// - every write is a compare-and-swap on resourceVersion, so two candidates cannot both win.
// The fencing token of a leadership term is the Lease's leaseTransitions + 1 as this replica's acquiring write left
// it: that write is a compare-and-swap that raised leaseTransitions, so no other term has the same token, and a
// later term has a higher one (as long as nobody deletes the Lease: a new Lease starts again from 1). It is handed
// out only while the last renewal is younger than renewDeadline on this replica's clock (docs/architecture.md "The
// hand-over rule").
import type { Logger } from 'pino';
import type { KubeClient } from '../../../kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../../kube/errors.js';
import { microTime } from '../../../kube/objects.js';
import { Leases } from '../../../kube/resources.js';
import type { KubeObject } from '../../../kube/types.js';
import { sleep, systemClock, type Clock } from './clock.js';

export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** Unique per replica, e.g. `${podName}_${uid}`. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Give the lease up on a graceful stop, so a standby takes over at once instead of after leaseDuration. */
  releaseOnStop?: boolean;
  clock?: Clock;
  logger?: Logger;
}

export interface LeaderCallbacks {
  /** Became leader; `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): void;
  /** Leadership ends (stop or loss); awaited before the lease is released. */
  onStoppedLeading(): Promise<void> | void;
  onNewLeader?(identity: string): void;
}

export type ElectionOutcome = 'stopped' | 'lost';

/** This replica may not act as the leader now (it does not lead, or its lease may have passed on). */
export class NotLeadingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotLeadingError';
  }
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnStop: boolean;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private lease: Lease | undefined;
  private observedSpec = '';
  private observedAt = 0;
  private observedLeader: string | undefined;
  private leading = false;
  /** The fencing token of this replica's current term (set by the acquiring write). */
  private token: number | undefined;
  /** When the last successful acquire or renewal was sent (this replica's clock). */
  private renewedAt = 0;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.releaseOnStop = options.releaseOnStop ?? true;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger?.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    if (this.leaseDurationMs % 1000 !== 0)
      throw new Error('leaseDurationMs must be whole seconds (the Lease stores seconds)');
    if (!(this.retryPeriodMs < this.renewDeadlineMs && this.renewDeadlineMs < this.leaseDurationMs)) {
      throw new Error('leader election needs retryPeriod < renewDeadline < leaseDuration');
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * The fencing token of this leadership term, for every call to a daemon. Throws NotLeadingError when this replica
   * does not lead, or when its last renewal is renewDeadline old or older (e.g. the process was paused): another
   * replica may lead by now, even before the renew loop notices.
   */
  fencingToken(): number {
    if (!this.leading || this.token === undefined) throw new NotLeadingError('this replica does not lead');
    const age = this.clock.now() - this.renewedAt;
    if (age >= this.renewDeadlineMs) {
      throw new NotLeadingError(
        `the leader Lease was last renewed ${age} ms ago (renew deadline ${this.renewDeadlineMs} ms): another ` +
          'replica may lead',
      );
    }
    return this.token;
  }

  /** The holder last seen on the lease. */
  get leader(): string | undefined {
    return this.observedLeader;
  }

  /** Campaigns until signal aborts ('stopped', lease released) or leadership is lost ('lost'). */
  async run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<ElectionOutcome> {
    while (!signal.aborted && !(await this.tryAcquireOrRenew(callbacks, false))) {
      await sleep(this.clock, this.jittered(this.retryPeriodMs), signal);
    }
    if (signal.aborted) return 'stopped';

    this.leading = true;
    this.logger?.info('became leader');
    const leadership = new AbortController();
    callbacks.onStartedLeading(leadership.signal);
    const outcome = await this.renewUntilStoppedOrLost(signal, callbacks);
    this.leading = false;
    leadership.abort();
    await callbacks.onStoppedLeading();
    if (outcome === 'lost') this.logger?.error('lost leadership');
    else if (this.releaseOnStop) await this.release();
    return outcome;
  }

  private async renewUntilStoppedOrLost(
    signal: AbortSignal,
    callbacks: LeaderCallbacks,
  ): Promise<ElectionOutcome> {
    for (;;) {
      await sleep(this.clock, this.retryPeriodMs, signal);
      if (signal.aborted) return 'stopped';
      const remaining = this.renewedAt + this.renewDeadlineMs - this.clock.now();
      // A hung request must not keep us leading past the deadline.
      const renewed = await Promise.race([
        this.tryAcquireOrRenew(callbacks, true),
        sleep(this.clock, Math.max(0, remaining)).then(() => false),
      ]);
      if (!renewed && this.clock.now() - this.renewedAt >= this.renewDeadlineMs) return 'lost';
    }
  }

  /**
   * One acquire (renewal false) or renewal attempt. An acquire always starts a new term (leaseTransitions + 1),
   * also when the Lease still names this identity (a restarted process with the same name).
   */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, renewal: boolean): Promise<boolean> {
    const now = this.clock.now();
    try {
      let lease: Lease;
      try {
        lease = await this.client.get<Lease>(Leases, this.name, this.namespace);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return await this.create(now, callbacks);
      }
      const spec = lease.spec ?? {};
      const specJson = JSON.stringify(spec);
      if (specJson !== this.observedSpec) {
        this.observedSpec = specJson;
        this.observedAt = now;
      }
      this.lease = lease;
      const holder = spec.holderIdentity ?? '';
      this.noteLeader(holder, callbacks);
      const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
      if (holder && holder !== this.identity && this.observedAt + durationMs > now) return false;

      const renewing = renewal && holder === this.identity;
      const updated = await this.client.replace<Lease>(Leases, {
        metadata: {
          name: this.name,
          namespace: this.namespace,
          resourceVersion: lease.metadata.resourceVersion,
        },
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: this.leaseDurationMs / 1000,
          acquireTime: renewing && spec.acquireTime ? spec.acquireTime : microTime(new Date(now)),
          renewTime: microTime(new Date(now)),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
        },
      });
      this.observe(updated, now, callbacks);
      this.renewedAt = now;
      if (!renewing) this.token = (updated.spec?.leaseTransitions ?? 0) + 1;
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) return false; // another candidate wrote first
      this.logger?.warn({ err }, 'lease acquire/renew failed');
      return false;
    }
  }

  private async create(now: number, callbacks: LeaderCallbacks): Promise<boolean> {
    const created = await this.client.create<Lease>(Leases, {
      metadata: { name: this.name, namespace: this.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationMs / 1000,
        acquireTime: microTime(new Date(now)),
        renewTime: microTime(new Date(now)),
        leaseTransitions: 0,
      },
    });
    this.observe(created, now, callbacks);
    this.renewedAt = now;
    this.token = (created.spec?.leaseTransitions ?? 0) + 1;
    return true;
  }

  private observe(lease: Lease, now: number, callbacks: LeaderCallbacks): void {
    this.lease = lease;
    this.observedSpec = JSON.stringify(lease.spec ?? {});
    this.observedAt = now;
    this.noteLeader(lease.spec?.holderIdentity ?? '', callbacks);
  }

  private noteLeader(holder: string, callbacks: LeaderCallbacks): void {
    if (!holder || holder === this.observedLeader) return;
    this.observedLeader = holder;
    this.logger?.info({ leader: holder }, 'new leader observed');
    callbacks.onNewLeader?.(holder);
  }

  /** Hands the lease back (empty holder, 1 s duration) so a standby acquires it on its next try. */
  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const now = microTime(new Date(this.clock.now()));
    try {
      await this.client.replace<Lease>(Leases, {
        metadata: {
          name: this.name,
          namespace: this.namespace,
          resourceVersion: lease.metadata.resourceVersion,
        },
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
        },
      });
      this.logger?.info('released lease');
    } catch (err) {
      this.logger?.warn({ err }, 'could not release lease');
    }
  }

  private jittered(ms: number): number {
    return ms * (1 + 0.2 * Math.random());
  }
}
