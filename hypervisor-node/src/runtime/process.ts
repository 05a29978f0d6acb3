// QEMU processes that outlive the daemon: detached launch through a tiny shell that records QEMU's exit status,
// identity checks for a pid read back from a state dir or found by scanning /proc, and exit descriptions.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestPaths } from '../model/state-dir.js';
import type { GuestReason } from '../model/guest.js';

/**
 * The shell stays QEMU's parent after the daemon exits, so QEMU's exit status is still collected (and written to
 * the state dir) when no daemon is around. `$0` is the status file, `$@` the QEMU command: no user string is
 * ever parsed by the shell.
 */
const EXIT_STATUS_SHIM = '"$@"; echo $? >"$0"';
/**
 * What a daemon before cgroup v1 support ran in a guest cgroup v2 (`$1`): still recognised as a shim, not QEMU, for
 * the guests such a daemon started.
 */
const LEGACY_CGROUP_EXIT_STATUS_SHIM = 'echo $$ >"$1/cgroup.procs" || exit 125; shift; "$@"; echo $? >"$0"';
/**
 * Joins cgroups, then becomes the command (exec keeps the pid): `$0` is how many cgroup dirs follow, then the
 * command. Nothing of the command ever runs outside them; exits with CGROUP_JOIN_FAILED (starting nothing) when it
 * cannot join one.
 */
const JOIN_CGROUPS =
  'n=$0; while [ "$n" -gt 0 ]; do echo $$ >"$1/cgroup.procs" || exit 125; shift; n=$((n - 1)); done; exec "$@"';
export const CGROUP_JOIN_FAILED = 125;

/** `/bin/sh` arguments that run `command` in every one of `cgroups` (none: as it is). */
export function inCgroups(cgroups: readonly string[], command: readonly string[]): string[] {
  return cgroups.length === 0
    ? [...command]
    : ['/bin/sh', '-c', JOIN_CGROUPS, String(cgroups.length), ...cgroups, ...command];
}

/**
 * Starts QEMU in its own session with stdout/stderr to qemu.log; the daemon may exit without affecting it. With
 * `cgroups` (existing cgroup dirs: one on cgroup v2, one per hierarchy on v1), the shim and QEMU run in them.
 */
export function spawnDetachedQemu(
  qemuBinary: string,
  argv: string[],
  paths: GuestPaths,
  cgroups: readonly string[] = [],
): ChildProcess {
  const [command, ...args] = inCgroups(cgroups, [
    ...['/bin/sh', '-c', EXIT_STATUS_SHIM, paths.exitStatus],
    ...[qemuBinary, ...argv],
  ]);
  const log = openSync(paths.qemuLog, 'a');
  try {
    const child = spawn(command!, args, {
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/** True when `pid` is a live (non-zombie) process whose command line names this guest's pidfile. */
export async function isQemuOfGuest(pid: number, paths: GuestPaths): Promise<boolean> {
  return (await qemuPidfileOf(pid)) === paths.pid;
}

/**
 * Every live guest QEMU whose pidfile lies in a guest dir under `dir` (a state root, or one guest's dir), found by
 * scanning /proc: it finds a QEMU that has not written its pidfile yet (or whose pidfile is lost), which readPid
 * cannot.
 */
export async function findGuestQemus(dir: string): Promise<number[]> {
  const prefix = path.join(dir, '/');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if ((await qemuPidfileOf(pid))?.startsWith(prefix)) pids.push(pid);
  }
  return pids;
}

/**
 * SIGKILLs every guest QEMU found under `dir` (findGuestQemus: pidfile or not) and waits, at most `timeoutMs`,
 * until they are gone. Returns how many it killed.
 */
export async function killGuestQemusUnder(dir: string, timeoutMs = 5_000): Promise<number> {
  const killed: number[] = [];
  for (const pid of await findGuestQemus(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // Exited meanwhile.
    }
  }
  const deadline = Date.now() + timeoutMs;
  // Until no live QEMU is left and the killed ones are reaped too (by their launch shim, at once): a caller that
  // goes on to remove the guest never finds its QEMU still in the process table.
  while (Date.now() < deadline && ((await findGuestQemus(dir)).length > 0 || killed.some(exists)))
    await sleep(5);
  return killed.length;
}

/**
 * The `-pidfile` argument of a live process started by spawnDetachedQemu as QEMU (not its shim), when that pidfile's
 * dir is the one this daemon sees at that path: a QEMU of another state dir mounted at the same path elsewhere (two
 * nodes sharing one PID namespace, as the kubelet test cluster's do, each with its own /var/lib/tern) is not ours.
 */
async function qemuPidfileOf(pid: number): Promise<string | undefined> {
  const argv = await liveCommandLine(pid);
  const isShim =
    argv?.[1] === '-c' && [EXIT_STATUS_SHIM, LEGACY_CGROUP_EXIT_STATUS_SHIM, JOIN_CGROUPS].includes(argv[2]!);
  if (argv === undefined || isShim) return undefined;
  const at = argv.indexOf('-pidfile');
  const pidfile = at < 0 ? undefined : argv[at + 1];
  if (pidfile === undefined || !path.isAbsolute(pidfile)) return pidfile;
  return (await seesSameDir(pid, path.dirname(pidfile))) ? pidfile : undefined;
}

/**
 * Whether process `pid` sees at `dir` (through /proc/<pid>/root) the directory this process sees there: the same
 * inode, or neither has one (nothing tells them apart then). Its root unreadable (no permission): the path is all
 * there is to go by.
 */
async function seesSameDir(pid: number, dir: string): Promise<boolean> {
  const statOrAbsent = (at: string) =>
    stat(at).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
  let theirs, ours;
  try {
    [theirs, ours] = await Promise.all([statOrAbsent(`/proc/${pid}/root${dir}`), statOrAbsent(dir)]);
  } catch {
    return true;
  }
  if (theirs === undefined || ours === undefined) return theirs === ours;
  return ours.dev === theirs.dev && ours.ino === theirs.ino;
}

async function liveCommandLine(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may itself contain ')'.
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return undefined;
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  } catch {
    return undefined;
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The shim's `$?` for QEMU, or undefined when it has not been written. */
export async function readExitStatus(file: string): Promise<number | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The Failed reason of a QEMU that ended on its own with this shell `$?` (see describeExitStatus). */
export function exitReason(status: number | undefined): GuestReason {
  if (status === undefined) return 'ExitStatusUnknown';
  return status > 128 ? 'Signaled' : 'Exited';
}

/** A shell `$?`: 128+N means the process died from signal N (QEMU itself never exits with such a status). */
export function describeExitStatus(status: number | undefined): string {
  if (status === undefined) return 'exit status unknown';
  if (status > 128) {
    const signal = status - 128;
    const name = Object.entries(constants.signals).find(([, number]) => number === signal)?.[0];
    return `killed by signal ${name ?? 'unknown'} (${signal})`;
  }
  return `exited with status ${status}`;
}

/** The last `lines` non-empty lines of a file (reading at most its last 64 KiB); '' when it does not exist. */
export async function tailLines(file: string, lines: number): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer
      .toString('utf8')
      .split(/\r?\n/)
      .filter((line) => line.trim().length > 0)
      .slice(-lines)
      .join('\n');
  } finally {
    await handle.close();
  }
}

/** Whether `pid` is still in the process table (a zombie counts). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
