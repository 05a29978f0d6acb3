import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_HISTORY_BYTES, readHistory } from './history.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'history-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('a short log comes whole; none asked, none given; no log, empty', async () => {
  const file = join(dir, 'console.log');
  await writeFile(file, 'one\ntwo\n');
  expect((await readHistory(file, 1024)).toString()).toBe('one\ntwo\n');
  expect((await readHistory(file, 0)).length).toBe(0);
  expect((await readHistory(join(dir, 'missing.log'), 1024)).length).toBe(0);
});

test('a cut inside a line starts at the next whole line', async () => {
  const file = join(dir, 'console.log');
  await writeFile(file, 'first line\nsecond\nthird\n');
  // The last 14 bytes begin right after "first line": "second" is whole.
  expect((await readHistory(file, 14)).toString()).toBe('second\nthird\n');
  expect((await readHistory(file, 10)).toString()).toBe('third\n');
});

test('never more than MAX_HISTORY_BYTES', async () => {
  const file = join(dir, 'console.log');
  await writeFile(file, 'x'.repeat(MAX_HISTORY_BYTES * 2));
  expect((await readHistory(file, MAX_HISTORY_BYTES * 4)).length).toBe(MAX_HISTORY_BYTES);
});
