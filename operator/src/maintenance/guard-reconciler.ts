// Keeps each running VM's guard pod (guard-pods.ts) on the node its ownership record names: created once the
// record names a node that Kubernetes knows, moved (deleted, then created on the new node) after a migration, and
// deleted once the VM stopped or is gone. Keyed by the VM (`namespace/name`); before a write the guards are read
// live from the API, so that a reconcile never creates a second one because the pod informer lags behind.
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import { parseObjectKey } from '../../../kube/objects.js';
import { Pods } from '../../../kube/resources.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import {
  GUARD_VM_NAME_LABEL,
  GUARD_VM_NAMESPACE_LABEL,
  guardPod,
  guardVmKey,
  planGuards,
  type GuardPodOptions,
  type KubeNode,
  type Pod,
} from './guard-pods.js';

export interface GuardReconcilerOptions extends GuardPodOptions {
  client: KubeClient;
  vms: Informer<VirtualMachine>;
  nodes: Informer<HypervisorNode>;
  /** The guard pods (only to skip the wake-ups that change nothing). */
  pods: Informer<Pod>;
  /** Kubernetes Nodes: a guard is created only on a node that exists (a pod bound to none would stay Pending). */
  kubeNodes: Informer<KubeNode>;
}

export class GuardReconciler {
  constructor(private readonly options: GuardReconcilerOptions) {}

  /** Pod → the VM it guards. */
  readonly vmKeysForPod = (pod: Pod): string[] => {
    const key = guardVmKey(pod);
    return key ? [key] : [];
  };

  /** A Kubernetes Node that appears: the VMs recorded on it may now get their guard. */
  readonly vmKeysForKubeNode = (node: KubeNode): string[] =>
    this.options.vms
      .list()
      .filter((vm) => vm.status?.node === node.metadata.name)
      .map((vm) => `${vm.metadata.namespace}/${vm.metadata.name}`);

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const { client, namespace } = this.options;
    const { namespace: vmNamespace, name } = parseObjectKey(request.key);
    const vm = this.options.vms.get(request.key);
    // Most wake-ups (every status write of a VM) change nothing: when the cached guards are already right, no read.
    const cached = this.options.pods.list().filter((pod) => guardVmKey(pod) === request.key);
    const cachedPlan = planGuards(vm, cached);
    // A guard goes only on a node Kubernetes knows (a daemon outside Kubernetes has none).
    const canCreate = (node: string | undefined) => !!node && !!this.options.kubeNodes.get(node);
    if (!canCreate(cachedPlan.createOn) && cachedPlan.remove.length === 0) return;
    const guards = await client.list<Pod>(Pods, {
      namespace,
      labelSelector: `${GUARD_VM_NAMESPACE_LABEL}=${vmNamespace},${GUARD_VM_NAME_LABEL}=${name}`,
    });
    const plan = planGuards(vm, guards.items);
    for (const pod of plan.remove) {
      try {
        await client.delete(Pods, pod.metadata.name!, namespace, {
          preconditions: { uid: pod.metadata.uid! },
        });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      context.logger.info({ pod: pod.metadata.name, node: pod.spec?.nodeName }, 'guard pod removed');
    }
    if (!plan.createOn || !vm || !canCreate(plan.createOn)) return;
    const node = this.options.nodes.get(plan.createOn);
    if (!node) return;
    const created = await client.create<Pod>(Pods, guardPod(vm, node, this.options));
    context.logger.info({ pod: created.metadata.name, node: plan.createOn }, 'guard pod created');
  };
}
