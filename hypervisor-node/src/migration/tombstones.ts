// Tombstones of the hand-over steps a daemon completed: target RESUMED, ABORTED or TARGET_FAILED (its QEMU
// removed); source RELEASED, SOURCE_RESUMED or SOURCE_LOST. A migration's record file (record-file.ts) goes once
// its step is done, and the in-memory record may be evicted; the tombstone stays, in
// <state>/.migration-tombstones/<id>.json, across daemon restarts. It lets the operator tell "the target resumed
// the guest" from "the target never knew this migration" (docs/architecture.md, "Failure model"): NOT_FOUND from
// GetMigration then means that the daemon never held the migration, or lost its whole state directory.
//
// Kept for TOMBSTONE_MAX_AGE_MS and at most TOMBSTONE_MAX_COUNT per node, oldest forgotten first. The operator asks
// about a migration again at least every 5 minutes (its longest retry backoff) for as long as the migration is not
// finished; forgetting a tombstone by count takes TOMBSTONE_MAX_COUNT newer hand-overs on this node in between,
// which its concurrency limits (2 inbound, 2 outbound) and a migration's own duration never allow.
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { MigrationState } from '../../../proto/index.js';
import { makeDirDurably, removeRecordFile, writeFileDurably } from './record-file.js';

export interface Tombstone {
  id: string;
  role: 'source' | 'target';
  /** What GetMigration answered when the step was done; a source's includes its outcome. */
  state: MigrationState;
  /** To recognise a retried PrepareIncoming or StartMigration of the same migration. */
  tokenDigest: string;
  dataEndpoint: string;
  /** Date.now() when the step was done. */
  atMs: number;
}

export const TOMBSTONE_MAX_AGE_MS = 7 * 24 * 3_600_000;
export const TOMBSTONE_MAX_COUNT = 4096;

export interface TombstoneLimits {
  maxAgeMs: number;
  maxCount: number;
}

export const tombstonesDir = (stateRoot: string): string => path.join(stateRoot, '.migration-tombstones');

/** Which tombstones (any order) to forget at `nowMs`: those past the age, then the oldest beyond the count. */
export function tombstonesToForget(
  tombstones: readonly { id: string; atMs: number }[],
  nowMs: number,
  limits: TombstoneLimits,
): string[] {
  const byAge = [...tombstones].sort((a, b) => a.atMs - b.atMs || (a.id < b.id ? -1 : 1));
  const expired = byAge.filter((tombstone) => nowMs - tombstone.atMs > limits.maxAgeMs);
  const kept = byAge.slice(expired.length);
  const excess = Math.max(0, kept.length - limits.maxCount);
  return [...expired, ...kept.slice(0, excess)].map((tombstone) => tombstone.id);
}

export class TombstoneStore {
  private readonly tombstones = new Map<string, Tombstone>();

  constructor(
    private readonly stateRoot: string,
    private readonly limits: TombstoneLimits = {
      maxAgeMs: TOMBSTONE_MAX_AGE_MS,
      maxCount: TOMBSTONE_MAX_COUNT,
    },
  ) {}

  /** Daemon start: reads the tombstones a previous daemon left (before the service answers any call). */
  async load(): Promise<void> {
    const dir = tombstonesDir(this.stateRoot);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((entry) => entry.endsWith('.json'))) {
      try {
        const tombstone = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Tombstone;
        if (`${tombstone.id}.json` === name && typeof tombstone.atMs === 'number')
          this.tombstones.set(tombstone.id, tombstone);
      } catch {
        // Not a tombstone (put() flushes the file before its rename, so only a foreign file gets here).
      }
    }
    await this.prune();
  }

  get(id: string): Tombstone | undefined {
    return this.tombstones.get(id);
  }

  /**
   * Records a completed step durably (written aside, flushed, renamed over, the directory flushed: a power loss
   * leaves it whole or absent, never torn); rejects when it could not be written.
   */
  async put(tombstone: Tombstone): Promise<void> {
    const dir = tombstonesDir(this.stateRoot);
    await makeDirDurably(dir);
    await writeFileDurably(path.join(dir, `${tombstone.id}.json`), JSON.stringify(tombstone));
    this.tombstones.set(tombstone.id, tombstone);
    await this.prune();
  }

  private async prune(): Promise<void> {
    const forget = tombstonesToForget([...this.tombstones.values()], Date.now(), this.limits);
    for (const id of forget) {
      this.tombstones.delete(id);
      await rm(path.join(tombstonesDir(this.stateRoot), `${id}.json`), { force: true });
    }
  }
}

/**
 * A migration's step is done: its tombstone is written, then its record file removed, so that a daemon dying in
 * between leaves one or the other. When the tombstone cannot be written the record file stays (a successor
 * recovers the migration from it) and the error is logged, not thrown: the step itself is done.
 */
export async function retire(
  context: { stateRoot: string; tombstones: TombstoneStore; logger: Logger },
  tombstone: Omit<Tombstone, 'atMs'>,
): Promise<void> {
  try {
    await context.tombstones.put({ ...tombstone, atMs: Date.now() });
  } catch (error) {
    context.logger.warn(
      { migration: tombstone.id, reason: (error as Error).message },
      'the tombstone of a hand-over step could not be written; the record file stays',
    );
    return;
  }
  await removeRecordFile(context.stateRoot, tombstone.id);
}
