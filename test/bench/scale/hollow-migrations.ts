// HOLLOW DAEMONS: bench:scale only (issue 14 item 6). Nothing else in Tern may fake a daemon: tests use real daemons
// and real QEMU.
//
// The Migration gRPC service (proto/tern/node/v1alpha1/migration.proto) of a hollow daemon. No QEMU and no bytes:
// StartMigration finds the target's prepared record through the process-wide HollowFabric (by its data endpoint
// and token) and plays a migration over `copyMs` — Initializing, Copying with progress samples, Quiescing (the
// guest pauses), Freezing, the target loaded, then the COMPLETED outcome — with events, states and switchover
// timestamps shaped like the real daemon's. The hand-over calls keep the real rules the operator relies on: the
// fencing token and the ownership epoch (the daemon's own OperatorCalls and FencingStore), recorded_owner naming
// this node, each step answered again when repeated, nothing resumed or released out of order. Not modelled:
// local disks (refused), post-copy, convergence decisions, daemon restarts (records live in memory only).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  MigrationHandlers,
  MigrationOutcome,
  MigrationState,
  TargetSwitchover,
  WireMigrationPhase,
} from '../../../proto/index.js';
import { wallClockUs } from '../../../proto/index.js';
import { EventLog } from '../../../hypervisor-node/src/migration/event-log.js';
import { OperatorCalls } from '../../../hypervisor-node/src/rpc/calls.js';
import { failedPrecondition, invalidArgument, RpcError } from '../../../hypervisor-node/src/rpc/errors.js';
import type { FencingStore } from '../../../hypervisor-node/src/rpc/fencing.js';
import type { RpcMetrics } from '../../../hypervisor-node/src/rpc/metrics.js';
import { fromWireSpec } from '../../../hypervisor-node/src/rpc/guest-wire.js';
import { GuestExistsError } from '../../../hypervisor-node/src/runtime/supervisor.js';
import type { HollowGuests } from './hollow-guests.js';

/** How a hollow migration plays out. */
export interface HollowMigrationTiming {
  /** From StartMigration to the outcome. */
  copyMs: number;
  /** Progress samples during Copying, one per interval. */
  progressEveryMs: number;
  /** The downtime reported (the source's pause to the target's load). */
  downtimeMs: number;
}

