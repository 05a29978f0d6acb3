// What a daemon must remember of a migration across its own restart, in <state>/.migrations/<id>.json: enough to
// find the guest's QEMU again and to answer the operator's retried calls. The token itself is not stored, only
// its digest (to recognise a retried StartMigration).
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CreatedImage, FileIdentity } from './engine/image-files.js';

export interface MigrationRecordFile {
  id: string;
  role: 'source' | 'target';
  guest: string;
  /** host:port the target QEMU listens on (the source dialled it; the target reported it). */
  dataEndpoint: string;
  tokenDigest: string;
  /**
   * Target: when the token's TTL ends (ms since the epoch), so that a successor daemon still removes the key file
   * then and an incoming QEMU no source reached after it. Absent in records of older daemons.
   */
  tokenExpiresAtMs?: number;
  /**
   * Target: set durably before ResumeTarget's `cont`, so that a successor daemon that finds the guest's QEMU dead
   * knows the guest may have run here (and written to its disks): it answers RESUMED, never TARGET_FAILED, and the
   * source's stale memory is never resumed over those writes. On disk it is the mark file next to the record
   * (markResumeStarted; readRecordFiles sets this field from it); records of older daemons carry it in the JSON.
   */
  resumeStartedAtMs?: number;
  /**
   * Target: set once the incoming migration switched to post-copy: the source can no longer run the guest, so the
   * images this migration created here are one of the guest's complete disks and are never removed by the daemon.
   */
  postCopyStartedAtMs?: number;
  /**
   * Target: the local disk images this daemon creates for the migration, each recorded before its file exists (the
   * intent) and again with the file's dev/inode before it is filled (engine/image-files.ts), so that an abort or a
   * failure, also after a daemon crash at any point, removes exactly these files and nothing else. They become the
   * guest's disks once it resumed here.
   */
  createdImages?: CreatedImage[];
  /** Target: host:port of the NBD server the local disks are mirrored into. */
  diskEndpoint?: string;
  /**
   * Source: the guest's local disk images on this node with their dev/inode when the migration started, removed by
   * ReleaseSource once the target runs the guest (the source's copy is stale from then on and would block a later
   * migration back here); a name that points at another file by then is left.
   */
  localImages?: FileIdentity[];
  /**
   * Source: set durably once ReleaseSource was admitted (the record names `owner`, another node), before the
   * source QEMU is quit and the images removed, so that a successor daemon finishes the release. `retain`: the
   * image paths moved aside instead of removed (ReleaseSource's retain_local_disks, resolved when admitted).
   */
  release?: { owner: string; removeLocalDisks: boolean; retain?: string[] };
}

export const migrationsDir = (stateRoot: string): string => path.join(stateRoot, '.migrations');

export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('hex');

/**
 * Writes `text` to `file` durably: written aside, flushed, renamed over, and the directory flushed, so that a crash
 * or a power loss leaves the old content or the new one, never half of one, and never loses a write that returned.
 */
