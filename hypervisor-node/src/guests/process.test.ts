import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeExitStatus, isQemuOfGuest, readExitStatus, tailLines } from './process.js';
import { guestPaths } from './state-dir.js';

test('describes shell exit statuses, signals included', () => {
  expect(describeExitStatus(0)).toBe('exited with status 0');
  expect(describeExitStatus(1)).toBe('exited with status 1');
  expect(describeExitStatus(137)).toBe('killed by signal SIGKILL (9)');
  expect(describeExitStatus(134)).toBe('killed by signal SIGABRT (6)');
  expect(describeExitStatus(undefined)).toBe('exit status unknown');
});

test('reads exit status files and console tails', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tern-proc-'));
  try {
    await writeFile(path.join(dir, 'status'), '137\n');
    await writeFile(path.join(dir, 'partial'), '');
    expect(await readExitStatus(path.join(dir, 'status'))).toBe(137);
    expect(await readExitStatus(path.join(dir, 'partial'))).toBeUndefined();
    expect(await readExitStatus(path.join(dir, 'missing'))).toBeUndefined();
    await writeFile(path.join(dir, 'console'), 'one\r\ntwo\n\nthree\nfour\n');
    expect(await tailLines(path.join(dir, 'console'), 3)).toBe('two\nthree\nfour');
    expect(await tailLines(path.join(dir, 'missing'), 3)).toBe('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a pid is not taken for a guest QEMU unless its command line names the guest pidfile', async () => {
  const paths = guestPaths('/var/lib/tern', 'vm01');
  expect(await isQemuOfGuest(process.pid, paths)).toBe(false);
  expect(await isQemuOfGuest(2 ** 22 + 1, paths)).toBe(false);
});