/** The prepared targets of every hollow daemon in this process, by data endpoint: how a source finds its target. */
export class HollowFabric {
  readonly targets = new Map<string, TargetRecord>();
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MIN_PROGRESS_INTERVAL_MS = 100;
const DEFAULT_PROGRESS_INTERVAL_MS = 1000;

interface SideRecord {
  id: string;
  guest: string;
  stage: MigrationState['stage'];
  message: string;
  log: EventLog;
}

interface TargetRecord extends SideRecord {
  role: 'target';
  token: string;
  dataEndpoint: string;
  switchover: TargetSwitchover;
  /** Set when the target has been loaded (the source's switchover). */
  loaded(atUs: number): void;
  /** The source gave up: the incoming migration failed. */
  failed(why: string): void;
}

interface SourceRecord extends SideRecord {
  role: 'source';
  phase: WireMigrationPhase;
  outcome?: MigrationOutcome;
  cancel?: string;
  /** Resolves once the outcome is known. */
  done: Promise<void>;
}

type HollowRecord = TargetRecord | SourceRecord;

export interface HollowMigrationOptions {
  nodeName: string;
  guests: HollowGuests;
  fabric: HollowFabric;
  timing: HollowMigrationTiming;
  operatorIdentities: readonly string[];
  fencing: FencingStore;
  rpcMetrics: RpcMetrics;
  logger: Logger;
}

export interface HollowMigrationService {
  handlers: MigrationHandlers;
  /** Ends every watch stream and every migration still playing (the daemon stops). */
  close(): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createHollowMigrationService(options: HollowMigrationOptions): HollowMigrationService {
  const { nodeName, guests, fabric, timing } = options;
  const calls = new OperatorCalls({
    service: 'migration',
    operatorIdentities: options.operatorIdentities,
    errorStatuses: [[GuestExistsError, grpc.status.ALREADY_EXISTS]],
    fencing: options.fencing,
    metrics: options.rpcMetrics,
    logger: options.logger,
  });
  const records = new Map<string, HollowRecord>();
  let closed = false;
  let endpoints = 0;

  function checkId(id: string): string {
    if (!DNS1123_LABEL.test(id))
      throw invalidArgument(`migration_id ${JSON.stringify(id)} must be a DNS-1123 label`);
    return id;
  }

  function find(id: string): HollowRecord {
    const record = records.get(checkId(id));
    if (record === undefined)
      throw new RpcError(grpc.status.NOT_FOUND, `no migration ${JSON.stringify(id)} on ${nodeName}`);
    return record;
  }

  function state(record: HollowRecord): MigrationState {
    const common = {
      migrationId: record.id,
      guest: record.guest,
      stage: record.stage,
      message: record.message,
    };
    if (record.role === 'target') {
      return {
        ...common,
        role: 'MIGRATION_ROLE_TARGET',
        phase: 'MIGRATION_PHASE_UNSPECIFIED',
        ...(record.switchover.loadedAtUnixUs ? { switchover: record.switchover } : {}),
      };
    }
    return {
      ...common,
      role: 'MIGRATION_ROLE_SOURCE',
      phase: record.phase,
      ...(record.outcome !== undefined ? { outcome: record.outcome } : {}),
    };
  }

  function target(id: string): TargetRecord {
    const record = find(id);
    if (record.role !== 'target')
      throw failedPrecondition(`${nodeName} is the source of ${id}, not its target`);
    return record;
  }

  function source(id: string): SourceRecord {
    const record = find(id);
    if (record.role !== 'source')
      throw failedPrecondition(`${nodeName} is the target of ${id}, not its source`);
    return record;
  }

  function checkOwner(call: string, recordedOwner: string): void {
    if (recordedOwner !== nodeName)
      throw failedPrecondition(
        `${call}: the ownership record names ${recordedOwner || 'nobody'}, not ${nodeName}`,
      );
  }

  /** Plays the source's side of a migration to its outcome. */
  async function play(
    record: SourceRecord,
    into: TargetRecord | undefined,
    memoryBytes: number,
  ): Promise<void> {
    const startedMs = Date.now();
    const phases: { phase: WireMigrationPhase; startedAtUnixMs: number }[] = [];
    const enter = (phase: WireMigrationPhase, reason = ''): void => {
      record.log.append({ event: 'phase', phase: { from: record.phase, to: phase, reason } });
      record.phase = phase;
      phases.push({ phase, startedAtUnixMs: Date.now() });
    };
    const finish = (
      outcome: Omit<MigrationOutcome, 'durationMs' | 'phases'>,
      phase: WireMigrationPhase,
    ): void => {
      enter(phase, outcome.reason ?? '');
      record.outcome = {
        ...outcome,
        durationMs: Date.now() - startedMs,
        phases: phases.map((p, i) => ({
          ...p,
          durationMs: i + 1 < phases.length ? phases[i + 1]!.startedAtUnixMs - p.startedAtUnixMs : 0,
        })),
      };
      record.stage = 'MIGRATION_STAGE_FINISHED';
      record.log.append({ event: 'outcome', outcome: record.outcome }, Date.now(), true);
    };
    // Why the copy cannot go on: the daemon stops, no target took the connection, the target was aborted (its QEMU
    // gone: QEMU's stream breaks), or a cancel.
    const stopped = (): string | undefined => {
      if (closed) return `${nodeName} stopped`;
      if (into === undefined) return 'the target refused the connection';
      if (into.stage !== 'MIGRATION_STAGE_RUNNING') return `the target went away (${into.message})`;
      return record.cancel;
    };
    const giveUp = (why: string, cancelled: boolean): void => {
      into?.failed(`the source gave up: ${why}`);
      finish(
        {
          result: cancelled ? 'RESULT_ABORTED' : 'RESULT_FAILED',
          cause: cancelled ? 'CAUSE_CANCELLED' : 'CAUSE_CONNECTION',
          reason: why,
          sourceRunState: 'running',
        },
        cancelled ? 'MIGRATION_PHASE_ABORTED' : 'MIGRATION_PHASE_FAILED',
      );
    };

    enter('MIGRATION_PHASE_INITIALIZING');
    record.stage = 'MIGRATION_STAGE_RUNNING';
    await sleep(Math.min(50, timing.copyMs / 10));
    enter('MIGRATION_PHASE_COPYING');
    const copyUntil = startedMs + timing.copyMs;
    for (;;) {
      const why = stopped();
      if (why !== undefined) return giveUp(why, record.cancel !== undefined);
      const now = Date.now();
      const done = Math.min(1, (now - startedMs) / timing.copyMs);
      const transferred = Math.round(memoryBytes * done);
      record.log.append({
        event: 'progress',
        progress: {
          status: 'active',
          round: 1,
          transferredBytes: transferred,
          remainingBytes: memoryBytes - transferred,
          totalBytes: memoryBytes,
          throughputMbps: (memoryBytes * 8) / 1e6 / (timing.copyMs / 1000),
          expectedDowntimeMs: timing.downtimeMs,
          qemuTotalTimeMs: now - startedMs,
        },
      });
      if (now >= copyUntil) break;
      await sleep(Math.min(timing.progressEveryMs, copyUntil - now));
    }
    const why = stopped();
    if (why !== undefined) return giveUp(why, record.cancel !== undefined);
    // The switchover: the guest pauses here, the target loads it, the outcome follows.
    const pausedAtUs = wallClockUs();
    guests.setPhase(record.guest, 'Paused');
    enter('MIGRATION_PHASE_QUIESCING');
    enter('MIGRATION_PHASE_FREEZING');
    await sleep(timing.downtimeMs);
    const late = stopped();
    if (late !== undefined) {
      // The device state did not arrive: the source's guest runs on, as QEMU resumes it on a failed switchover.
      guests.setPhase(record.guest, 'Running');
      return giveUp(late, false);
    }
    const loadedAtUs = wallClockUs();
    into!.loaded(loadedAtUs);
    const completedAtUs = wallClockUs();
    finish(
      {
        result: 'RESULT_COMPLETED',
        reason: '',
        qemuTotalTimeMs: Date.now() - startedMs,
        downtimeMs: timing.downtimeMs,
        setupTimeMs: 1,
        transferredBytes: memoryBytes,
        rounds: 1,
        postCopy: false,
        decisions: [],
        sourceRunState: 'postmigrate',
        quiesce: { durationMs: 0, disks: [], error: '' },
        switchover: {
          pausedAtUnixUs: pausedAtUs,
          quiescingAtUnixUs: pausedAtUs,
          continueSentAtUnixUs: pausedAtUs,
          continuedAtUnixUs: pausedAtUs,
          completedAtUnixUs: completedAtUs,
          outcomeAtUnixUs: wallClockUs(),
        },
      },
      'MIGRATION_PHASE_COMPLETED',
    );
  }

  const handlers: MigrationHandlers = {
    // Hollow guests have no network.
    SteerFrames: calls.unary('SteerFrames', () => Promise.resolve({ problems: [] })),
    PrepareIncoming: calls.unary('PrepareIncoming', async (request) => {
      const id = checkId(request.migrationId);
      if (!request.spec) throw invalidArgument('spec is required');
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing.role !== 'target' || existing.token !== request.token)
          throw new RpcError(grpc.status.ALREADY_EXISTS, `migration ${id} is known here with another token`);
        return { dataEndpoint: existing.dataEndpoint, diskEndpoint: '', state: state(existing) };
      }
      if (request.localDisks.length > 0) throw failedPrecondition('hollow daemons have no local disks');
      const spec = fromWireSpec(request.spec);
      await guests.create(spec, { incoming: true });
      const dataEndpoint = `${nodeName}:${20_000 + endpoints++}`;
      const record: TargetRecord = {
        role: 'target',
        id,
        guest: spec.name,
        token: request.token,
        dataEndpoint,
        stage: 'MIGRATION_STAGE_RUNNING',
        message: 'listening',
        log: new EventLog(id),
        switchover: {},
        loaded(atUs) {
          if (record.stage !== 'MIGRATION_STAGE_RUNNING') return;
          record.stage = 'MIGRATION_STAGE_LOADED';
          record.message = 'loaded; waiting for ResumeTarget';
          record.switchover.loadedAtUnixUs = atUs;
          record.log.append(
            {
              event: 'target',
              target: { state: 'TARGET_STATE_LOADED', qemuStatus: 'completed', message: '' },
            },
            Date.now(),
            true,
          );
          fabric.targets.delete(dataEndpoint);
        },
        failed(why) {
          if (record.stage !== 'MIGRATION_STAGE_RUNNING') return;
          record.stage = 'MIGRATION_STAGE_TARGET_FAILED';
          record.message = why;
          record.log.append(
            { event: 'target', target: { state: 'TARGET_STATE_FAILED', qemuStatus: 'failed', message: why } },
            Date.now(),
            true,
          );
          fabric.targets.delete(dataEndpoint);
        },
      };
      records.set(id, record);
      fabric.targets.set(dataEndpoint, record);
      return { dataEndpoint, diskEndpoint: '', state: state(record) };
    }),

