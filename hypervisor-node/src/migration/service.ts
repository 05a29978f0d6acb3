// The Migration gRPC service (proto/tern/node/v1alpha1/migration.proto) over the engine. A daemon
// plays the source of some migrations and the target of others; each is kept by its id so that a retried call
// with the same id finds it again. The service never resumes a target or releases a source by itself.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { MigrationEvent, MigrationHandlers, MigrationState } from '../../../proto/index.js';
import { DNS1123_LABEL } from '../../../crds/index.js';
import { parseHostPort } from '../../../cmdline/index.js';
import { GuestStartError, type GuestSupervisor } from '../runtime/supervisor.js';
import type { Accelerator } from '../model/guest.js';
import { GuestSpecError } from '../qemu/validate.js';
import { OperatorCalls, type ErrorStatuses } from '../rpc/calls.js';
import { failedPrecondition, invalidArgument, RpcError } from '../rpc/errors.js';
import { fromWireSpec } from '../rpc/guest-wire.js';
import type { RpcMetrics } from '../rpc/metrics.js';
import { MigrationPolicyError, resolveMigrationPolicy } from './engine/policy.js';
import { IncomingMigration } from './incoming.js';
import { NodeMigrationMetrics } from './metrics.js';
import { readRecordFiles, removeRecordFile } from './record-file.js';
import { OutgoingMigration } from './outgoing.js';
import { decodeToken } from '../../../proto/index.js';
import { policyOverridesFromWire } from './wire.js';

export interface MigrationServiceOptions {
  supervisor: GuestSupervisor;
  stateRoot: string;
  nodeName: string;
  accelerator: Accelerator;
  operatorIdentities: readonly string[];
  /** This node's IP address incoming QEMUs listen on. */
  migrationAddress: string;
  /** The daemon's registry: the service adds tern_node_migration_* to it. */
  registry: Registry;
  rpcMetrics: RpcMetrics;
  logger: Logger;
}

export interface MigrationService {
  handlers: MigrationHandlers;
  /** Daemon start: takes over the migrations a previous daemon left (their record files), before serving. */
  recover(): Promise<void>;
  /** Daemon shutdown: ends every watch stream; see OutgoingMigration.close and IncomingMigration.close. */
  close(): Promise<void>;
}

const MIGRATION_ID = DNS1123_LABEL;
const DEFAULT_TOKEN_TTL_SECONDS = 300;
const DEFAULT_PROGRESS_INTERVAL_MS = 1000;
const MIN_PROGRESS_INTERVAL_MS = 100;
/** Finished migrations kept for retries and GetMigration. */
const MAX_FINISHED_RECORDS = 200;

/** The side of one migration this daemon plays. */
type MigrationSide = OutgoingMigration | IncomingMigration;

const ERROR_STATUSES: ErrorStatuses = [
  [GuestSpecError, grpc.status.INVALID_ARGUMENT],
  [MigrationPolicyError, grpc.status.INVALID_ARGUMENT],
  [GuestStartError, grpc.status.ABORTED],
];

function checkId(id: string): string {
  if (!MIGRATION_ID.test(id))
    throw invalidArgument(`migration_id ${JSON.stringify(id)} must be a DNS-1123 label`);
  return id;
}

function checkToken(token: string): string {
  if (decodeToken(token) === undefined) throw invalidArgument('token must be 32 random bytes in base64url');
  return token;
}

