// Runs one of Tern's programs (the daemon, the operator) as a real child process for tests and the local cluster:
// from its TypeScript source through tsx, or a bundle of the production build (hack/build-dist.ts) under plain
// node. JSON log lines are collected, and start-up completes when the program logs its ready message.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const READY_TIMEOUT_MS = 60_000;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServiceProcess {
  pid: number;
  /** The ready log line (it carries the ports the program bound). */
  ready: LogLine;
  /** Every JSON log line so far. */
  logs: LogLine[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends the signal (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Joins every cgroup dir up to `--` (`$0` the first), then becomes the program. */
const JOIN_CGROUPS =
  'set -- "$0" "$@"; while [ "$1" != -- ]; do echo $$ >"$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"';

export interface ServiceProcessOptions {
  /**
   * Cgroup directories the program runs in from its first instruction on, as in a container's cgroups: one cgroup v2
   * dir, or one per cgroup v1 hierarchy.
   */
  cgroup?: string | readonly string[];
  /** Extra Node.js options, after tsx is loaded (so `--import` may name a .ts file; no tsx for a built bundle). */
  nodeOptions?: string[];
  /**
   * Runs the program (and every QEMU it starts) in a mount namespace of its own where `source` is bind-mounted
   * over `target`: two daemons on one host then see different files at the same path, as two nodes do (the local
   * disks of a migration).
   */
  privateMount?: { source: string; target: string };
}

/**
 * Starts `node --import tsx <main> <args>` (a .ts source) or `node <main> <args>` (a built .mjs bundle) and resolves
 * once it logged `readyMessage`.
 */
export async function startServiceProcess(
  main: string,
  args: string[],
  readyMessage: string,
  options: ServiceProcessOptions = {},
): Promise<ServiceProcess> {
  const loader = main.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const command = [process.execPath, ...loader, ...(options.nodeOptions ?? []), main, ...args];
  // The shell joins the cgroup and then becomes node (exec keeps the pid): nothing runs outside it.
  if (options.cgroup !== undefined && options.privateMount !== undefined)
    throw new Error('cgroup and privateMount cannot be combined');
  const { privateMount } = options;
  const child: ChildProcess =
    privateMount !== undefined
      ? // unshare and the shell exec: the pid stays the program's.
        spawn(
          'unshare',
          [
            ...['--mount', '--propagation', 'private', '/bin/sh', '-c'],
            'mount --bind "$1" "$2" && shift 2 && exec "$@"',
            ...['sh', privateMount.source, privateMount.target, ...command],
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
      : options.cgroup === undefined
        ? spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('/bin/sh', ['-c', JOIN_CGROUPS, ...[options.cgroup].flat(), '--', ...command], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
  const logs: LogLine[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${main} did not log '${readyMessage}' within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as LogLine;
        logs.push(entry);
        if (entry.msg === readyMessage) {
          clearTimeout(timer);
          resolve(entry);
        }
      } catch {
        stderr += `${line}\n`;
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited with ${code} before it was ready: ${stderr}${JSON.stringify(logs)}`));
    });
  });
  const entry = await ready.catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    pid: child.pid!,
    ready: entry,
    logs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
