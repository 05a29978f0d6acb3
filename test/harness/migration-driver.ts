// Drives live migrations between two real daemons through their Migration API the way the operator will:
// PrepareIncoming on the target, StartMigration on the source, WatchMigration until the outcome, then the
// hand-over against an in-memory ownership record (the stand-in for the compare-and-swap in the Kubernetes API).
// Used by the integration tests and the migration benchmark.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  loadMigrationProto,
  type GuestControlClient,
  type Guest__Output,
  type MigrationClient,
  type MigrationEvent__Output,
  type MigrationOutcome__Output,
  type MigrationState__Output,
  type WireMigrationPolicy,
} from '../../proto/index.js';
import { newMigrationToken } from '../../hypervisor-node/src/migration/token.js';
import { unary, type ClientCertificate } from './control-client.js';

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

/** Who owns each guest; moves only by compare-and-swap, as the VM's recorded node will in the Kubernetes API. */
export class OwnershipRecord {
  private readonly owners = new Map<string, string>();

  set(guest: string, node: string): void {
    this.owners.set(guest, node);
  }

  owner(guest: string): string | undefined {
    return this.owners.get(guest);
  }

  compareAndSwap(guest: string, expected: string, next: string): boolean {
    if (this.owners.get(guest) !== expected) return false;
    this.owners.set(guest, next);
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

export interface HandOverResult {
  owner: string;
  /** Date.now() after ResumeTarget returned (owner = target). */
  resumedAtMs?: number;
  /** Date.now() when the outcome reached the driver. */
  outcomeAtMs: number;
}

export async function begin(options: BeginOptions): Promise<RunningMigration> {
  const { from, to, guest } = options;
  const source: Guest__Output = await unary((done) => from.control.getGuest({ name: guest }, done));
  const id = `m-${randomUUID()}`;
  const token = newMigrationToken();
  const channel = {
    postCopy: options.policy?.allowPostCopy ?? false,
    multifdChannels: options.policy?.multifdChannels ?? 0,
  };
  const prepared = await unary<{ dataEndpoint: string }>((done) =>
    to.migration.prepareIncoming(
      { migrationId: id, spec: source.spec!, sourceAccelerator: source.accelerator, channel, token },
      done,
    ),
  );
  await options.onPrepared?.({ id, token, dataEndpoint: prepared.dataEndpoint });
  await unary((done) =>
    from.migration.startMigration(
      {
        migrationId: id,
        guest,
        targetDataEndpoint: prepared.dataEndpoint,
        token: options.presentToken ?? token,
        policy: options.policy ?? {},
        holdInQuiescing: options.holdInQuiescing ?? false,
      },
      done,
    ),
  );
  const events: MigrationEvent__Output[] = [];
  const waiters = new Set<() => void>();
  const stream = from.migration.watchMigration({ migrationId: id, progressIntervalMs: 100 });
  const outcome = new Promise<MigrationOutcome__Output>((resolve, reject) => {
    stream.on('data', (event: MigrationEvent__Output) => {
      events.push(event);
      for (const wake of [...waiters]) wake();
      if (event.outcome) resolve(event.outcome);
    });
    stream.on('error', reject);
    stream.on('end', () => reject(new Error(`watch of ${id} ended without an outcome`)));
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
  return { id, token, dataEndpoint: prepared.dataEndpoint, events, outcome, until };
}

/**
 * The operator's hand-over after the outcome: COMPLETED → record the target as the owner, then ResumeTarget and
 * ReleaseSource; otherwise (or when the record did not move) AbortIncoming, then ResumeSource while the record
 * still names the source.
 */
export async function handOver(
  run: RunningMigration,
  options: { guest: string; from: NodeHandle; to: NodeHandle; record: OwnershipRecord },
): Promise<HandOverResult> {
  const { guest, from, to, record } = options;
  const outcome = await run.outcome;
  const outcomeAtMs = Date.now();
  const request = (owner: string) => ({ migrationId: run.id, recordedOwner: owner });
  if (outcome.result === 'RESULT_COMPLETED' && record.compareAndSwap(guest, from.name, to.name)) {
    await unary<MigrationState__Output>((done) => to.migration.resumeTarget(request(to.name), done));
    const resumedAtMs = Date.now();
    await unary<MigrationState__Output>((done) => from.migration.releaseSource(request(to.name), done));
    return { owner: to.name, resumedAtMs, outcomeAtMs };
  }
  await unary((done) => to.migration.abortIncoming({ migrationId: run.id }, done));
  const owner = record.owner(guest)!;
  if (owner === from.name) {
    await unary<MigrationState__Output>((done) => from.migration.resumeSource(request(from.name), done));
  }
  return { owner, outcomeAtMs };
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
