// Original file: proto/tern/node/v1alpha1/control.proto

import type { Long } from '@grpc/proto-loader';

export interface Resources {
  'cpus'?: (number);
  'memoryMib'?: (number | string | Long);
}

export interface Resources__Output {
  'cpus': (number);
  'memoryMib': (number);
}
