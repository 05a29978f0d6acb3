import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { HypervisorNode } from '../../../crds/index.js';
import {
  API_GROUP,
  API_VERSION,
  API_VERSION_NAME,
  FENCE_AFTER_ANNOTATION,
  PLURALS,
} from '../../../crds/index.js';
import type { NodeInfo } from '../../../proto/index.js';
import type { SelfFencing } from '../self-fencing/heartbeat.js';
import { NodeLease } from './lease.js';
import { buildNodeStatus, type Readiness } from './node-status.js';

export interface RegistrationOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  /** host:port reported as status.endpoint. */
  endpoint: string;
  leaseNamespace: string;
  leaseDurationSeconds: number;
  heartbeatIntervalSeconds: number;
  /** Status is rewritten on every requested update and at least this often (heartbeatTime, drifting facts). */
  statusIntervalSeconds: number;
  nodeInfo: () => NodeInfo;
  /**
   * Self-fencing: each renewal publishes the fence time on the Lease and, once it succeeded, refreshes the
   * watchdog's heartbeat (self-fencing/heartbeat.ts). Undefined: the Lease carries no fence time (the operator then
   * never starts this node's VMs elsewhere).
   */
  selfFencing?: SelfFencing;
  logger: Logger;
}

const READY: Readiness = { ready: true, reason: 'DaemonReady', message: 'the daemon serves its control API' };
const STOPPED: Readiness = {
  ready: false,
  reason: 'DaemonStopped',
  message: 'the daemon shut down; its guests keep running until it returns',
};
const MAX_RETRY_MS = 7_000;
const STOP_DEADLINE_MS = 5_000;
const resource = { group: API_GROUP, version: API_VERSION_NAME, plural: PLURALS.HypervisorNode };

/**
 * Registers the daemon's cluster-scoped HypervisorNode, keeps its status current through the status subresource,
 * and renews the node's Lease as heartbeat. Failures are logged and retried; they never stop the daemon.
 */
export class HypervisorNodeRegistration {
  private readonly objects: CustomObjectsApi;
  private readonly lease: NodeLease;
  private stopped = false;
  /** Wakes the sleeping loops: 'status' early for a requested update, all of them on stop. */
  private readonly wakers = new Map<string, () => void>();
  private loops: Promise<void>[] = [];

  constructor(private readonly options: RegistrationOptions) {
    this.objects = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.lease = new NodeLease(options.kubeConfig, {
      name: options.nodeName,
      namespace: options.leaseNamespace,
      holderIdentity: options.nodeName,
      leaseDurationSeconds: options.leaseDurationSeconds,
      ...(options.selfFencing
        ? { annotations: { [FENCE_AFTER_ANNOTATION]: String(options.selfFencing.fenceAfterSeconds) } }
        : {}),
    });
  }

  /** Starts the heartbeat and status loops; resolves after the first attempt of each (successful or not). */
  async start(): Promise<void> {
    const firstAttempts: Promise<void>[] = [];
    const run = (what: string, intervalSeconds: number, action: () => Promise<void>): Promise<void> => {
      let reportFirst!: () => void;
      firstAttempts.push(new Promise<void>((resolve) => (reportFirst = resolve)));
      return this.loop(what, intervalSeconds * 1000, action, reportFirst);
    };
    this.loops = [
      run('lease', this.options.heartbeatIntervalSeconds, () => this.renewLease()),
      run('status', this.options.statusIntervalSeconds, () => this.writeStatus(READY)),
    ];
    await Promise.all(firstAttempts);
  }

  /** Asks for a status write now (guests came or went) instead of at the next interval. */
  requestStatusUpdate(): void {
    this.wakers.get('status')?.();
  }

  /** Stops the loops and reports Ready=False, so that nothing new is placed here while the daemon is away. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.wakers.values()) wake();
    const farewell = Promise.all(this.loops).then(() =>
      this.attempt('status', () => this.writeStatus(STOPPED)),
    );
    // An unreachable apiserver must not hold up the daemon's shutdown.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>(
      (resolve) => (timer = setTimeout(() => resolve(false), STOP_DEADLINE_MS)),
    );
    if (!(await Promise.race([farewell, deadline])))
      this.options.logger.warn(
        { deadlineMs: STOP_DEADLINE_MS },
        'could not report Ready=False before shutdown',
      );
    clearTimeout(timer);
  }

  private async loop(
    what: string,
    intervalMs: number,
    action: () => Promise<void>,
    reportFirst: () => void,
  ): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const ok = await this.attempt(what, action);
      reportFirst();
      failures = ok ? 0 : failures + 1;
      // After a failure retry sooner (doubling from 500 ms), never later than the regular interval.
      await this.sleep(what, ok ? intervalMs : Math.min(500 * 2 ** (failures - 1), MAX_RETRY_MS, intervalMs));
    }
  }

  /** One renewal; the watchdog's heartbeat is dated from the request's start, and written only on success. */
  private async renewLease(): Promise<void> {
    const fencing = this.options.selfFencing;
    const startedAt = await fencing?.renewalStarting();
    await this.lease.renew();
    if (fencing && startedAt !== undefined) await fencing.renewed(startedAt);
  }

  private sleep(what: string, delayMs: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(wake, delayMs);
      function wake(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakers.set(what, wake);
    }).finally(() => this.wakers.delete(what));
  }

  private async attempt(what: string, action: () => Promise<void>): Promise<boolean> {
    try {
      await action();
      return true;
    } catch (error) {
      const code = error instanceof ApiException ? error.code : undefined;
      this.options.logger.warn({ err: error, code, what }, 'registration update failed');
      return false;
    }
  }

  private async getOrCreate(): Promise<HypervisorNode> {
    const name = this.options.nodeName;
    try {
      return (await this.objects.getClusterCustomObject({ ...resource, name })) as HypervisorNode;
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 404)) throw error;
    }
    const body: HypervisorNode = { apiVersion: API_VERSION, kind: 'HypervisorNode', metadata: { name } };
    const created = (await this.objects.createClusterCustomObject({ ...resource, body })) as HypervisorNode;
    this.options.logger.info({ hypervisorNode: name }, 'registered HypervisorNode');
    return created;
  }

  /**
   * Read-modify-write of status: conditions are a list, which a merge patch would replace whole, so the write
   * carries the resourceVersion it was computed from and fails with 409 if someone wrote in between.
   */
  private async writeStatus(readiness: Readiness): Promise<void> {
    const current = await this.getOrCreate();
    const status = buildNodeStatus(
      this.options.nodeInfo(),
      this.options.endpoint,
      readiness,
      current.status?.conditions ?? [],
      new Date(),
    );
    await this.objects.patchClusterCustomObjectStatus(
      {
        ...resource,
        name: this.options.nodeName,
        body: {
          metadata: { resourceVersion: current.metadata.resourceVersion },
          // A merge patch merges nested objects: the field of the other network mode is deleted explicitly.
          status: {
            ...status,
            fenceAfterSeconds: this.options.selfFencing?.fenceAfterSeconds ?? null,
            network: status.network && { bridge: null, limitation: null, ...status.network },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
