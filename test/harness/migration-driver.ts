// Drives live migrations between two real daemons through their Migration API with the operator's own sequence
// (operator/src/migration/sequence.ts): PrepareIncoming on the target, StartMigration on the source,
// WatchMigration until the outcome, then the hand-over — here against an in-memory ownership record (the stand-in
// for the compare-and-swap of the VM's status in the Kubernetes API). What only tests need is layered on top:
// holding the source in Quiescing, presenting a wrong token, a hook between Prepare and Start, and every event of
// the watch stream with until(). Used by the integration tests and the migration benchmark.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import {
  loadMigrationProto,
  newMigrationToken,
  type GuestControlClient,
  type Guest__Output,
  type MigrationClient,
  type MigrationEvent__Output,
  type MigrationOutcome__Output,
  type WireMigrationPolicy,
} from '../../proto/index.js';
import { MigrationDaemonClient } from '../../operator/src/daemon/migration-client.js';
import { DaemonGuestClient } from '../../operator/src/daemon/guest-client.js';
import {
  followToOutcome,
  handOver as operatorHandOver,
  prepareTarget,
  startSource,
  switchToTargetInPostCopy,
  type HandOverResult,
  type OwnershipRecord,
  type PostCopySwitch,
} from '../../operator/src/migration/sequence.js';
import { unary, type ClientCertificate } from './control-client.js';

/** Deadline of each unary Migration call (PrepareIncoming starts a QEMU on a busy test machine). */
const CALL_TIMEOUT_MS = 60_000;
const quiet = pino({ level: 'silent' });

export function migrationClient(address: string, files: ClientCertificate): MigrationClient {
  const credentials = grpc.credentials.createSsl(
    readFileSync(files.ca),
    files.key ? readFileSync(files.key) : null,
    files.cert ? readFileSync(files.cert) : null,
  );
  return new (loadMigrationProto().Migration)(address, credentials);
}

export interface NodeHandle {
  name: string;
  control: GuestControlClient;
  migration: MigrationClient;
}

/**
 * Who owns each guest, with an epoch that counts the moves; moves only by compare-and-swap, as the VM's status
 * node/epoch does in the Kubernetes API.
 */
export class InMemoryOwnership {
  private readonly owners = new Map<string, { node: string; epoch: number }>();

  set(guest: string, node: string): void {
    this.owners.set(guest, { node, epoch: (this.owners.get(guest)?.epoch ?? 0) + 1 });
  }

  owner(guest: string): string | undefined {
    return this.owners.get(guest)?.node;
  }

  epoch(guest: string): number | undefined {
    return this.owners.get(guest)?.epoch;
  }

  compareAndSwap(guest: string, expected: string, next: string): boolean {
    if (this.owner(guest) !== expected) return false;
    this.set(guest, next);
    return true;
  }
}

export interface BeginOptions {
  guest: string;
  from: NodeHandle;
  to: NodeHandle;
  policy?: WireMigrationPolicy;
  holdInQuiescing?: boolean;
  /** Replaces the token the source presents (the target was prepared with the right one). */
  presentToken?: string;
  /** Runs after PrepareIncoming, before StartMigration (e.g. connect to the target's agent socket). */
  onPrepared?: (prepared: { id: string; token: string; dataEndpoint: string }) => Promise<void>;
  /** Where the source connects instead of the target's data endpoint (e.g. a proxy in front of it). */
  connectVia?: (dataEndpoint: string) => Promise<string>;
  /** Where the source's NBD client connects instead of the target's disk endpoint (local disks). */
  connectDisksVia?: (diskEndpoint: string) => Promise<string>;
  /** The progress interval asked of the source's WatchMigration stream (default 100 ms). */
  progressIntervalMs?: number;
}

export interface RunningMigration {
  id: string;
  token: string;
  dataEndpoint: string;
  /** Every event of the source's WatchMigration stream so far. */
  events: MigrationEvent__Output[];
  /** Resolves with the source's outcome (the last event of its watch stream). */
  outcome: Promise<MigrationOutcome__Output>;
  /** Resolves once an event matching `match` arrived. */
  until(match: (event: MigrationEvent__Output) => boolean): Promise<MigrationEvent__Output>;
}

export interface DriverHandOverResult {
  owner: string;
  /** How the operator's hand-over ended (HandOverResult's kind). */
  kind: HandOverResult['kind'];
  /** Date.now() after ResumeTarget returned (owner = target). */
  resumedAtMs?: number;
  /** Date.now() when the outcome reached the driver. */
  outcomeAtMs: number;
}

/** The operator's client of a node's Migration API, over the test's channel to it. */
function operatorClient(node: NodeHandle): MigrationDaemonClient {
  return new MigrationDaemonClient(node.name, '', node.migration, CALL_TIMEOUT_MS);
}