    StartMigration: calls.unary('StartMigration', (request) => {
      const id = checkId(request.migrationId);
      const existing = records.get(id);
      if (existing !== undefined) {
        if (existing.role !== 'source' || existing.guest !== request.guest)
          throw new RpcError(grpc.status.ALREADY_EXISTS, `migration ${id} is known here for something else`);
        return state(existing);
      }
      if (request.targetDiskEndpoint) throw failedPrecondition('hollow daemons have no local disks');
      const guest = guests.get(request.guest);
      if (guest === undefined)
        throw new RpcError(grpc.status.NOT_FOUND, `guest ${JSON.stringify(request.guest)} not found`);
      if (guest.phase !== 'Running')
        throw failedPrecondition(`guest ${JSON.stringify(request.guest)} is ${guest.phase}, not Running`);
      const busy = [...records.values()].find(
        (r) => r.role === 'source' && r.guest === request.guest && r.stage === 'MIGRATION_STAGE_RUNNING',
      );
      if (busy !== undefined)
        throw failedPrecondition(`guest ${request.guest} is already migrating (${busy.id})`);
      const prepared = fabric.targets.get(request.targetDataEndpoint);
      const into = prepared?.token === request.token && prepared.id === id ? prepared : undefined;
      let resolveDone!: () => void;
      const record: SourceRecord = {
        role: 'source',
        id,
        guest: request.guest,
        stage: 'MIGRATION_STAGE_RUNNING',
        phase: 'MIGRATION_PHASE_UNSPECIFIED',
        message: '',
        log: new EventLog(id),
        done: new Promise<void>((resolve) => (resolveDone = resolve)),
      };
      records.set(id, record);
      play(record, into, guest.spec.memoryMiB * 2 ** 20)
        .catch((error: unknown) => {
          options.logger.error({ err: error, migration: id }, 'hollow migration failed');
          record.stage = 'MIGRATION_STAGE_FINISHED';
          record.log.end();
        })
        .finally(resolveDone);
      return state(record);
    }),

