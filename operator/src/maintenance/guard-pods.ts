// Guard pods, without I/O: one small pod per running VM, bound to the Kubernetes Node its ownership record names,
// so that `kubectl drain` sees the VM as a workload of that node and asks, through the Eviction API, for it to go.
// The eviction webhook (eviction.ts) answers for the VM. KubeVirt users know the shape: a virt-launcher pod per VM
// and virt-api's pod-eviction webhook (docs/node-maintenance.md says why this and not a PodDisruptionBudget).
//
// A guard pod lives in the operator's namespace, not the VM's: the webhook then only has to see evictions in that
// one namespace, so an operator that is down never blocks the evictions of anyone else's pods. Its controller is
// the HypervisorNode (cluster-scoped, so a valid owner from any namespace): `kubectl drain` evicts pods with a
// controller, and skips only DaemonSet ones. Each guard gets a fresh name (generateName): a drain that retries an
// eviction by name then never hits the guard the VM got on its next node.
import type { HypervisorNode, VirtualMachine, VirtualMachinePhase } from '../../../crds/index.js';
import type { KubeObject, ObjectMeta } from '../../../kube/types.js';

/** On every guard pod: the VM it stands for (namespace, name, UID). */
export const GUARD_VM_NAMESPACE_LABEL = 'tern.dev/guard-vm-namespace';
export const GUARD_VM_NAME_LABEL = 'tern.dev/guard-vm-name';
export const GUARD_VM_UID_LABEL = 'tern.dev/guard-vm-uid';
/** Selects every guard pod (the operator's pod informer and the webhook). */
export const GUARD_SELECTOR = GUARD_VM_UID_LABEL;
/** On a guard pod: `namespace/name` of its VM, for people reading `kubectl describe pod`. */
export const GUARD_VM_ANNOTATION = 'tern.dev/virtualmachine';

export interface Pod extends KubeObject {
  spec?: { nodeName?: string; [field: string]: unknown };
  status?: { phase?: string };
}

export interface KubeNode extends KubeObject {
  spec?: { unschedulable?: boolean };
}

/** The phases in which a guest runs (or may run) on the node the record names: a drain must wait for it. */
const GUARDED_PHASES: ReadonlySet<VirtualMachinePhase | undefined> = new Set([
  'Starting',
  'Running',
  'Migrating',
  'Stopping',
  'Unknown',
]);

/** The node the VM's guard pod belongs on; undefined when it needs none. */
export function guardedNode(vm: VirtualMachine | undefined): string | undefined {
  if (!vm || vm.metadata.deletionTimestamp) return undefined;
  const node = vm.status?.node;
  return node && GUARDED_PHASES.has(vm.status?.phase) ? node : undefined;
}

export function guardVmKey(pod: Pod): string | undefined {
  const labels = pod.metadata.labels ?? {};
  const namespace = labels[GUARD_VM_NAMESPACE_LABEL];
  const name = labels[GUARD_VM_NAME_LABEL];
  return namespace && name ? `${namespace}/${name}` : undefined;
}

export interface GuardPodOptions {
  namespace: string;
  image: string;
}

/** The guard pod for `vm` on `node` (a HypervisorNode and the Kubernetes Node of the same name). */
export function guardPod(vm: VirtualMachine, node: HypervisorNode, options: GuardPodOptions): Pod {
  const metadata: ObjectMeta = {
    // A VM name is a DNS-1123 label (at most 63 characters): the pod name stays well within 253.
    generateName: `vm-${vm.metadata.name}-`,
    namespace: options.namespace,
    labels: {
      'app.kubernetes.io/name': 'tern',
      'app.kubernetes.io/component': 'vm-guard',
      [GUARD_VM_NAMESPACE_LABEL]: vm.metadata.namespace!,
      [GUARD_VM_NAME_LABEL]: vm.metadata.name!,
      [GUARD_VM_UID_LABEL]: vm.metadata.uid!,
    },
    annotations: { [GUARD_VM_ANNOTATION]: `${vm.metadata.namespace}/${vm.metadata.name}` },
    ownerReferences: [
      {
        apiVersion: 'tern.dev/v1alpha1',
        kind: 'HypervisorNode',
        name: node.metadata.name!,
        uid: node.metadata.uid!,
        controller: true,
        blockOwnerDeletion: false,
      },
    ],
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      nodeName: node.metadata.name,
      // It holds nothing: once the webhook lets it go (the VM has left) it goes at once.
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // Like a DaemonSet pod: no taint (a cordon's, a NotReady node's) moves it; only the VM's leaving does.
      tolerations: [{ operator: 'Exists' }],
      securityContext: { runAsNonRoot: true, runAsUser: 65535, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'guard',
          image: options.image,
          resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

export interface GuardPlan {
  /** The node a guard must be created on; undefined when one is there already or none is wanted. */
  createOn?: string;
  /** Guards to delete: on another node than the record's, for another incarnation of the VM, or not wanted. */
  remove: Pod[];
}

/** What to do about the guards of the VM `key` (`vm` undefined: it no longer exists). */
export function planGuards(vm: VirtualMachine | undefined, guards: readonly Pod[]): GuardPlan {
  const node = guardedNode(vm);
  const uid = vm?.metadata.uid;
  const keep = guards.filter(
    (pod) =>
      node !== undefined &&
      !pod.metadata.deletionTimestamp &&
      pod.spec?.nodeName === node &&
      pod.metadata.labels?.[GUARD_VM_UID_LABEL] === uid,
  );
  // Two for one node (a create whose answer was lost, then a retry): keep the oldest.
  const age = (pod: Pod) => `${pod.metadata.creationTimestamp ?? ''} ${pod.metadata.name ?? ''}`;
  const kept = [...keep].sort((a, b) => age(a).localeCompare(age(b))).slice(0, 1);
  const remove = guards.filter((pod) => !kept.includes(pod) && !pod.metadata.deletionTimestamp);
  return { createOn: node !== undefined && kept.length === 0 ? node : undefined, remove };
}
