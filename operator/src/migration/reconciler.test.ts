import type { Migration } from '../../../crds/index.js';
import { waitRecorded } from './reconciler.js';

const waiting = (patch: { message?: string; target?: string; generation?: number } = {}): Migration =>
  ({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { namespace: 'default', name: 'm', generation: 1 },
    spec: { vmName: 'vm' },
    status: {
      phase: 'Pending',
      sourceNode: 'node-1',
      targetNode: patch.target ?? 'node-3',
      conditions: [
        {
          type: 'Scheduled',
          status: 'False',
          reason: 'OutboundLimit',
          message: patch.message ?? 'waiting: 2 migrations leave node-1 (limit 2)',
          observedGeneration: patch.generation ?? 1,
          lastTransitionTime: '2026-12-07T00:00:00Z',
        },
      ],
    },
  }) as Migration;

const admission = {
  kind: 'wait' as const,
  reason: 'OutboundLimit' as const,
  message: 'waiting: 2 migrations leave node-1 (limit 2)',
  source: 'node-1',
  target: 'node-3',
};

describe('waitRecorded: a Pending Migration whose wait status needs no write', () => {
  test('status already says it waits for this slot, on these nodes', () => {
    expect(waitRecorded(waiting(), admission)).toBe(true);
  });

  test('another reason, target or message, an older generation or another phase needs the write', () => {
    expect(waitRecorded(waiting(), { ...admission, reason: 'ClusterLimit' })).toBe(false);
    expect(waitRecorded(waiting({ target: 'node-4' }), admission)).toBe(false);
    expect(
      waitRecorded(waiting({ message: 'waiting: 1 migrations leave node-1 (limit 2)' }), admission),
    ).toBe(false);
    expect(
      waitRecorded({ ...waiting(), metadata: { ...waiting().metadata, generation: 2 } }, admission),
    ).toBe(false);
    expect(waitRecorded({ ...waiting(), status: { ...waiting().status, phase: undefined } }, admission)).toBe(
      false,
    );
  });
});