    WatchMigration: (call) => {
      if (!calls.admitStream('WatchMigration', call)) return;
      let record: HollowRecord;
      try {
        record = find(call.request.migrationId);
      } catch (error) {
        call.emit('error', calls.toServiceError('WatchMigration', error));
        return;
      }
      const interval = Math.max(
        MIN_PROGRESS_INTERVAL_MS,
        call.request.progressIntervalMs || DEFAULT_PROGRESS_INTERVAL_MS,
      );
      const unsubscribe = record.log.watch(
        (event) => call.write(event),
        () => call.end(),
        interval,
      );
      call.on('cancelled', unsubscribe);
      call.on('close', unsubscribe);
      call.on('finish', unsubscribe);
    },

    GetMigration: calls.read('GetMigration', (request) => state(find(request.migrationId))),

    CancelMigration: calls.unary('CancelMigration', async (request) => {
      const record = source(request.migrationId);
      if (record.outcome !== undefined) return state(record);
      if (record.phase === 'MIGRATION_PHASE_QUIESCING' || record.phase === 'MIGRATION_PHASE_FREEZING')
        throw failedPrecondition('too late to cancel: the device state is crossing');
      record.cancel = request.reason || 'cancelled';
      await record.done;
      return state(record);
    }),

    ContinueMigration: calls.unary('ContinueMigration', (request) => {
      source(request.migrationId);
      throw failedPrecondition('hollow migrations are never held in Quiescing');
    }),

