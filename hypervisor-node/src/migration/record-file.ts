// What a daemon must remember of a migration across its own restart, in <state>/.migrations/<id>.json: enough to
// find the guest's QEMU again and to answer the operator's retried calls. The token itself is not stored, only
// its digest (to recognise a retried StartMigration).
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

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
}

export const migrationsDir = (stateRoot: string): string => path.join(stateRoot, '.migrations');

export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('hex');

export async function writeRecordFile(stateRoot: string, record: MigrationRecordFile): Promise<void> {
  await mkdir(migrationsDir(stateRoot), { recursive: true, mode: 0o700 });
  const file = path.join(migrationsDir(stateRoot), `${record.id}.json`);
  // Written aside and renamed over, so a crash leaves the old record or the new one, never half of one.
  await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function removeRecordFile(stateRoot: string, id: string): Promise<void> {
  await rm(path.join(migrationsDir(stateRoot), `${id}.json`), { force: true });
}

/** Every record file in the state root. */
export async function readRecordFiles(stateRoot: string): Promise<MigrationRecordFile[]> {
  const names = await readdir(migrationsDir(stateRoot)).catch(() => [] as string[]);
  const records: MigrationRecordFile[] = [];
  for (const name of names.filter((entry) => entry.endsWith('.json')).sort()) {
    try {
      const record = JSON.parse(await readFile(path.join(migrationsDir(stateRoot), name), 'utf8'));
      if (`${record.id}.json` === name) records.push(record as MigrationRecordFile);
    } catch {
      // Not a record (the rename makes torn records impossible).
    }
  }
  return records;
}