export async function writeFileDurably(file: string, text: string): Promise<void> {
  const aside = `${file}.tmp`;
  const handle = await open(aside, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(aside, file);
  await syncDir(path.dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p whose new directories survive a power loss too (the parent of each one created is flushed). */
export async function makeDirDurably(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (created === undefined) return;
  for (let level = path.resolve(dir); ; level = path.dirname(level)) {
    await syncDir(path.dirname(level));
    if (level === path.resolve(created) || level === path.dirname(level)) return;
  }
}

export async function writeRecordFile(stateRoot: string, record: MigrationRecordFile): Promise<void> {
  await makeDirDurably(migrationsDir(stateRoot));
  await writeFileDurably(path.join(migrationsDir(stateRoot), `${record.id}.json`), JSON.stringify(record));
}

/** The resume mark of target `id` (markResumeStarted). */
const resumeMarkFile = (stateRoot: string, id: string): string =>
  path.join(migrationsDir(stateRoot), `${id}.resume-started`);

/**
 * Target, before `cont`: marks durably that the guest may run here from now on. The mark is an empty file next to
 * the record, created and flushed with its directory: one journal commit on the switchover's path, where rewriting
 * the record (written aside, flushed, renamed, directory flushed) takes two. Its existence is the mark; an empty
 * file cannot be torn.
 */
export async function markResumeStarted(stateRoot: string, id: string): Promise<void> {
  const handle = await open(resumeMarkFile(stateRoot, id), 'w', 0o600);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDir(migrationsDir(stateRoot));
}

/** Target, once the incoming migration is in post-copy (see `postCopyStartedAtMs`). */
export async function markPostCopyStarted(stateRoot: string, id: string): Promise<void> {
  await amendRecordFile(stateRoot, id, 'target', { postCopyStartedAtMs: Date.now() });
}

/** Source, before ReleaseSource quits QEMU: marks durably that the release was admitted (see `release`). */
export async function markReleaseStarted(
  stateRoot: string,
  id: string,
  release: NonNullable<MigrationRecordFile['release']>,
): Promise<void> {
  await amendRecordFile(stateRoot, id, 'source', { release });
}

async function amendRecordFile(
  stateRoot: string,
  id: string,
  role: MigrationRecordFile['role'],
  fields: Partial<MigrationRecordFile>,
): Promise<void> {
  const file = path.join(migrationsDir(stateRoot), `${id}.json`);
  const record = JSON.parse(await readFile(file, 'utf8')) as MigrationRecordFile;
  if (record.id !== id || record.role !== role) throw new Error(`${file} is not the record of ${role} ${id}`);
  await writeFileDurably(file, JSON.stringify({ ...record, ...fields }));
}

/** Removes the record and then its resume mark (a crash in between leaves a mark without a record, swept later). */
export async function removeRecordFile(stateRoot: string, id: string): Promise<void> {
  await rm(path.join(migrationsDir(stateRoot), `${id}.json`), { force: true });
  await rm(resumeMarkFile(stateRoot, id), { force: true });
}

/**
 * Every record file in the state root, a target's with `resumeStartedAtMs` from its resume mark. A resume mark
 * whose record is gone (removeRecordFile interrupted) is removed.
 */
export async function readRecordFiles(stateRoot: string): Promise<MigrationRecordFile[]> {
  const names = await readdir(migrationsDir(stateRoot)).catch(() => [] as string[]);
  const records: MigrationRecordFile[] = [];
  for (const name of names.filter((entry) => entry.endsWith('.json')).sort()) {
    try {
      const record = JSON.parse(await readFile(path.join(migrationsDir(stateRoot), name), 'utf8'));
      if (`${record.id}.json` === name) records.push(withImageIdentities(record as MigrationRecordFile));
    } catch {
      // Not a record (writeFileDurably makes torn records impossible).
    }
  }
  const ids = new Set(records.map((record) => record.id));
  for (const name of names.filter((entry) => entry.endsWith('.resume-started'))) {
    const id = name.slice(0, -'.resume-started'.length);
    if (!ids.has(id)) await rm(resumeMarkFile(stateRoot, id), { force: true });
  }
  return Promise.all(
    records.map(async (record) => {
      if (record.role !== 'target' || record.resumeStartedAtMs !== undefined) return record;
      const mark = await stat(resumeMarkFile(stateRoot, record.id)).catch(() => undefined);
      return mark === undefined ? record : { ...record, resumeStartedAtMs: mark.mtimeMs };
    }),
  );
}

/**
 * Records of daemons before image identities named images by path alone: such an entry carries no identity, so
 * nothing is ever removed by it (a file the daemon cannot tell as its own is left).
 */
function withImageIdentities(record: MigrationRecordFile): MigrationRecordFile {
  const legacy = (entry: unknown): boolean => typeof entry === 'string';
  if (!record.createdImages?.some(legacy) && !record.localImages?.some(legacy)) return record;
  return {
    ...record,
    ...(record.createdImages
      ? { createdImages: record.createdImages.filter((entry) => !legacy(entry)) }
      : {}),
    ...(record.localImages
      ? {
          localImages: record.localImages.map((entry) =>
            legacy(entry) ? { path: entry as unknown as string } : entry,
          ),
        }
      : {}),
  };
}
