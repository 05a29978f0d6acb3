// The GuestControl gRPC service (proto/tern/node/v1alpha1/control.proto) over the guest supervisor.
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
import type { QemuUser } from '../qemu/run-as.js';
import { GuestSpecError } from '../qemu/validate.js';
import { OperatorCalls, type ErrorStatuses } from '../rpc/calls.js';
import type { FencingStore } from '../rpc/fencing.js';
import { invalidArgument, RpcError, serviceError } from '../rpc/errors.js';
import { fromWireSpec, localDiskImages, toWireGuest } from '../rpc/guest-wire.js';
import type { RpcMetrics } from '../rpc/metrics.js';
import type { ConsoleHub } from '../console/hub.js';
import { attachConsoleHandler } from '../console/rpc.js';

/** What the control service uses of the guest supervisor. */
export type GuestRuntime = Pick<
  GuestSupervisor,
  'create' | 'start' | 'stop' | 'delete' | 'get' | 'list' | 'on' | 'off'
>;

const ERROR_STATUSES: ErrorStatuses = [
  [GuestSpecError, grpc.status.INVALID_ARGUMENT],
  // A concurrent CreateGuest of the same name won the race past the existence check in CreateGuest.
  [GuestExistsError, grpc.status.ALREADY_EXISTS],
  [GuestPhaseError, grpc.status.FAILED_PRECONDITION],
  // Deleted by a call that ran between this one's existence check and its turn on the guest.
  [GuestNotFoundError, grpc.status.NOT_FOUND],
  // QEMU did not come up; the guest stays listed as Failed with the reason.
  [GuestStartError, grpc.status.ABORTED],
];

export interface ControlServiceOptions {
  runtime: GuestRuntime;
  nodeInfo: () => NodeInfo;
  operatorIdentities: readonly string[];
  fencing: FencingStore;
  defaultStopTimeoutMs: number;
  metrics: RpcMetrics;
  logger: Logger;
  /** Who QEMU runs as: GetGuest hashes a local overlay's base as this user (localDiskImages). */
  qemuUser?: QemuUser;
  /** The guests' consoles (AttachConsole), and where each guest's console log is. */
  consoles: ConsoleHub;
  consoleLogOf: (name: string) => string;
}

export interface ControlService {
  handlers: GuestControlHandlers;
  /** Ends every open WatchGuests stream and console session, so that the server can shut down. */
  closeWatches(): void;
}

/** Events a WatchGuests stream may hold unsent (objectMode: writableLength counts messages). */
const MAX_BUFFERED_WATCH_EVENTS = 1024;

export function createControlService(options: ControlServiceOptions): ControlService {
  const { runtime, logger } = options;
  const watches = new Set<grpc.ServerWritableStream<unknown, GuestEvent>>();
  const calls = new OperatorCalls({
    service: 'control',
    operatorIdentities: options.operatorIdentities,
    errorStatuses: ERROR_STATUSES,
    fencing: options.fencing,
    metrics: options.metrics,
    logger,
  });

  function existing(name: string): GuestStatus {
    const status = runtime.get(name);
    if (!status) throw new RpcError(grpc.status.NOT_FOUND, `guest ${JSON.stringify(name)} not found`);
    return status;
  }

  const watchGuests: grpc.handleServerStreamingCall<unknown, GuestEvent> = (call) => {
    if (!calls.admitStream('WatchGuests', call)) return;
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
    const finish = (): void => {
      if (!watches.delete(call)) return;
      runtime.off('status', onStatus);
      runtime.off('deleted', onDeleted);
    };
    call.on('cancelled', finish);
    call.on('close', finish);
    call.on('error', finish);
  };

  const handlers: GuestControlHandlers = {
    CreateGuest: calls.unary('CreateGuest', async (request) => {
      if (!request.spec) throw invalidArgument('spec is required');
      const spec = fromWireSpec(request.spec);
      if (runtime.get(spec.name))
        throw new RpcError(grpc.status.ALREADY_EXISTS, `guest ${JSON.stringify(spec.name)} already exists`);
      const status = await runtime.create(spec);
      logger.info({ guest: spec.name, uuid: spec.uuid, phase: status.phase }, 'guest created');
      return toWireGuest(status);
    }),
    StartGuest: calls.unary('StartGuest', async (request) => {
      existing(request.name);
      const status = await runtime.start(request.name);
      logger.info({ guest: request.name, phase: status.phase, pid: status.pid }, 'guest started');
      return toWireGuest(status);
    }),
    StopGuest: calls.unary('StopGuest', async (request) => {
      existing(request.name);
      const timeoutMs = request.timeoutMs || options.defaultStopTimeoutMs;
      const status = await runtime.stop(request.name, { timeoutMs });
      logger.info({ guest: request.name, phase: status.phase, timeoutMs }, 'guest stopped');
      return toWireGuest(status);
    }),
    DeleteGuest: calls.unary('DeleteGuest', async (request) => {
      existing(request.name);
      await runtime.delete(request.name, { timeoutMs: options.defaultStopTimeoutMs });
      logger.info({ guest: request.name }, 'guest deleted');
      return {};
    }),
    GetGuest: calls.read('GetGuest', async (request) => {
      const status = existing(request.name);
      // Only GetGuest reads the images (a migration's operator asks it before PrepareIncoming); listings stay cheap.
      return { ...toWireGuest(status), localDisks: await localDiskImages(status.spec, options.qemuUser) };
    }),
    ListGuests: calls.read('ListGuests', () => ({ guests: runtime.list().map(toWireGuest) })),
    WatchGuests: watchGuests,
    GetNodeInfo: calls.read('GetNodeInfo', () => options.nodeInfo()),
    AttachConsole: attachConsoleHandler(options.consoles, options.consoleLogOf, calls, logger),
  };

  return {
    handlers,
    closeWatches() {
      for (const call of [...watches]) call.end();
      options.consoles.close();
    },
  };
}
