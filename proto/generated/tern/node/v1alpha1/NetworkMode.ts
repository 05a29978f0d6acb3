// Original file: proto/tern/node/v1alpha1/control.proto

export const NetworkMode = {
  NETWORK_MODE_UNSPECIFIED: 'NETWORK_MODE_UNSPECIFIED',
  /**
   * Each NIC is a tap on the node's Linux bridge; a guest keeps its MAC and IP across nodes.
   */
  NETWORK_MODE_BRIDGE: 'NETWORK_MODE_BRIDGE',
  /**
   * QEMU user-mode networking (the daemon may not create taps): see NetworkInfo.limitation.
   */
  NETWORK_MODE_USER: 'NETWORK_MODE_USER',
} as const;

export type NetworkMode =
  | 'NETWORK_MODE_UNSPECIFIED'
  | 0
  /**
   * Each NIC is a tap on the node's Linux bridge; a guest keeps its MAC and IP across nodes.
   */
  | 'NETWORK_MODE_BRIDGE'
  | 1
  /**
   * QEMU user-mode networking (the daemon may not create taps): see NetworkInfo.limitation.
   */
  | 'NETWORK_MODE_USER'
  | 2

export type NetworkMode__Output = typeof NetworkMode[keyof typeof NetworkMode]
