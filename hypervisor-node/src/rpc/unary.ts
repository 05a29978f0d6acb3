// gRPC plumbing of the Migration service: the operator-only check on every call (as for GuestControl) and the
// mapping of errors to status codes.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { GuestStartError } from '../runtime/supervisor.js';
import { GuestSpecError } from '../qemu/validate.js';
import { RpcError } from '../control/service.js';
import { checkClientIdentity } from './identity.js';
import { MigrationPolicyError } from '../migration/engine/policy.js';

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

export function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export const failedPrecondition = (message: string): RpcError =>
  new RpcError(grpc.status.FAILED_PRECONDITION, message);

function statusOf(error: unknown): grpc.status {
  if (error instanceof RpcError) return error.code;
  if (error instanceof GuestSpecError || error instanceof MigrationPolicyError)
    return grpc.status.INVALID_ARGUMENT;
  if (error instanceof GuestStartError) return grpc.status.ABORTED;
  return grpc.status.INTERNAL;
}

export class MigrationRpc {
  constructor(
    private readonly operatorIdentities: readonly string[],
    private readonly logger: Logger,
  ) {}

  /** A PERMISSION_DENIED error when the caller is not the operator; undefined when it is. */
  refuse(method: string, call: AnyCall): grpc.ServiceError | undefined {
    const check = checkClientIdentity(call.getAuthContext().sslPeerCertificate, this.operatorIdentities);
    if (check.allowed) return undefined;
    this.logger.warn({ method, peer: call.getPeer(), reason: check.reason }, 'migration call refused');
    return serviceError(grpc.status.PERMISSION_DENIED, check.reason);
  }

  unary<Request, Response>(
    method: string,
    implementation: (request: Request) => Promise<Response> | Response,
  ): grpc.handleUnaryCall<Request, Response> {
    return (call, callback) => {
      const refused = this.refuse(method, call as AnyCall);
      if (refused) return callback(refused);
      Promise.resolve()
        .then(() => implementation(call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            const code = statusOf(error);
            const message = error instanceof Error ? error.message : String(error);
            if (code === grpc.status.INTERNAL)
              this.logger.error({ method, err: error }, 'migration call failed');
            else this.logger.info({ method, code: grpc.status[code], message }, 'migration call refused');
            callback(serviceError(code, message));
          },
        );
    };
  }
}
