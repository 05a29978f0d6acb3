import type { HypervisorNode } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import type { EventRecorder } from '../../../kube/events.js';
import type { ReconcileContext } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { Lease } from '../runtime/leader.js';
import {
  fenceAfterMs,
  HypervisorNodeHealthReconciler,
  leaseState,
  nodeLoss,
  MIN_REQUEUE_MS,
  observeHeartbeat,
  requeueDelay,
  type HeartbeatObservation,
} from './health.js';

const node: HypervisorNode = {
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'HypervisorNode',
  metadata: { name: 'node-a', creationTimestamp: '2026-11-28T10:00:00Z' },
};

const lease = (renewTime: string, seconds = 4, resourceVersion?: string): Lease => ({
  metadata: { name: 'node-a', namespace: 'tern-system', resourceVersion },
  spec: { holderIdentity: 'node-a', leaseDurationSeconds: seconds, renewTime },
});

const at = (iso: string) => Date.parse(iso);
const DAY_MS = 24 * 3600_000;
const T0 = at('2026-11-28T10:00:00Z');
/** A renewTime as a daemon whose clock is `skewMs` off would write it at operator time `t`. */
const renewTime = (t: number, skewMs: number) => new Date(t + skewMs).toISOString().replace('Z', '000Z');

/** Observes the node at each of `times`, carrying the observation along; returns the last one. */
function observeAll(
  steps: { t: number; node?: HypervisorNode; lease?: Lease }[],
  start?: HeartbeatObservation,
): HeartbeatObservation {
  let observation = start;
  for (const step of steps)
    observation = observeHeartbeat(observation, step.node ?? node, step.lease, step.t);
  return observation!;
}

