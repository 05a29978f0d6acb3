// Original file: proto/tern/console/v1alpha1/console.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ConsoleRequest as _tern_console_v1alpha1_ConsoleRequest, ConsoleRequest__Output as _tern_console_v1alpha1_ConsoleRequest__Output } from '../../../tern/console/v1alpha1/ConsoleRequest.js';
import type { ConsoleResponse as _tern_console_v1alpha1_ConsoleResponse, ConsoleResponse__Output as _tern_console_v1alpha1_ConsoleResponse__Output } from '../../../tern/console/v1alpha1/ConsoleResponse.js';

export interface ConsoleClient extends grpc.Client {
  /**
   * The first request carries `attach`; later ones carry keystrokes (at most 4 KiB each). Errors: UNAUTHENTICATED,
   * PERMISSION_DENIED, NOT_FOUND (no such VM), FAILED_PRECONDITION (the VM does not run), ALREADY_EXISTS (another
   * session is attached). A session that ends because the VM stopped or was deleted ends with OK after a notice.
   */
  Attach(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleResponse__Output>;
  Attach(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleResponse__Output>;
  /**
   * The first request carries `attach`; later ones carry keystrokes (at most 4 KiB each). Errors: UNAUTHENTICATED,
   * PERMISSION_DENIED, NOT_FOUND (no such VM), FAILED_PRECONDITION (the VM does not run), ALREADY_EXISTS (another
   * session is attached). A session that ends because the VM stopped or was deleted ends with OK after a notice.
   */
  attach(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleResponse__Output>;
  attach(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleResponse__Output>;
  
}

export interface ConsoleHandlers extends grpc.UntypedServiceImplementation {
  /**
   * The first request carries `attach`; later ones carry keystrokes (at most 4 KiB each). Errors: UNAUTHENTICATED,
   * PERMISSION_DENIED, NOT_FOUND (no such VM), FAILED_PRECONDITION (the VM does not run), ALREADY_EXISTS (another
   * session is attached). A session that ends because the VM stopped or was deleted ends with OK after a notice.
   */
  Attach: grpc.handleBidiStreamingCall<_tern_console_v1alpha1_ConsoleRequest__Output, _tern_console_v1alpha1_ConsoleResponse>;
  
}

export interface ConsoleDefinition extends grpc.ServiceDefinition {
  Attach: MethodDefinition<_tern_console_v1alpha1_ConsoleRequest, _tern_console_v1alpha1_ConsoleResponse, _tern_console_v1alpha1_ConsoleRequest__Output, _tern_console_v1alpha1_ConsoleResponse__Output>
}
