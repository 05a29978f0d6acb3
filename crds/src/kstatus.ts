// The status conditions every Tern kind carries for GitOps tools (docs/gitops.md): Ready, and kstatus's
// Reconciling and Stalled (sigs.k8s.io/cli-utils pkg/kstatus, the library Flux and kpt use). Reconciling and
// Stalled follow kstatus's abnormal-true polarity: present (status True) only while they hold, absent otherwise.
// status.observedGeneration is the generation these conditions describe.

export const KSTATUS_CONDITIONS = {
  Ready: 'Ready',
  /** The operator is still acting on the spec (kstatus: InProgress); reason says what it waits for. */
  Reconciling: 'Reconciling',
  /** The spec cannot be reached without someone acting (kstatus: Failed); reason says why. */
  Stalled: 'Stalled',
} as const;

/**
 * VirtualMachine: True while the running guest's cpu or memory differs from the spec (a change that takes effect
 * only when the guest starts again); absent otherwise.
 */
export const RESTART_REQUIRED_CONDITION = 'RestartRequired';