describe('leaseState on the operator clock', () => {
  it('is live for leaseDurationSeconds after the operator saw a renewal, and says when it expires', () => {
    const seen = observeAll([
      { t: T0 - 10_000, lease: lease('2026-11-28T09:59:50.000000Z') },
      { t: T0, lease: lease('2026-11-28T10:00:00.000000Z') },
    ]);
    expect(leaseState(node, lease('2026-11-28T10:00:00.000000Z'), seen, T0 + 3_999, 60_000)).toEqual({
      expired: false,
      expiresAt: T0 + 4_000,
      durationMs: 4_000,
    });
    expect(leaseState(node, lease('2026-11-28T10:00:00.000000Z'), seen, T0 + 4_000, 60_000)).toEqual({
      expired: true,
      message:
        'Lease tern-system/node-a last renewed at 2026-11-28T10:00:00.000000Z (duration 4 s); ' +
        'no renewal seen by the operator for 4 s',
    });
  });

  it('gives a node without a Lease a grace period from when the operator first saw it without one', () => {
    const seen = observeAll([{ t: T0 }, { t: T0 + 30_000 }]);
    expect(leaseState(node, undefined, seen, T0 + 59_999, 60_000)).toMatchObject({ expired: false });
    expect(leaseState(node, undefined, seen, T0 + 60_000, 60_000)).toEqual({
      expired: true,
      message: 'node node-a has no heartbeat Lease',
    });
  });

  it('does not count a Lease that disappears as a heartbeat', () => {
    const l = lease('2026-11-28T10:00:00.000000Z', 4, '7');
    const seen = observeAll([{ t: T0, lease: l }, { t: T0 + 1_000, lease: l }, { t: T0 + 2_000 }]);
    expect(seen).toMatchObject({ since: T0, missingSince: T0 + 2_000 });
    expect(leaseState(node, undefined, seen, T0 + 61_999, 60_000)).toMatchObject({ expired: false });
    expect(leaseState(node, undefined, seen, T0 + 62_000, 60_000)).toMatchObject({ expired: true });
  });

  it('counts a changed status heartbeat as a sign of life', () => {
    const l = lease('2026-11-28T10:00:00.000000Z');
    const reporting = { ...node, status: { heartbeatTime: '2026-11-28T10:00:10Z' } };
    const seen = observeAll([
      { t: T0, lease: l },
      { t: T0 + 10_000, lease: l, node: reporting },
    ]);
    expect(leaseState(reporting, l, seen, T0 + 12_000, 60_000)).toEqual({
      expired: false,
      expiresAt: T0 + 14_000,
      durationMs: 4_000,
    });
  });

  it('counts a new resourceVersion of the Lease as a renewal even when renewTime is unchanged', () => {
    const seen = observeAll([
      { t: T0, lease: lease('2026-11-28T10:00:00.000000Z', 4, '7') },
      { t: T0 + 3_000, lease: lease('2026-11-28T10:00:00.000000Z', 4, '8') },
    ]);
    expect(seen).toMatchObject({ since: T0 + 3_000, changed: true });
  });

  it('with a node clock 25 days ahead: keeps a live node Ready, declares a dead one NotReady on time, never spins', () => {
    const skew = 25 * DAY_MS;
    let observation: HeartbeatObservation | undefined;
    // Alive: renewals every second for a minute, each written with the node's clock.
    for (let t = T0; t <= T0 + 60_000; t += 1_000) {
      const l = lease(renewTime(t, skew));
      observation = observeHeartbeat(observation, node, l, t);
      const state = leaseState(node, l, observation, t + 500, 60_000);
      expect(state).toMatchObject({ expired: false, expiresAt: t + 4_000 });
      const delay = requeueDelay(state as { expiresAt: number; durationMs: number }, t + 500);
      expect(delay).toBeGreaterThanOrEqual(MIN_REQUEUE_MS);
      expect(delay).toBeLessThanOrEqual(4_100);
    }
    // Dead after its last renewal at T0 + 60 s: NotReady 4 s later, although its renewTime is 25 days ahead.
    const last = lease(renewTime(T0 + 60_000, skew));
    observation = observeHeartbeat(observation, node, last, T0 + 63_000);
    expect(leaseState(node, last, observation!, T0 + 63_999, 60_000)).toMatchObject({ expired: false });
    expect(leaseState(node, last, observation!, T0 + 64_000, 60_000)).toMatchObject({ expired: true });
  });

  it('with a node clock 25 days behind: keeps a live node Ready, and a dead one still expires', () => {
    const skew = -25 * DAY_MS;
    let observation: HeartbeatObservation | undefined;
    for (let t = T0; t <= T0 + 60_000; t += 3_000) {
      const l = lease(renewTime(t, skew));
      observation = observeHeartbeat(observation, node, l, t);
      // Looked at just before the next renewal arrives.
      expect(leaseState(node, l, observation, t + 2_999, 60_000)).toMatchObject({ expired: false });
    }
    const last = lease(renewTime(T0 + 60_000, skew));
    expect(leaseState(node, last, observation!, T0 + 64_000, 60_000)).toMatchObject({ expired: true });
  });

  it('after an operator restart, gives a node with a stale renewTime one full lease duration from the first look', () => {
    const stale = lease('2026-11-28T09:00:00.000000Z');
    const first = observeHeartbeat(undefined, node, stale, T0);
    expect(first).toMatchObject({ since: T0, changed: false });
    expect(leaseState(node, stale, first, T0 + 3_999, 60_000)).toMatchObject({ expired: false });
    expect(leaseState(node, stale, first, T0 + 4_000, 60_000)).toMatchObject({ expired: true });
  });

  it('after an operator restart, keeps a node it had marked LeaseExpired NotReady until it sees a heartbeat', () => {
    const expired: HypervisorNode = {
      ...node,
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'LeaseExpired',
            message: 'x',
            lastTransitionTime: '2026-11-28T09:00:00Z',
          },
        ],
      },
    };
    const l = lease('2026-11-28T09:59:59.000000Z');
    const first = observeHeartbeat(undefined, expired, l, T0);
    expect(leaseState(expired, l, first, T0, 60_000)).toMatchObject({ expired: true });
    const renewed = lease('2026-11-28T10:00:01.000000Z');
    const next = observeHeartbeat(first, expired, renewed, T0 + 1_000);
    expect(leaseState(expired, renewed, next, T0 + 1_000, 60_000)).toMatchObject({ expired: false });
  });
});