export function createMigrationService(options: MigrationServiceOptions): MigrationService {
  const { supervisor, logger, nodeName } = options;
  const calls = new OperatorCalls({
    service: 'migration',
    operatorIdentities: options.operatorIdentities,
    errorStatuses: ERROR_STATUSES,
    metrics: options.rpcMetrics,
    logger,
  });
  const records = new Map<string, MigrationSide>();
  const streams = new Set<grpc.ServerWritableStream<unknown, MigrationEvent>>();
  const metrics = new NodeMigrationMetrics(options.registry, () =>
    [...records.values()].flatMap((record) =>
      record instanceof OutgoingMigration ? [{ guest: record.guest, latest: record.liveProgress }] : [],
    ),
  );

  function remember(id: string, record: MigrationSide): void {
    records.set(id, record);
    if (records.size <= MAX_FINISHED_RECORDS) return;
    for (const [oldId, old] of records) {
      if (old.log.isEnded && !(old instanceof OutgoingMigration && old.active)) {
        records.delete(oldId);
        if (records.size <= MAX_FINISHED_RECORDS) return;
      }
    }
  }

  function find(id: string): MigrationSide {
    const record = records.get(checkId(id));
    if (!record)
      throw new RpcError(grpc.status.NOT_FOUND, `no migration ${JSON.stringify(id)} on ${nodeName}`);
    return record;
  }

  function outgoing(id: string): OutgoingMigration {
    const record = find(id);
    if (!(record instanceof OutgoingMigration))
      throw failedPrecondition(`${nodeName} is the target of ${id}, not its source`);
    return record;
  }

  function incoming(id: string): IncomingMigration {
    const record = find(id);
    if (!(record instanceof IncomingMigration))
      throw failedPrecondition(`${nodeName} is the source of ${id}, not its target`);
    return record;
  }

  const handlers: MigrationHandlers = {
    PrepareIncoming: calls.unary('PrepareIncoming', async (request) => {
      const id = checkId(request.migrationId);
      const token = checkToken(request.token);
      if (!request.spec) throw invalidArgument('spec is required');
      const spec = fromWireSpec(request.spec);
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing instanceof IncomingMigration && existing.guest === spec.name) {
          return { dataEndpoint: existing.dataEndpoint, state: existing.state() };
        }
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} exists on ${nodeName} for another guest or role`,
        );
      }
      const sourceAccelerator: Accelerator | undefined =
        request.sourceAccelerator === 'ACCELERATOR_KVM'
          ? 'kvm'
          : request.sourceAccelerator === 'ACCELERATOR_TCG'
            ? 'tcg'
            : undefined;
      if (sourceAccelerator === undefined) throw invalidArgument('source_accelerator is required');
      if (sourceAccelerator !== options.accelerator) {
        throw failedPrecondition(
          `the source runs ${sourceAccelerator}, this node ${options.accelerator}: a guest never migrates between them`,
        );
      }
      if (supervisor.get(spec.name)) {
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `guest ${JSON.stringify(spec.name)} already exists on ${nodeName}`,
        );
      }
      const record = await IncomingMigration.prepare({
        id,
        spec,
        sourceAccelerator,
        settings: {
          postCopy: request.channel?.postCopy ?? false,
          multifdChannels: request.channel?.multifdChannels ?? 0,
        },
        token,
        tokenTtlMs: (request.tokenTtlSeconds || DEFAULT_TOKEN_TTL_SECONDS) * 1000,
        address: options.migrationAddress,
        metrics,
        supervisor,
        stateRoot: options.stateRoot,
        logger,
      });
      remember(id, record);
      logger.info(
        { migration: id, guest: spec.name, dataEndpoint: record.dataEndpoint },
        'incoming migration prepared',
      );
      return { dataEndpoint: record.dataEndpoint, state: record.state() };
    }),

    StartMigration: calls.unary('StartMigration', async (request) => {
      const id = checkId(request.migrationId);
      const token = checkToken(request.token);
      let target;
      try {
        target = parseHostPort(request.targetDataEndpoint, 'target_data_endpoint');
      } catch (error) {
        throw invalidArgument((error as Error).message);
      }
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing instanceof OutgoingMigration && existing.sameRequest(target, token, request.guest)) {
          return existing.state();
        }
        throw new RpcError(
          grpc.status.ALREADY_EXISTS,
          `migration ${id} exists on ${nodeName} with other parameters`,
        );
      }
      if (!supervisor.get(request.guest)) {
        throw new RpcError(
          grpc.status.NOT_FOUND,
          `guest ${JSON.stringify(request.guest)} not found on ${nodeName}`,
        );
      }
      for (const [otherId, other] of records) {
        if (other instanceof OutgoingMigration && other.guest === request.guest && other.active) {
          throw failedPrecondition(`guest ${request.guest} is already being migrated (${otherId})`);
        }
      }
      const policy = resolveMigrationPolicy(policyOverridesFromWire(request.policy));
      const record = await OutgoingMigration.start({
        id,
        guest: request.guest,
        supervisor,
        stateRoot: options.stateRoot,
        policy,
        target,
        token,
        holdInQuiescing: request.holdInQuiescing,
        metrics,
        logger,
      });
      remember(id, record);
      logger.info(
        { migration: id, guest: request.guest, target: request.targetDataEndpoint, policy },
        'outgoing migration started',
      );
      return record.state();
    }),

    WatchMigration: (call) => {
      if (!calls.admitStream('WatchMigration', call)) return;
      let record: MigrationSide;
      try {
        record = find(call.request.migrationId);
      } catch (error) {
        return void call.emit('error', calls.toServiceError('WatchMigration', error));
      }
      const interval = Math.max(
        MIN_PROGRESS_INTERVAL_MS,
        call.request.progressIntervalMs || DEFAULT_PROGRESS_INTERVAL_MS,
      );
      streams.add(call);
      const unsubscribe = record.log.watch(
        (event) => call.write(event),
        () => call.end(),
        interval,
      );
      const finish = (): void => {
        unsubscribe();
        streams.delete(call);
      };
      call.on('cancelled', finish);
      call.on('close', finish);
      call.on('finish', finish);
    },

    GetMigration: calls.unary('GetMigration', (request) => find(request.migrationId).state()),

    CancelMigration: calls.unary('CancelMigration', (request) =>
      outgoing(request.migrationId).cancel(request.reason || 'cancelled by the operator'),
    ),

    ContinueMigration: calls.unary('ContinueMigration', (request) =>
      outgoing(request.migrationId).continueSwitchover(),
    ),

    ResumeTarget: calls.unary('ResumeTarget', (request) =>
      incoming(request.migrationId).resume(request.recordedOwner, nodeName),
    ),

    ReleaseSource: calls.unary('ReleaseSource', (request) =>
      outgoing(request.migrationId).release(request.recordedOwner, nodeName),
    ),

    ResumeSource: calls.unary('ResumeSource', (request) =>
      outgoing(request.migrationId).resumeSource(request.recordedOwner, nodeName),
    ),

    AbortIncoming: calls.unary('AbortIncoming', async (request): Promise<MigrationState> => {
      const id = checkId(request.migrationId);
      if (!records.has(id)) {
        return {
          migrationId: id,
          role: 'MIGRATION_ROLE_TARGET',
          stage: 'MIGRATION_STAGE_ABORTED',
          message: 'unknown here: nothing to abort',
        };
      }
      return incoming(id).abort();
    }),
  };

  return {
    handlers,
    async recover() {
      const context = { supervisor, stateRoot: options.stateRoot, metrics, logger };
      for (const file of await readRecordFiles(options.stateRoot)) {
        try {
          if (!supervisor.get(file.guest)) throw new Error(`guest ${file.guest} is gone`);
          const record =
            file.role === 'source'
              ? await OutgoingMigration.recover(context, file)
              : await IncomingMigration.recover({ ...context, address: options.migrationAddress }, file);
          remember(file.id, record);
        } catch (error) {
          logger.warn({ migration: file.id, reason: (error as Error).message }, 'migration not recovered');
          await removeRecordFile(options.stateRoot, file.id);
        }
      }
    },
    async close() {
      for (const call of [...streams]) call.end();
      await Promise.all([...records.values()].map((record) => record.close()));
    },
  };
}
