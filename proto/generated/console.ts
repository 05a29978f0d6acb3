import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AttachRequest as _tern_console_v1alpha1_AttachRequest, AttachRequest__Output as _tern_console_v1alpha1_AttachRequest__Output } from './tern/console/v1alpha1/AttachRequest.js';
import type { ConsoleClient as _tern_console_v1alpha1_ConsoleClient, ConsoleDefinition as _tern_console_v1alpha1_ConsoleDefinition } from './tern/console/v1alpha1/Console.js';
import type { ConsoleRequest as _tern_console_v1alpha1_ConsoleRequest, ConsoleRequest__Output as _tern_console_v1alpha1_ConsoleRequest__Output } from './tern/console/v1alpha1/ConsoleRequest.js';
import type { ConsoleResponse as _tern_console_v1alpha1_ConsoleResponse, ConsoleResponse__Output as _tern_console_v1alpha1_ConsoleResponse__Output } from './tern/console/v1alpha1/ConsoleResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tern: {
    console: {
      v1alpha1: {
        AttachRequest: MessageTypeDefinition<_tern_console_v1alpha1_AttachRequest, _tern_console_v1alpha1_AttachRequest__Output>
        Console: SubtypeConstructor<typeof grpc.Client, _tern_console_v1alpha1_ConsoleClient> & { service: _tern_console_v1alpha1_ConsoleDefinition }
        ConsoleRequest: MessageTypeDefinition<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleRequest__Output>
        ConsoleResponse: MessageTypeDefinition<_tern_console_v1alpha1_ConsoleResponse, _tern_console_v1alpha1_ConsoleResponse__Output>
      }
    }
  }
}

