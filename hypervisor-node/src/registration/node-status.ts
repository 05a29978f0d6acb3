import type { Condition, HypervisorNodeStatus, NodeNetwork } from '../../../crds/index.js';
import { HYPERVISOR_NODE_CONDITIONS } from '../../../crds/index.js';
import { setCondition } from '../../../kube/conditions.js';
import { metaTime } from '../../../kube/objects.js';
import type { NetworkInfo, NodeInfo } from '../../../proto/index.js';

export interface Readiness {
  ready: boolean;
  /** CamelCase, e.g. DaemonReady, DaemonStopped. */
  reason: string;
  message: string;
}

function nodeNetwork(network: NetworkInfo | null | undefined): NodeNetwork | undefined {
  switch (network?.mode) {
    case 'NETWORK_MODE_BRIDGE':
      return { mode: 'bridge', bridge: network.bridge ?? '' };
    case 'NETWORK_MODE_USER':
      return { mode: 'user', limitation: network.limitation ?? '' };
    default:
      return undefined;
  }
}

/** The HypervisorNode status this daemon reports; conditions owned by others are carried over unchanged. */
export function buildNodeStatus(
  info: NodeInfo,
  endpoint: string,
  readiness: Readiness,
  previousConditions: readonly Condition[],
  now: Date,
): HypervisorNodeStatus {
  const accelerator = info.accelerator === 'ACCELERATOR_KVM' ? 'kvm' : 'tcg';
  const network = nodeNetwork(info.network);
  return {
    capacity: { cpu: Number(info.capacity?.cpus ?? 0), memory: `${info.capacity?.memoryMib ?? 0}Mi` },
    allocatable: {
      cpu: Number(info.allocatable?.cpus ?? 0),
      memory: `${info.allocatable?.memoryMib ?? 0}Mi`,
    },
    accelerator,
    cpuModel: info.cpuModel,
    qemuVersion: info.qemuVersion,
    endpoint,
    vmCount: Number(info.guestCount ?? 0),
    ...(network ? { network } : {}),
    heartbeatTime: metaTime(now),
    conditions: setCondition(
      previousConditions,
      {
        type: HYPERVISOR_NODE_CONDITIONS.Ready,
        status: readiness.ready ? 'True' : 'False',
        reason: readiness.reason,
        message: readiness.message,
      },
      now,
    ),
  };
}
