import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { GuestControlHandlers, GuestEvent, NodeInfo } from '../../../proto/index.js';
import {
  GuestExistsError,
  GuestNotFoundError,
  GuestPhaseError,
  GuestStartError,
  type GuestSupervisor,
} from '../runtime/supervisor.js';
import type { GuestStatus } from '../model/guest.js';
import type { DaemonMetrics } from '../metrics.js';
import { fromWireSpec, toWireGuest } from '../rpc/guest-wire.js';
import { GuestSpecError } from '../qemu/validate.js';
import { checkClientIdentity } from '../rpc/identity.js';

/** What the control service uses of the guest supervisor. */
export type GuestRuntime = Pick<
  GuestSupervisor,
  'create' | 'start' | 'stop' | 'delete' | 'get' | 'list' | 'on' | 'off'
>;

/** An error carrying the gRPC status it should be reported with. */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export interface ControlServiceOptions {
  runtime: GuestRuntime;
  nodeInfo: () => NodeInfo;
  operatorIdentities: readonly string[];
  defaultStopTimeoutMs: number;
  metrics: DaemonMetrics;
  logger: Logger;
}

export interface ControlService {
  handlers: GuestControlHandlers;
  /** Ends every open WatchGuests stream, so that the server can shut down. */
  closeWatches(): void;
}

/** Events a WatchGuests stream may hold unsent (objectMode: writableLength counts messages). */
const MAX_BUFFERED_WATCH_EVENTS = 1024;

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

