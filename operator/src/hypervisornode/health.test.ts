import type { HypervisorNode } from '../../../crds/index.js';
import type { Lease } from '../runtime/leader.js';
import { leaseState } from './health.js';

const node: HypervisorNode = {
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'HypervisorNode',
  metadata: { name: 'node-a', creationTimestamp: '2026-11-28T10:00:00Z' },
};

const lease = (renewTime: string, seconds = 4): Lease => ({
  metadata: { name: 'node-a', namespace: 'tern-system' },
  spec: { holderIdentity: 'node-a', leaseDurationSeconds: seconds, renewTime },
});

const at = (iso: string) => Date.parse(iso);

describe('leaseState', () => {
  it('is live until renewTime + leaseDurationSeconds, and says when it expires', () => {
    expect(
      leaseState(node, lease('2026-11-28T10:00:00.000000Z'), at('2026-11-28T10:00:03.999Z'), 60_000),
    ).toEqual({
      expired: false,
      expiresAt: at('2026-11-28T10:00:04Z'),
    });
  });

  it('has expired from renewTime + leaseDurationSeconds on', () => {
    expect(
      leaseState(node, lease('2026-11-28T10:00:00.000000Z'), at('2026-11-28T10:00:04Z'), 60_000),
    ).toEqual({
      expired: true,
      message: 'Lease tern-system/node-a last renewed at 2026-11-28T10:00:00.000000Z (duration 4 s)',
    });
  });

  it('gives a node without a Lease a grace period from its creation', () => {
    expect(leaseState(node, undefined, at('2026-11-28T10:00:59Z'), 60_000)).toMatchObject({ expired: false });
    expect(leaseState(node, undefined, at('2026-11-28T10:01:00Z'), 60_000)).toEqual({
      expired: true,
      message: 'node node-a has no heartbeat Lease',
    });
  });

  it('counts a status heartbeat newer than the Lease renewal as a sign of life', () => {
    const reporting = { ...node, status: { heartbeatTime: '2026-11-28T10:00:10Z' } };
    expect(
      leaseState(reporting, lease('2026-11-28T10:00:00.000000Z'), at('2026-11-28T10:00:12Z'), 60_000),
    ).toEqual({
      expired: false,
      expiresAt: at('2026-11-28T10:00:14Z'),
    });
  });
});
