import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CGROUP_JOIN_FAILED,
  describeExitStatus,
  inCgroups,
  exitReason,
  findGuestQemus,
  isQemuOfGuest,
  readExitStatus,
  tailLines,
} from './process.js';
import { guestPaths } from '../model/state-dir.js';

/** True while the process exists and is not a zombie (a zombie no longer touches files). */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('describes shell exit statuses, signals included', () => {
  expect(describeExitStatus(0)).toBe('exited with status 0');
  expect(describeExitStatus(1)).toBe('exited with status 1');
  expect(describeExitStatus(137)).toBe('killed by signal SIGKILL (9)');
  expect(describeExitStatus(134)).toBe('killed by signal SIGABRT (6)');
  expect(describeExitStatus(undefined)).toBe('exit status unknown');
  expect([0, 1, 137, undefined].map(exitReason)).toEqual([
    'Exited',
    'Exited',
    'Signaled',
    'ExitStatusUnknown',
  ]);
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

test('a /proc scan finds a process whose -pidfile lies in a guest dir, pidfile written or not', async () => {
  const stateRoot = await mkdtemp(path.join(tmpdir(), 'tern-scan-'));
  const vm01 = guestPaths(stateRoot, 'vm01');
  const vm011 = guestPaths(stateRoot, 'vm011');
  // Stand-ins with QEMU's -pidfile argument; neither writes its pidfile, like a QEMU that has not got that far.
  const idle = (paths: typeof vm01) =>
    spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', '--', '-pidfile', paths.pid], {
      stdio: 'ignore',
    });
  const children = [idle(vm01), idle(vm011)];
  try {
    await Promise.all(children.map((child) => new Promise((resolve) => child.once('spawn', resolve))));
    const [pid01, pid011] = children.map((child) => child.pid as number);
    expect(await findGuestQemus(vm01.dir)).toEqual([pid01]);
    expect((await findGuestQemus(stateRoot)).sort()).toEqual([pid01, pid011].sort());
    expect(await findGuestQemus(path.join(stateRoot, 'vm02'))).toEqual([]);
    expect(await isQemuOfGuest(pid01!, vm01)).toBe(true);
    expect(await isQemuOfGuest(pid01!, vm011)).toBe(false);

    children[0]!.kill('SIGKILL');
    await new Promise((resolve) => children[0]!.once('exit', resolve));
    expect(await isAlive(pid01!)).toBe(false);
    expect(await findGuestQemus(stateRoot)).toEqual([pid011]);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await rm(stateRoot, { recursive: true, force: true });
  }
});

(process.getuid?.() === 0 ? test : test.skip)(
  "a process whose guest dir is another mount's (another node's state dir at the same path) is not the guest's QEMU",
  async () => {
    const stateRoot = await mkdtemp(path.join(tmpdir(), 'tern-scan-'));
    const vm01 = guestPaths(stateRoot, 'vm01');
    await mkdir(vm01.dir);
    const script = 'setTimeout(() => {}, 60000)';
    const ours = spawn(process.execPath, ['-e', script, '--', '-pidfile', vm01.pid], { stdio: 'ignore' });
    // The same path in a mount namespace where a tmpfs hides this state root: as a second node's daemon sees its own.
    const theirs = spawn(
      'unshare',
      [
        ...['--mount', '--propagation', 'private', '/bin/sh', '-c'],
        'mount -t tmpfs none "$1" && mkdir "$1/vm01" && shift && exec "$@"',
        ...['sh', stateRoot, process.execPath, '-e', script, '--', '-pidfile', vm01.pid],
      ],
      { stdio: 'ignore' },
    );
    try {
      await Promise.all(
        [ours, theirs].map((child) => new Promise((resolve) => child.once('spawn', resolve))),
      );
      // Until the other one has exec'd into node with its -pidfile argument.
      const deadline = Date.now() + 10_000;
      while (!(await readFile(`/proc/${theirs.pid}/cmdline`, 'utf8')).includes('-pidfile')) {
        if (Date.now() > deadline) throw new Error('the process in its own mount namespace did not start');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await findGuestQemus(stateRoot)).toEqual([ours.pid]);
      expect(await isQemuOfGuest(ours.pid!, vm01)).toBe(true);
      expect(await isQemuOfGuest(theirs.pid!, vm01)).toBe(false);
    } finally {
      for (const child of [ours, theirs]) child.kill('SIGKILL');
      await rm(stateRoot, { recursive: true, force: true });
    }
  },
);

/** Runs `/bin/sh` argv to its end: its pid, exit code and stdout. */
function runToEnd(argv: string[]): Promise<{ pid: number; code: number | null; stdout: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ pid: child.pid!, code, stdout })));
}

describe('inCgroups', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tern-incgroups-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes its pid into every cgroup, then execs the command with that pid', async () => {
    // Plain dirs stand in for the cgroups: a cgroup.procs file receives the pid as a cgroup's would.
    const cgroups = [path.join(dir, 'cpu', 'g'), path.join(dir, 'freezer', 'g with space')];
    for (const cgroup of cgroups) await mkdir(cgroup, { recursive: true });
    const result = await runToEnd(inCgroups(cgroups, ['/bin/sh', '-c', 'echo "$$ $1"', 'sh', 'arg 1']));
    expect(result).toEqual({ pid: result.pid, code: 0, stdout: `${result.pid} arg 1\n` });
    for (const cgroup of cgroups)
      expect(await readFile(path.join(cgroup, 'cgroup.procs'), 'utf8')).toBe(`${result.pid}\n`);
  });

  it('starts nothing and exits with CGROUP_JOIN_FAILED when it cannot join one', async () => {
    const marker = path.join(dir, 'ran');
    const result = await runToEnd(
      inCgroups([dir, path.join(dir, 'missing')], ['/bin/sh', '-c', 'touch "$1"', 'sh', marker]),
    );
    expect(result.code).toBe(CGROUP_JOIN_FAILED);
    await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is the command itself without cgroups', () => {
    expect(inCgroups([], ['/bin/true', 'x'])).toEqual(['/bin/true', 'x']);
  });
});
