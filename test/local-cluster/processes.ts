// Processes of the local cluster that outlive the command starting them: they run in their own session with
// their output in a log file, and are found again by pid from the state file.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const READY_TIMEOUT_MS = 90_000;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A zombie (exited, not reaped yet) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True when pid runs and its command line contains `marker`: a recycled pid is never taken for ours. */
export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/**
 * Live processes running one of `programs` (an executable's or script's path suffix) whose command line mentions
 * `marker`: what a crash left unrecorded.
 */
export function processesOf(programs: string[], marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || !isAlive(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const runsProgram = argv.slice(0, 4).some((arg) => programs.some((program) => arg.endsWith(program)));
    if (runsProgram && argv.some((arg) => arg.includes(marker))) found.push(pid);
  }
  return found;
}

/** Sends `signal` to each pid and waits (up to `ms`) until all are gone; SIGKILLs the rest after that. */
export async function killAndWait(
  pids: number[],
  signal: NodeJS.Signals = 'SIGKILL',
  ms = 10_000,
): Promise<void> {
  const signalAll = (sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signalAll(signal);
  const deadline = Date.now() + ms;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) {
      if (signal === 'SIGKILL') throw new Error(`processes ${pids.filter(isAlive).join(', ')} do not exit`);
      return killAndWait(pids.filter(isAlive), 'SIGKILL', ms);
    }
    await sleep(50);
  }
}

function logLines(path: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line being written right now
    }
  }
  return lines;
}

function logTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts `command args` detached (own session, output appended to `log`) and waits until it writes a JSON log line
 * whose msg is `readyMessage`; returns its pid and that line. Kills it when it does not get ready.
 */
export async function startDetached(
  command: string,
  args: string[],
  opts: { log: string; readyMessage: string; cwd: string },
): Promise<{ pid: number; ready: LogLine }> {
  const fd = openSync(opts.log, 'a');
  const offset = readFileSync(opts.log).length;
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the cluster's programs
  const child = spawn(command, args, { cwd: opts.cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${command}`);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const fresh = readFileSync(opts.log).subarray(offset).toString('utf8');
    const ready = fresh.includes(opts.readyMessage)
      ? logLines(opts.log).findLast((line) => line.msg === opts.readyMessage)
      : undefined;
    if (ready !== undefined) return { pid, ready };
    if (!isAlive(pid) || Date.now() > deadline) {
      await killAndWait([pid]);
      throw new Error(
        `${args.join(' ')} did not log '${opts.readyMessage}' (${isAlive(pid) ? 'timed out' : 'exited'}); ` +
          `log ${opts.log}:\n${logTail(opts.log)}`,
      );
    }
    await sleep(100);
  }
}
