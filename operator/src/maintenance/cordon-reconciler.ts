// Applies the cordon mirror (cordon-mirror.ts) for one machine, keyed by its name: HypervisorNode and Kubernetes
// Node changes both wake it. The Node is written first and the HypervisorNode (with the record) last, under a
// resourceVersion precondition, so that a change made meanwhile is planned again rather than overwritten.
import type { HypervisorNode } from '../../../crds/index.js';
import { HypervisorNodes } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import { Nodes } from '../../../kube/resources.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import { retryOnConflict } from '../runtime/conflict.js';
import type { Informer } from '../runtime/informer.js';
import { planCordonMirror } from './cordon-mirror.js';
import type { KubeNode } from './guard-pods.js';

const RETRIES = 5;

export interface CordonMirrorOptions {
  client: KubeClient;
  /** Only to skip, without API calls, machines whose cached sides agree with the record (every heartbeat wakes it). */
  nodes: Informer<HypervisorNode>;
  kubeNodes: Informer<KubeNode>;
}

export class CordonMirrorReconciler {
  constructor(private readonly options: CordonMirrorOptions) {}

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const cached = this.options.nodes.get(request.key);
    const kubeCached = this.options.kubeNodes.get(request.key);
    if (!cached || !kubeCached) return;
    const cachedPlan = planCordonMirror({ node: cached, kubeCordoned: !!kubeCached.spec?.unschedulable });
    if (cachedPlan.kubeCordon === undefined && !cachedPlan.hypervisorNodePatch) return;
    return retryOnConflict(RETRIES, () => this.mirror(request.name, context));
  };

  private async mirror(name: string, context: ReconcileContext): Promise<ReconcileResult> {
    const { client } = this.options;
    let node: HypervisorNode;
    let kubeNode: KubeNode;
    try {
      node = await client.get<HypervisorNode>(HypervisorNodes, name);
      kubeNode = await client.get<KubeNode>(Nodes, name);
    } catch (error) {
      // Only a machine known to both sides is mirrored.
      if (isNotFound(error)) return;
      throw error;
    }
    const plan = planCordonMirror({ node, kubeCordoned: !!kubeNode.spec?.unschedulable });
    if (plan.kubeCordon !== undefined) {
      await client.patch(Nodes, name, undefined, {
        type: 'merge',
        body: { spec: { unschedulable: plan.kubeCordon || null } },
      });
      context.logger.info({ cordoned: plan.kubeCordon }, 'Node cordon follows the HypervisorNode');
    }
    if (plan.hypervisorNodePatch) {
      await client.patch(
        HypervisorNodes,
        name,
        undefined,
        { type: 'merge', body: plan.hypervisorNodePatch },
        { resourceVersion: node.metadata.resourceVersion },
      );
      if (plan.hypervisorNodePatch.spec)
        context.logger.info(
          { spec: plan.hypervisorNodePatch.spec },
          'HypervisorNode cordon follows the Node',
        );
    }
  }
}
