// Original file: proto/tern/node/v1alpha1/control.proto

export const Accelerator = {
  ACCELERATOR_UNSPECIFIED: 'ACCELERATOR_UNSPECIFIED',
  ACCELERATOR_KVM: 'ACCELERATOR_KVM',
  ACCELERATOR_TCG: 'ACCELERATOR_TCG',
} as const;

export type Accelerator =
  | 'ACCELERATOR_UNSPECIFIED'
  | 0
  | 'ACCELERATOR_KVM'
  | 1
  | 'ACCELERATOR_TCG'
  | 2

export type Accelerator__Output = typeof Accelerator[keyof typeof Accelerator]
