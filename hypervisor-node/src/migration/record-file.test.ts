import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  markResumeStarted,
  migrationsDir,
  readRecordFiles,
  removeRecordFile,
  writeRecordFile,
  type MigrationRecordFile,
} from './record-file.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'record-file-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const record = (id: string, role: MigrationRecordFile['role'] = 'target'): MigrationRecordFile => ({
  id,
  role,
  guest: 'g',
  dataEndpoint: '127.0.0.1:1',
  tokenDigest: 'd',
});

describe('the resume mark', () => {
  it('is read back with its record: a target marked before `cont` may have run the guest', async () => {
    await writeRecordFile(root, record('marked'));
    await writeRecordFile(root, record('unmarked'));
    await markResumeStarted(root, 'marked');
    const byId = new Map((await readRecordFiles(root)).map((file) => [file.id, file]));
    expect(byId.get('marked')?.resumeStartedAtMs).toEqual(expect.any(Number));
    expect(byId.get('unmarked')?.resumeStartedAtMs).toBeUndefined();
  });

  it('of an older daemon, in the record itself, still counts', async () => {
    await writeRecordFile(root, { ...record('old'), resumeStartedAtMs: 5 });
    expect((await readRecordFiles(root))[0]?.resumeStartedAtMs).toBe(5);
  });

  it('goes with its record, after it; one left without its record is swept', async () => {
    await writeRecordFile(root, record('done'));
    await markResumeStarted(root, 'done');
    await removeRecordFile(root, 'done');
    expect(await readdir(migrationsDir(root))).toEqual([]);
    // A removal interrupted between the two files.
    await markResumeStarted(root, 'orphan');
    expect(await readRecordFiles(root)).toEqual([]);
    expect(await readdir(migrationsDir(root))).toEqual([]);
  });
});