describe('requeueDelay', () => {
  it('is just after the expiry for honest values', () => {
    expect(requeueDelay({ expiresAt: T0 + 4_000, durationMs: 4_000 }, T0)).toBe(4_100);
  });

  it('is at least MIN_REQUEUE_MS and at most the duration, whatever the expiry says', () => {
    expect(requeueDelay({ expiresAt: T0 - 25 * DAY_MS, durationMs: 4_000 }, T0)).toBe(MIN_REQUEUE_MS);
    expect(requeueDelay({ expiresAt: T0 + 25 * DAY_MS, durationMs: 4_000 }, T0)).toBe(4_100);
    expect(requeueDelay({ expiresAt: NaN, durationMs: 4_000 }, T0)).toBe(4_100);
  });

  it('never sleeps for days, even for a huge declared duration', () => {
    expect(requeueDelay({ expiresAt: T0 + 30 * DAY_MS, durationMs: 30 * DAY_MS }, T0)).toBe(5 * 60_000);
  });
});

describe('HypervisorNodeHealthReconciler', () => {
  /** One node and its Lease in fake informers; status writes land in the node; a clock the test moves. */
  function harness(initial: HypervisorNode, leaseNow: Lease | undefined) {
    const world = { node: initial, lease: leaseNow, now: T0, events: [] as string[] };
    const options = {
      client: {
        replaceStatus: async (_type: unknown, object: HypervisorNode) => {
          world.node = object;
          return object;
        },
      } as unknown as KubeClient,
      nodes: { get: () => world.node } as unknown as Informer<HypervisorNode>,
      leases: { get: () => world.lease } as unknown as Informer<Lease>,
      leaseNamespace: 'tern-system',
      events: {
        record: async (_object: unknown, _type: string, reason: string) => void world.events.push(reason),
      } as unknown as EventRecorder,
      now: () => new Date(world.now),
    };
    const context = { logger: { warn: () => undefined } } as unknown as ReconcileContext;
    const request = { key: 'node-a', name: 'node-a' };
    let reconciler = new HypervisorNodeHealthReconciler(options);
    return {
      world,
      reconcile: () => reconciler.reconcile(request, context),
      restart: () => (reconciler = new HypervisorNodeHealthReconciler(options)),
      ready: () => world.node.status?.conditions?.find((c) => c.type === 'Ready'),
    };
  }

  it('with a node clock 25 days ahead: requeues within the lease duration and marks the dead node NotReady on time', async () => {
    const h = harness(node, lease(renewTime(T0, 25 * DAY_MS)));
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 4_100 });
    h.world.now = T0 + 2_000;
    h.world.lease = lease(renewTime(T0 + 2_000, 25 * DAY_MS));
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 4_100 });
    // The daemon dies; the requeue comes back 4.1 s later.
    h.world.now = T0 + 6_100;
    expect(await h.reconcile()).toBeUndefined();
    expect(h.ready()).toMatchObject({ status: 'False', reason: 'LeaseExpired' });
    expect(h.world.events).toEqual(['NodeNotReady']);
  });

  it('with a node clock behind: keeps a live node Ready', async () => {
    const h = harness(node, lease(renewTime(T0, -25 * DAY_MS)));
    for (let t = T0; t <= T0 + 30_000; t += 1_000) {
      h.world.now = t;
      h.world.lease = lease(renewTime(t, -25 * DAY_MS));
      expect(await h.reconcile()).toEqual({ requeueAfterMs: 4_100 });
    }
    expect(h.ready()).toBeUndefined();
    expect(h.world.events).toEqual([]);
  });

  it('after a restart: starts the clock at the first look, and lifts its own verdict only on a heartbeat', async () => {
    const h = harness(node, lease('2026-11-28T09:00:00.000000Z'));
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 4_100 });
    h.world.now = T0 + 4_100;
    await h.reconcile();
    expect(h.ready()).toMatchObject({ status: 'False', reason: 'LeaseExpired' });

    h.restart();
    h.world.now = T0 + 60_000;
    expect(await h.reconcile()).toBeUndefined();
    expect(h.ready()).toMatchObject({ status: 'False', reason: 'LeaseExpired' });

    h.world.now = T0 + 61_000;
    h.world.lease = lease('2026-11-28T09:00:01.000000Z');
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 4_100 });
    expect(h.ready()).toMatchObject({ status: 'True', reason: 'LeaseRenewed' });
    expect(h.world.events).toEqual(['NodeNotReady', 'NodeReady']);
  });
});

