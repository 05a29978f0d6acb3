// Errors a service throws to answer a call with a chosen gRPC status, and the ServiceError grpc-js sends.
import * as grpc from '@grpc/grpc-js';

/** An error carrying the gRPC status it should be reported with (and trailing metadata, if any). */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly metadata?: grpc.Metadata,
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string): RpcError =>
  new RpcError(grpc.status.INVALID_ARGUMENT, message);

export const failedPrecondition = (message: string): RpcError =>
  new RpcError(grpc.status.FAILED_PRECONDITION, message);

export function serviceError(
  code: grpc.status,
  details: string,
  metadata = new grpc.Metadata(),
): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata });
}
