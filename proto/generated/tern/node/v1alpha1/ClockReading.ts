// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface ClockReading {
  /**
   * The daemon's wall clock (CLOCK_REALTIME, the clock QMP's event timestamps use), microseconds since the epoch.
   */
  'unixUs'?: (number | string | Long);
}

export interface ClockReading__Output {
  /**
   * The daemon's wall clock (CLOCK_REALTIME, the clock QMP's event timestamps use), microseconds since the epoch.
   */
  'unixUs': (number);
}
