// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface ConvergenceDecision {
  /**
   * 'raise-downtime', 'raise-throttle', 'start-postcopy', 'abort'.
   */
  'action'?: (string);
  'reason'?: (string);
  'round'?: (number);
  /**
   * raise-downtime: the new downtime-limit; raise-throttle: the new throttle ceiling (percent).
   */
  'downtimeLimitMs'?: (number);
  'cpuThrottleCeiling'?: (number);
  /**
   * Set when QEMU refused the action.
   */
  'error'?: (string);
  'atUnixMs'?: (number | string | Long);
}

export interface ConvergenceDecision__Output {
  /**
   * 'raise-downtime', 'raise-throttle', 'start-postcopy', 'abort'.
   */
  'action': (string);
  'reason': (string);
  'round': (number);
  /**
   * raise-downtime: the new downtime-limit; raise-throttle: the new throttle ceiling (percent).
   */
  'downtimeLimitMs': (number);
  'cpuThrottleCeiling': (number);
  /**
   * Set when QEMU refused the action.
   */
  'error': (string);
  'atUnixMs': (number);
}
