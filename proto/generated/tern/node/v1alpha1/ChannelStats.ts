// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface ChannelStats {
  /**
   * 0 = QEMU's main channel, then multifd channels.
   */
  'index'?: (number);
  'toTargetBytes'?: (number | string | Long);
  'toSourceBytes'?: (number | string | Long);
  /**
   * The largest backlog the tunnel held towards the target.
   */
  'maxInFlightBytes'?: (number | string | Long);
}

export interface ChannelStats__Output {
  /**
   * 0 = QEMU's main channel, then multifd channels.
   */
  'index': (number);
  'toTargetBytes': (number);
  'toSourceBytes': (number);
  /**
   * The largest backlog the tunnel held towards the target.
   */
  'maxInFlightBytes': (number);
}
