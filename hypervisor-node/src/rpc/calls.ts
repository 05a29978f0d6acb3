// The gRPC plumbing both daemon services (GuestControl, Migration) share: only the operator may call them, a call
// that changes a guest or a migration must carry a fencing token no older than the highest seen (fencing.ts),
// every call's latency is recorded, and an error becomes a gRPC status (an RpcError's own, a domain error's from
// the service's table, anything else INTERNAL).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { fencingTokenOf } from '../../../proto/index.js';
import { RpcError, serviceError } from './errors.js';
import type { FencingStore } from './fencing.js';
import { checkClientIdentity } from './identity.js';
import type { RpcMetrics } from './metrics.js';

type ErrorClass = abstract new (...args: never[]) => Error;

/** The gRPC status of each domain error a service's calls may throw; the first class the error is an instance of. */
export type ErrorStatuses = ReadonlyArray<readonly [ErrorClass, grpc.status]>;

export interface OperatorCallsOptions {
  /** Names the service in log lines: 'control', 'migration'. */
  service: string;
  operatorIdentities: readonly string[];
  errorStatuses: ErrorStatuses;
  /** The node's highest fencing token: every call records a higher one, a guest-changing call with a lower fails. */
  fencing: FencingStore;
  metrics: RpcMetrics;
  logger: Logger;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** Handlers for the calls of one service, all of which are the operator's to make. */
export class OperatorCalls {
  constructor(private readonly options: OperatorCallsOptions) {}

  /** A call that changes a guest or a migration: refused when its fencing token is older than the node's. */
  unary<Request, Response>(
    method: string,
    implementation: (request: Request) => Promise<Response> | Response,
  ): grpc.handleUnaryCall<Request, Response> {
    return this.handle(method, implementation, true);
  }

  /** A call that only reads: it records a higher fencing token, and is answered whatever its token. */
  read<Request, Response>(
    method: string,
    implementation: (request: Request) => Promise<Response> | Response,
  ): grpc.handleUnaryCall<Request, Response> {
    return this.handle(method, implementation, false);
  }

  private handle<Request, Response>(
    method: string,
    implementation: (request: Request) => Promise<Response> | Response,
    changesGuest: boolean,
  ): grpc.handleUnaryCall<Request, Response> {
    const { metrics } = this.options;
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const refused = this.refuse(method, call as AnyCall);
      if (refused) {
        metrics.observe(method, started, refused.code);
        callback(refused);
        return;
      }
      this.fenced(call.metadata, changesGuest, () => implementation(call.request)).then(
        (response) => {
          metrics.observe(method, started, grpc.status.OK);
          callback(null, response);
        },
        (error: unknown) => {
          const failure = this.toServiceError(method, error);
          metrics.observe(method, started, failure.code);
          callback(failure);
        },
      );
    };
  }

  /**
   * Admits a server-streaming call (a read), and records its latency when it ends: cancelled, closed, or with the
   * status of an 'error' emitted on it. A caller that is not the operator gets PERMISSION_DENIED: false, the call is
   * over. A higher fencing token is recorded, without holding the stream up.
   */
  admitStream(method: string, call: grpc.ServerWritableStream<unknown, unknown>): boolean {
    const started = process.hrtime.bigint();
    let ended = false;
    const end = (code: grpc.status): void => {
      if (ended) return;
      ended = true;
      this.options.metrics.observe(method, started, code);
    };
    call.on('cancelled', () => end(grpc.status.CANCELLED));
    call.on('close', () => end(grpc.status.OK));
    call.on('error', (error: Partial<grpc.ServiceError>) => end(error.code ?? grpc.status.INTERNAL));
    const refused = this.refuse(method, call);
    // grpc-js turns an 'error' on a server stream into the call's final status.
    if (refused) call.emit('error', refused);
    else {
      this.fenced(call.metadata, false, () => undefined).catch((error: unknown) =>
        this.options.logger.error({ method, err: error }, 'could not record the fencing token'),
      );
    }
    return refused === undefined;
  }

  /**
   * Runs `call` under the fencing rules (FencingStore.run) with the call's token; a call without one counts as the
   * unfenced operator's, 0.
   */
  private async fenced<T>(
    metadata: grpc.Metadata,
    changesGuest: boolean,
    call: () => Promise<T> | T,
  ): Promise<T> {
    const token = fencingTokenOf(metadata);
    if (token === undefined) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, 'the fencing token must be a non-negative integer');
    }
    return this.options.fencing.run(token, changesGuest, call);
  }

  /** What a call that threw `error` is answered with; a failure of the daemon's own (INTERNAL, ABORTED) is logged. */
  toServiceError(method: string, error: unknown): grpc.ServiceError {
    const { service, logger } = this.options;
    const code = this.statusOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (code === grpc.status.INTERNAL || code === grpc.status.ABORTED)
      logger.error({ method, err: error }, `${service} call failed`);
    // A stale fencing token or epoch: an operator that is no longer the leader still calls.
    else if (code === grpc.status.PERMISSION_DENIED)
      logger.warn({ method, message }, `${service} call refused`);
    else logger.info({ method, code: grpc.status[code], message }, `${service} call refused`);
    return serviceError(code, message, error instanceof RpcError ? error.metadata : undefined);
  }

  private statusOf(error: unknown): grpc.status {
    if (error instanceof RpcError) return error.code;
    for (const [errorClass, code] of this.options.errorStatuses) if (error instanceof errorClass) return code;
    return grpc.status.INTERNAL;
  }

  /** A PERMISSION_DENIED error when the caller is not the operator; undefined when it is. */
  private refuse(method: string, call: AnyCall): grpc.ServiceError | undefined {
    const { service, logger, operatorIdentities } = this.options;
    const check = checkClientIdentity(call.getAuthContext().sslPeerCertificate, operatorIdentities);
    if (check.allowed) return undefined;
    logger.warn({ method, peer: call.getPeer(), reason: check.reason }, `${service} call refused`);
    return serviceError(grpc.status.PERMISSION_DENIED, check.reason);
  }
}
