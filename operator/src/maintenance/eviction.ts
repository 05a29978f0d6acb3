// The answer to an eviction of a guard pod (guard-pods.ts), without I/O: webhook.ts reads the objects and sends it.
//
// kubectl drain retries an eviction refused with 429 (TooManyRequests) every 5 s and gives up on any other refusal
// once its other evictions are done. So: a VM that can move is "still moving" (429) until it has left the node, and
// the first refusal starts the move (the HypervisorNode is drained, which is what `kubectl tern drain` does); a VM
// that will not move (evictionStrategy None, or its evacuation gave up) is a 403 naming it, so the drain stops and
// says which VM holds the node. Once the VM has left, the eviction is allowed (the operator also deletes the guard).
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { guardedNode, GUARD_VM_UID_LABEL, type Pod } from './guard-pods.js';

export interface EvictionInput {
  pod: Pod;
  /** The VM the guard stands for; undefined when it no longer exists. */
  vm: VirtualMachine | undefined;
  /** The HypervisorNode of the pod's node; undefined when there is none. */
  node: HypervisorNode | undefined;
  /** Whether the Kubernetes Node is cordoned (spec.unschedulable): a drain cordons first. */
  cordoned: boolean;
}

export type EvictionVerdict =
  | { allowed: true }
  | {
      allowed: false;
      code: 403 | 429;
      message: string;
      /** Set the HypervisorNode's spec.drain: the eviction is part of a drain and the node's VMs must go. */
      drainNode: boolean;
    };

export function decideEviction({ pod, vm, node, cordoned }: EvictionInput): EvictionVerdict {
  const podNode = pod.spec?.nodeName;
  // The guard is stale (the VM left, stopped, or is another incarnation): nothing to protect.
  if (
    !vm ||
    !podNode ||
    guardedNode(vm) !== podNode ||
    pod.metadata.labels?.[GUARD_VM_UID_LABEL] !== vm.metadata.uid
  )
    return { allowed: true };
  const name = `${vm.metadata.namespace}/${vm.metadata.name}`;
  const drainNode = cordoned && !!node && !node.spec?.drain;
  // It leaves on its own (its guard goes once it has stopped).
  if (vm.status?.phase === 'Stopping')
    return {
      allowed: false,
      code: 429,
      drainNode,
      message: `VirtualMachine ${name} is stopping on node ${podNode}`,
    };
  if ((vm.spec.evictionStrategy ?? 'LiveMigrate') !== 'LiveMigrate')
    return {
      allowed: false,
      code: 403,
      drainNode,
      message:
        `VirtualMachine ${name} has evictionStrategy None and stays on node ${podNode}: stop it ` +
        '(spec.running: false) or move it with a Migration, then drain again',
    };
  if (!node)
    return {
      allowed: false,
      code: 403,
      drainNode: false,
      message: `VirtualMachine ${name} runs on ${podNode}, which has no HypervisorNode: it cannot be moved`,
    };
  const evacuation = node.status?.evacuation;
  if (node.spec?.drain && evacuation?.phase === 'Blocked')
    return {
      allowed: false,
      code: 403,
      drainNode: false,
      message: `VirtualMachine ${name} cannot leave node ${podNode}: ${evacuation.message ?? 'evacuation blocked'}`,
    };
  if (!cordoned && !node.spec?.drain)
    return {
      allowed: false,
      code: 429,
      drainNode: false,
      message:
        `VirtualMachine ${name} is moved off node ${podNode} only when the node is drained ` +
        '(kubectl drain cordons it first)',
    };
  return {
    allowed: false,
    code: 429,
    drainNode,
    message: `VirtualMachine ${name} is being live-migrated off node ${podNode}`,
  };
}