export function createControlService(options: ControlServiceOptions): ControlService {
  const { runtime, logger, metrics } = options;
  const watches = new Set<grpc.ServerWritableStream<unknown, GuestEvent>>();

  function authorize(method: string, call: AnyCall): grpc.ServiceError | undefined {
    const check = checkClientIdentity(call.getAuthContext().sslPeerCertificate, options.operatorIdentities);
    if (check.allowed) return undefined;
    logger.warn({ method, peer: call.getPeer(), reason: check.reason }, 'control call refused');
    return serviceError(grpc.status.PERMISSION_DENIED, check.reason);
  }

  function toServiceError(method: string, error: unknown): grpc.ServiceError {
    const code = statusOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (code === grpc.status.INTERNAL || code === grpc.status.ABORTED)
      logger.error({ method, err: error }, 'control call failed');
    return serviceError(code, message);
  }

  function observe(method: string, started: bigint, code: grpc.status): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.rpcDuration.observe({ method, code: grpc.status[code] }, seconds);
  }

  function unary<Request, Response>(
    method: string,
    implementation: (request: Request) => Promise<Response> | Response,
  ): grpc.handleUnaryCall<Request, Response> {
    return (call, callback) => {
      const started = process.hrtime.bigint();
      const refused = authorize(method, call as AnyCall);
      if (refused) {
        observe(method, started, refused.code);
        callback(refused);
        return;
      }
      Promise.resolve()
        .then(() => implementation(call.request))
        .then(
          (response) => {
            observe(method, started, grpc.status.OK);
            callback(null, response);
          },
          (error: unknown) => {
            const failure = toServiceError(method, error);
            observe(method, started, failure.code);
            callback(failure);
          },
        );
    };
  }

  function existing(name: string): GuestStatus {
    const status = runtime.get(name);
    if (!status) throw new RpcError(grpc.status.NOT_FOUND, `guest ${JSON.stringify(name)} not found`);
    return status;
  }

  const watchGuests: grpc.handleServerStreamingCall<unknown, GuestEvent> = (call) => {
    const started = process.hrtime.bigint();
    const refused = authorize('WatchGuests', call as AnyCall);
    if (refused) {
      observe('WatchGuests', started, refused.code);
      // grpc-js turns an 'error' on a server stream into the call's final status.
      call.emit('error', refused);
      return;
    }
    // The last status sent per guest: decides ADDED vs MODIFIED, and is what a DELETED event carries.
    const known = new Map<string, GuestStatus>();
    // A watcher that stops reading must not make the daemon buffer without bound: it is cut off and can
    // re-watch (it gets the full list again).
    const send = (event: GuestEvent): void => {
      if (call.writableLength >= MAX_BUFFERED_WATCH_EVENTS) {
        call.emit('error', serviceError(grpc.status.RESOURCE_EXHAUSTED, 'watcher too slow; watch again'));
        return;
      }
      call.write(event);
    };
    const onStatus = (status: GuestStatus): void => {
      send({ type: known.has(status.name) ? 'TYPE_MODIFIED' : 'TYPE_ADDED', guest: toWireGuest(status) });
      known.set(status.name, status);
    };
    const onDeleted = (name: string): void => {
      const last = known.get(name);
      if (!last) return;
      known.delete(name);
      send({ type: 'TYPE_DELETED', guest: toWireGuest(last) });
    };
    // Subscribing and listing happen in one synchronous step: no change can fall between them.
    runtime.on('status', onStatus);
    runtime.on('deleted', onDeleted);
    for (const status of runtime.list()) {
      known.set(status.name, status);
      call.write({ type: 'TYPE_ADDED', guest: toWireGuest(status) });
    }
    call.write({ type: 'TYPE_SYNCED' });
    watches.add(call);
    const finish = (code: grpc.status): void => {
      if (!watches.delete(call)) return;
      runtime.off('status', onStatus);
      runtime.off('deleted', onDeleted);
      observe('WatchGuests', started, code);
    };
    call.on('cancelled', () => finish(grpc.status.CANCELLED));
    call.on('close', () => finish(grpc.status.OK));
    call.on('error', (error: Partial<grpc.ServiceError>) => finish(error.code ?? grpc.status.INTERNAL));
  };

  const handlers: GuestControlHandlers = {
    CreateGuest: unary('CreateGuest', async (request) => {
      if (!request.spec) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'spec is required');
      const spec = fromWireSpec(request.spec);
      if (runtime.get(spec.name))
        throw new RpcError(grpc.status.ALREADY_EXISTS, `guest ${JSON.stringify(spec.name)} already exists`);
      const status = await runtime.create(spec);
      logger.info({ guest: spec.name, uuid: spec.uuid, phase: status.phase }, 'guest created');
      return toWireGuest(status);
    }),
    StartGuest: unary('StartGuest', async (request) => {
      existing(request.name);
      const status = await runtime.start(request.name);
      logger.info({ guest: request.name, phase: status.phase, pid: status.pid }, 'guest started');
      return toWireGuest(status);
    }),
    StopGuest: unary('StopGuest', async (request) => {
      existing(request.name);
      const timeoutMs = request.timeoutMs || options.defaultStopTimeoutMs;
      const status = await runtime.stop(request.name, { timeoutMs });
      logger.info({ guest: request.name, phase: status.phase, timeoutMs }, 'guest stopped');
      return toWireGuest(status);
    }),
    DeleteGuest: unary('DeleteGuest', async (request) => {
      existing(request.name);
      await runtime.delete(request.name, { timeoutMs: options.defaultStopTimeoutMs });
      logger.info({ guest: request.name }, 'guest deleted');
      return {};
    }),
    GetGuest: unary('GetGuest', (request) => toWireGuest(existing(request.name))),
    ListGuests: unary('ListGuests', () => ({ guests: runtime.list().map(toWireGuest) })),
    WatchGuests: watchGuests,
    GetNodeInfo: unary('GetNodeInfo', () => options.nodeInfo()),
  };

  return {
    handlers,
    closeWatches() {
      for (const call of [...watches]) call.end();
    },
  };
}

function statusOf(error: unknown): grpc.status {
  if (error instanceof RpcError) return error.code;
  if (error instanceof GuestSpecError) return grpc.status.INVALID_ARGUMENT;
  // A concurrent CreateGuest of the same name won the race past the existence check in CreateGuest.
  if (error instanceof GuestExistsError) return grpc.status.ALREADY_EXISTS;
  if (error instanceof GuestPhaseError) return grpc.status.FAILED_PRECONDITION;
  // Deleted by a call that ran between this one's existence check and its turn on the guest.
  if (error instanceof GuestNotFoundError) return grpc.status.NOT_FOUND;
  // QEMU did not come up; the guest stays listed as Failed with the reason.
  if (error instanceof GuestStartError) return grpc.status.ABORTED;
  return grpc.status.INTERNAL;
}

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}