describe('nodeLoss: fence time plus margin on the operator clock', () => {
  const fencing = (renew: string, fence?: string, resourceVersion = '1'): Lease => ({
    ...lease(renew, 4, resourceVersion),
    metadata: {
      name: 'node-a',
      namespace: 'tern-system',
      resourceVersion,
      ...(fence === undefined ? {} : { annotations: { 'tern.dev/fence-after-seconds': fence } }),
    },
  });

  it('reads the fence time from the Lease annotation; absent, 0 or garbage means the node does not fence', () => {
    expect(fenceAfterMs(fencing('2026-11-28T10:00:00.000000Z', '120'))).toBe(120_000);
    for (const value of [undefined, '0', '-5', '1e3', 'soon', '12345678901'])
      expect(fenceAfterMs(fencing('2026-11-28T10:00:00.000000Z', value))).toBeUndefined();
  });

  it('is lost only fence + margin after the operator last saw a renewal, whatever the renewTime says', () => {
    // The daemon's clock is a day ahead: its renewTime is never compared with the operator's clock.
    const held = fencing(renewTime(T0, DAY_MS), '10', '7');
    const seen = observeAll([
      { t: T0 - 1_000, lease: fencing(renewTime(T0 - 1_000, DAY_MS), '10', '6') },
      { t: T0, lease: held },
    ]);
    expect(nodeLoss(node, held, seen, T0 + 11_999, 2_000)).toEqual({ kind: 'pending', at: T0 + 12_000 });
    expect(nodeLoss(node, held, seen, T0 + 12_000, 2_000)).toMatchObject({
      kind: 'lost',
      message: expect.stringMatching(
        /^no Lease renewal seen by the operator for 12 s \(since 2026-11-28T10:00:00.000Z, operator clock\), more than the node's fence time \(10 s\) plus the margin \(2 s\)/,
      ),
    });
  });

  it('never declares a node without a fence time lost, and gives a restarted operator a full fence + margin', () => {
    const unfenced = fencing('2026-11-28T10:00:00.000000Z');
    const seen = observeAll([{ t: T0, lease: unfenced }]);
    expect(nodeLoss(node, unfenced, seen, T0 + DAY_MS, 2_000)).toEqual({ kind: 'unfenced' });
    // A new operator's first look starts its count, however old the renewal is.
    const fenced = fencing('2026-11-28T09:00:00.000000Z', '10');
    const first = observeAll([{ t: T0, lease: fenced }]);
    expect(nodeLoss(node, fenced, first, T0 + 11_000, 2_000)).toEqual({ kind: 'pending', at: T0 + 12_000 });
  });

  it('keeps a node it already declared Fenced lost until it sees a renewal itself', () => {
    const marked: HypervisorNode = {
      ...node,
      status: {
        conditions: [
          {
            type: 'Fenced',
            status: 'True',
            reason: 'FenceTimeElapsed',
            message: 'earlier verdict',
            lastTransitionTime: '2026-11-28T09:00:00Z',
          },
        ],
      },
    };
    const fenced = fencing('2026-11-28T09:00:00.000000Z', '10');
    const first = observeHeartbeat(undefined, marked, fenced, T0);
    expect(nodeLoss(marked, fenced, first, T0 + 1_000, 2_000)).toEqual({
      kind: 'lost',
      message: 'earlier verdict',
    });
    const renewed = observeHeartbeat(
      first,
      marked,
      fencing('2026-11-28T10:00:05.000000Z', '10', '2'),
      T0 + 5_000,
    );
    expect(nodeLoss(marked, fenced, renewed, T0 + 6_000, 2_000)).toEqual({
      kind: 'pending',
      at: T0 + 17_000,
    });
  });
});
