// MigrationPolicy status: the policy has nothing to run, but GitOps tools (docs/gitops.md) and people need to see
// that the operator read its latest generation. Its spec is fully checked by the CRD's schema and CEL rules, so
// every stored policy is in force: Ready=True (Accepted) with status.observedGeneration = metadata.generation,
// written through the status subresource. The policy is read from the informer (the operator may list and watch
// policies, not get them); a write from a stale copy fails on its resourceVersion and is retried with the next
// one. The Migration reconciler reads the policies from its informer when a
// Migration is admitted and when its run starts.
import type { MigrationPolicy, MigrationPolicyStatus } from '../../../crds/index.js';
import { KSTATUS_CONDITIONS, MigrationPolicies } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { conditionsEqual, setCondition } from '../../../kube/conditions.js';
import type { ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import { withKstatus } from '../kstatus/conditions.js';

export const POLICY_ACCEPTED_MESSAGE =
  'in force: its settings and ceilings apply to Migrations of the VirtualMachines its selectors match, from ' +
  'their admission or their next run';

export class MigrationPolicyReconciler {
  constructor(
    private readonly options: {
      client: KubeClient;
      policies: Informer<MigrationPolicy>;
      now?: () => Date;
    },
  ) {}

  readonly reconcile = async (request: ReconcileRequest): Promise<ReconcileResult> => {
    const { client } = this.options;
    const policy = this.options.policies.get(request.key);
    if (!policy) return;
    const generation = policy.metadata.generation;
    const now = this.options.now?.() ?? new Date();
    const current = policy.status ?? {};
    const conditions = withKstatus(
      setCondition(
        current.conditions,
        {
          type: KSTATUS_CONDITIONS.Ready,
          status: 'True',
          reason: 'Accepted',
          message: POLICY_ACCEPTED_MESSAGE,
          observedGeneration: generation,
        },
        now,
      ),
      {},
      generation,
      now,
    );
    const next: MigrationPolicyStatus = { ...current, conditions, observedGeneration: generation };
    if (current.observedGeneration === generation && conditionsEqual(current.conditions, conditions)) return;
    // A conflict (a stale copy, or another write in between) fails this reconcile; the queue retries it.
    await client.replaceStatus<MigrationPolicy>(MigrationPolicies, { ...policy, status: next });
  };
}
