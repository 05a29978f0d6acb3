// Cordon mirror, without I/O: a HypervisorNode and the Kubernetes Node of the same name are one machine, so
// cordoning either shows on the other (`kubectl cordon`/`drain`/`uncordon` and `kubectl tern drain`/`uncordon`).
//
// Both sides can change at any time, so the last state the mirror agreed on is recorded on the HypervisorNode
// (annotation CORDON_SYNCED_ANNOTATION, written with its spec in one write): when the two differ, the one that
// differs from the record is the one that changed, and the other follows. Every write leaves both sides equal to
// the record, so nothing flips back and forth. On first sight (no record) the safer side wins: cordoned.
import type { HypervisorNode } from '../../../crds/index.js';

export const CORDON_SYNCED_ANNOTATION = 'tern.dev/node-cordon-synced';

export interface CordonMirrorInput {
  node: HypervisorNode;
  /** The Kubernetes Node's spec.unschedulable. */
  kubeCordoned: boolean;
}

export interface CordonMirrorPlan {
  /** The Kubernetes Node's next spec.unschedulable; undefined: leave it. */
  kubeCordon?: boolean;
  /** Merge patch for the HypervisorNode (spec and the record); undefined: nothing to write. */
  hypervisorNodePatch?: { metadata: { annotations: Record<string, string> }; spec?: Record<string, unknown> };
}

/** A HypervisorNode is cordoned by spec.unschedulable, and by spec.drain (which implies it). */
export function isCordoned(node: HypervisorNode): boolean {
  return !!(node.spec?.unschedulable || node.spec?.drain);
}

export function planCordonMirror({ node, kubeCordoned }: CordonMirrorInput): CordonMirrorPlan {
  const recorded = node.metadata.annotations?.[CORDON_SYNCED_ANNOTATION];
  const last = recorded === 'true' ? true : recorded === 'false' ? false : undefined;
  const hvCordoned = isCordoned(node);
  const record = (value: boolean, spec?: Record<string, unknown>) => ({
    metadata: { annotations: { [CORDON_SYNCED_ANNOTATION]: String(value) } },
    ...(spec ? { spec } : {}),
  });
  if (kubeCordoned === hvCordoned)
    return last === kubeCordoned ? {} : { hypervisorNodePatch: record(kubeCordoned) };
  // They differ, so exactly one of them differs from the record: that one changed.
  const nodeChanged = last === undefined ? kubeCordoned : kubeCordoned !== last;
  if (nodeChanged)
    return {
      hypervisorNodePatch: record(
        kubeCordoned,
        // `kubectl uncordon` makes the machine eligible again: not cordoned and not draining either.
        kubeCordoned ? { unschedulable: true } : { unschedulable: null, drain: null },
      ),
    };
  return { kubeCordon: hvCordoned, hypervisorNodePatch: record(hvCordoned) };
}