    ResumeTarget: calls.unary('ResumeTarget', async (request) => {
      const record = target(request.migrationId);
      if (record.stage === 'MIGRATION_STAGE_RESUMED') return state(record);
      checkOwner('ResumeTarget', request.recordedOwner);
      if (record.stage !== 'MIGRATION_STAGE_LOADED')
        throw failedPrecondition(`ResumeTarget: migration ${record.id} is ${record.stage} on ${nodeName}`);
      await options.fencing.admitEpoch(record.guest, Number(request.epoch));
      record.switchover.resumeRequestedAtUnixUs = wallClockUs();
      guests.setPhase(record.guest, 'Running');
      record.switchover.resumedAtUnixUs = wallClockUs();
      record.switchover.firstFrameNote = 'hollow daemon: no network';
      record.stage = 'MIGRATION_STAGE_RESUMED';
      record.message = 'the guest runs here';
      return state(record);
    }),

    ReleaseSource: calls.unary('ReleaseSource', async (request) => {
      const record = source(request.migrationId);
      if (record.stage === 'MIGRATION_STAGE_RELEASED') return state(record);
      if (record.outcome?.result !== 'RESULT_COMPLETED' || record.stage !== 'MIGRATION_STAGE_FINISHED')
        throw failedPrecondition(`ReleaseSource: migration ${record.id} is ${record.stage} on ${nodeName}`);
      if (guests.get(record.guest)?.phase === 'Running')
        throw failedPrecondition(`ReleaseSource: ${nodeName} runs guest ${record.guest}`);
      await options.fencing.admitEpoch(record.guest, Number(request.epoch));
      if (guests.get(record.guest) !== undefined) await guests.delete(record.guest);
      record.stage = 'MIGRATION_STAGE_RELEASED';
      record.message = 'the guest left this node';
      return state(record);
    }),

    ResumeSource: calls.unary('ResumeSource', async (request) => {
      const record = source(request.migrationId);
      if (record.stage === 'MIGRATION_STAGE_SOURCE_RESUMED') return state(record);
      checkOwner('ResumeSource', request.recordedOwner);
      if (record.stage !== 'MIGRATION_STAGE_FINISHED')
        throw failedPrecondition(`ResumeSource: migration ${record.id} is ${record.stage} on ${nodeName}`);
      await options.fencing.admitEpoch(record.guest, Number(request.epoch));
      if (guests.get(record.guest)?.phase === 'Paused') guests.setPhase(record.guest, 'Running');
      record.stage = 'MIGRATION_STAGE_SOURCE_RESUMED';
      record.message = 'the guest runs here again';
      return state(record);
    }),

    AbortIncoming: calls.unary('AbortIncoming', async (request) => {
      const id = checkId(request.migrationId);
      const record = records.get(id);
      if (record === undefined)
        return {
          migrationId: id,
          role: 'MIGRATION_ROLE_TARGET',
          stage: 'MIGRATION_STAGE_ABORTED',
          message: 'unknown here: nothing to abort',
        };
      if (record.role !== 'target')
        throw failedPrecondition(`${nodeName} is the source of ${id}, not its target`);
      if (record.stage === 'MIGRATION_STAGE_RESUMED')
        throw failedPrecondition(`target ${record.guest} runs the guest: it cannot be aborted`);
      if (record.stage !== 'MIGRATION_STAGE_ABORTED') {
        record.failed('aborted');
        if (guests.get(record.guest) !== undefined) await guests.delete(record.guest);
        record.stage = 'MIGRATION_STAGE_ABORTED';
        record.message = 'aborted';
        record.log.end();
      }
      return state(record);
    }),

    ReadClock: calls.read('ReadClock', () => ({ unixUs: wallClockUs() })),
  };

  return {
    handlers,
    close() {
      closed = true;
      for (const record of records.values()) record.log.end();
    },
  };
}