export async function begin(options: BeginOptions): Promise<RunningMigration> {
  const { from, to, guest } = options;
  const source = operatorClient(from);
  const target = operatorClient(to);
  const running: Guest__Output = await unary((done) => from.control.getGuest({ name: guest }, done));
  const id = `m-${randomUUID()}`;
  const token = newMigrationToken();
  const { dataEndpoint, diskEndpoint } = await prepareTarget(target, {
    id,
    source: running,
    token,
    postCopy: options.policy?.allowPostCopy ?? false,
    multifdChannels: options.policy?.multifdChannels ?? 0,
    multifdCompression: options.policy?.multifdCompression ?? 'none',
    diskCopyTimeoutPerGiBSeconds: options.policy?.completionTimeoutPerGibSeconds ?? 0,
  });
  await options.onPrepared?.({ id, token, dataEndpoint });
  await startSource(source, {
    id,
    guest,
    targetDataEndpoint: (await options.connectVia?.(dataEndpoint)) ?? dataEndpoint,
    targetDiskEndpoint:
      diskEndpoint === '' ? '' : ((await options.connectDisksVia?.(diskEndpoint)) ?? diskEndpoint),
    token: options.presentToken ?? token,
    policy: options.policy ?? {},
    holdInQuiescing: options.holdInQuiescing,
  });
  const events: MigrationEvent__Output[] = [];
  const waiters = new Set<() => void>();
  const outcome = followToOutcome(source, id, {
    progressIntervalMs: options.progressIntervalMs ?? 100,
    onEvent: (event) => {
      events.push(event);
      for (const wake of [...waiters]) wake();
    },
    signal: new AbortController().signal,
    logger: quiet,
  });
  outcome.catch(() => undefined);
  const until = (match: (event: MigrationEvent__Output) => boolean): Promise<MigrationEvent__Output> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.find(match);
        if (found) {
          waiters.delete(check);
          resolve(found);
        }
      };
      waiters.add(check);
      check();
      outcome.then(
        () => setImmediate(() => waiters.has(check) && reject(new Error(`migration ${id} ended first`))),
        reject,
      );
    });
  return { id, token, dataEndpoint, events, outcome, until };
}

/**
 * The operator's hand-over (sequence.ts handOver) after the outcome, with `record` as the ownership record:
 * COMPLETED → the record moves to the target, then ResumeTarget and ReleaseSource; otherwise (or when the record
 * did not move) AbortIncoming, then ResumeSource while the record still names the source.
 */
export async function handOver(
  run: RunningMigration,
  options: {
    guest: string;
    from: NodeHandle;
    to: NodeHandle;
    record: InMemoryOwnership;
    /** The local disks whose source copy is kept (moved aside) after a successful hand-over. */
    retainLocalDisks?: string[];
  },
): Promise<DriverHandOverResult> {
  const { guest, from, to, record, retainLocalDisks } = options;
  const outcome = await run.outcome;
  const outcomeAtMs = Date.now();
  const result = await operatorHandOver({
    source: operatorClient(from),
    target: operatorClient(to),
    targetGuests: new DaemonGuestClient(to.name, '', to.control, CALL_TIMEOUT_MS),
    id: run.id,
    outcome,
    sourceNode: from.name,
    targetNode: to.name,
    ownership: recordOf(record, guest),
    ...(retainLocalDisks !== undefined ? { retainLocalDisks: async () => retainLocalDisks } : {}),
  });
  if (result.kind === 'handedOver') {
    return { owner: to.name, kind: result.kind, resumedAtMs: result.resumedAtMs, outcomeAtMs };
  }
  return { owner: record.owner(guest)!, kind: result.kind, outcomeAtMs };
}

/** `record` as the sequence's OwnershipRecord of `guest`. */
const recordOf = (record: InMemoryOwnership, guest: string): OwnershipRecord => ({
  owner: async () => record.owner(guest),
  compareAndSwap: async (expected, next) => {
    record.compareAndSwap(guest, expected, next);
    return record.owner(guest);
  },
  epoch: () => record.epoch(guest),
});

/**
 * The operator's post-copy switch (sequence.ts switchToTargetInPostCopy) once the source reported phase PostCopy:
 * when the target loaded the device state, `record` moves to the target and the target runs the guest while the
 * remaining pages stream. Resolves once it did (or gave up: the outcome came first).
 */
export async function switchInPostCopy(
  run: RunningMigration,
  options: { guest: string; from: NodeHandle; to: NodeHandle; record: InMemoryOwnership },
): Promise<PostCopySwitch> {
  const { guest, from, to, record } = options;
  await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_POST_COPY');
  const stop = new AbortController();
  void run.outcome.then(
    () => stop.abort(),
    () => stop.abort(),
  );
  return switchToTargetInPostCopy({
    source: operatorClient(from),
    target: operatorClient(to),
    id: run.id,
    sourceNode: from.name,
    targetNode: to.name,
    ownership: recordOf(record, guest),
    stop: stop.signal,
    logger: quiet,
  });
}

/** Both nodes' view of the guest; throws when both run it. Polled by tests throughout each migration. */
export async function assertAtMostOneRunning(guest: string, nodes: NodeHandle[]): Promise<string[]> {
  const phases = await Promise.all(
    nodes.map((node) =>
      unary<Guest__Output>((done) => node.control.getGuest({ name: guest }, done)).then(
        (found) => found.phase,
        (error: grpc.ServiceError) => {
          if (error.code === grpc.status.NOT_FOUND) return 'ABSENT';
          throw error;
        },
      ),
    ),
  );
  if (phases.filter((phase) => phase === 'GUEST_PHASE_RUNNING').length > 1) {
    throw new Error(`guest ${guest} runs on more than one node: ${phases.join(', ')}`);
  }
  return phases;
}
