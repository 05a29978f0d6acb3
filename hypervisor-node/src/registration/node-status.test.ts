import type { Condition } from '../../../crds/index.js';
import type { NodeInfo } from '../../../proto/index.js';
import { setCondition } from '../../../kube/conditions.js';
import { microTime } from '../../../kube/objects.js';
import { buildNodeStatus } from './node-status.js';

const info: NodeInfo = {
  nodeName: 'node-a',
  capacity: { cpus: 8, memoryMib: 16384 },
  allocatable: { cpus: 7, memoryMib: 15872 },
  allocated: { cpus: 2, memoryMib: 1024 },
  accelerator: 'ACCELERATOR_TCG',
  qemuVersion: '10.0.2',
  cpuModel: 'max',
  guestCount: 3,
  network: { mode: 'NETWORK_MODE_BRIDGE', bridge: 'tern0', limitation: '' },
};
const ready = { ready: true, reason: 'DaemonReady', message: 'ok' };

describe('buildNodeStatus', () => {
  it('reports capacity, allocatable, accelerator, versions, endpoint, VM count and Ready', () => {
    const now = new Date('2026-11-28T23:30:00.123Z');
    expect(buildNodeStatus(info, '127.0.0.1:7443', ready, [], now)).toEqual({
      capacity: { cpu: 8, memory: '16384Mi' },
      allocatable: { cpu: 7, memory: '15872Mi' },
      accelerator: 'tcg',
      cpuModel: 'max',
      qemuVersion: '10.0.2',
      endpoint: '127.0.0.1:7443',
      vmCount: 3,
      network: { mode: 'bridge', bridge: 'tern0' },
      heartbeatTime: '2026-11-28T23:30:00Z',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'DaemonReady',
          message: 'ok',
          lastTransitionTime: '2026-11-28T23:30:00Z',
        },
      ],
    });
  });

  it('reports user-mode networking with its limitation', () => {
    const user = {
      ...info,
      network: { mode: 'NETWORK_MODE_USER' as const, limitation: 'no L2 between guests' },
    };
    expect(buildNodeStatus(user, 'h:1', ready, [], new Date()).network).toEqual({
      mode: 'user',
      limitation: 'no L2 between guests',
    });
  });

  it('keeps conditions written by others', () => {
    const other: Condition = {
      type: 'Healthy',
      status: 'True',
      reason: 'Probed',
      message: '',
      lastTransitionTime: '2026-01-01T00:00:00Z',
    };
    const status = buildNodeStatus(info, 'h:1', ready, [other], new Date());
    expect(status.conditions?.map((condition) => condition.type)).toEqual(['Healthy', 'Ready']);
  });
});

describe('setCondition', () => {
  const before: Condition[] = [
    {
      type: 'Ready',
      status: 'True',
      reason: 'DaemonReady',
      message: 'a',
      lastTransitionTime: '2026-01-01T00:00:00Z',
    },
  ];
  const now = new Date('2026-11-28T12:00:00Z');

  it('keeps lastTransitionTime while the status stays the same', () => {
    const [ready] = setCondition(
      before,
      { type: 'Ready', status: 'True', reason: 'DaemonReady', message: 'b' },
      now,
    );
    expect(ready).toMatchObject({ message: 'b', lastTransitionTime: '2026-01-01T00:00:00Z' });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const [ready] = setCondition(
      before,
      { type: 'Ready', status: 'False', reason: 'DaemonStopped', message: '' },
      now,
    );
    expect(ready).toMatchObject({ status: 'False', lastTransitionTime: '2026-11-28T12:00:00Z' });
  });
});

describe('microTime', () => {
  it('writes the six fractional digits the apiserver requires for Lease times', () => {
    expect(microTime(new Date('2026-11-28T23:30:00.123Z'))).toBe('2026-11-28T23:30:00.123000Z');
  });
});
