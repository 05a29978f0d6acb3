import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/**
 * A long-running server (etcd, kube-apiserver) started for a test. It is spawned through `setpriv --pdeathsig
 * SIGKILL`, which sets PR_SET_PDEATHSIG and then execs the server: the kernel kills the server as soon as the node
 * process that spawned it dies, even by SIGKILL, so a crashed test run leaves no orphan behind. (The signal fires
 * when the spawning *thread* exits; node spawns children from its main thread, which lives as long as the process.)
 * A `detached` server (the local cluster's) is the exception: it runs in its own session and outlives its starter.
 */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves with a description of how the process ended ("code 1", "signal SIGKILL"). */
  readonly exited: Promise<string>;
  /** SIGKILL (the data is thrown away, so there is nothing to shut down gracefully); wait on `exited`. */
  kill(): void;
  logTail(lines: number): string;
}

export function startServer(
  name: string,
  binary: string,
  args: string[],
  logPath: string,
  opts: { detached?: boolean } = {},
): ServerProcess {
  const log = openSync(logPath, 'w');
  const child = opts.detached
    ? spawn(binary, args, { stdio: ['ignore', log, log], detached: true })
    : spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', binary, ...args], { stdio: ['ignore', log, log] });
  closeSync(log);
  if (opts.detached) child.unref();
  let running = true;
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => {
      running = false;
      resolve(`spawn error: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      running = false;
      resolve(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  if (child.pid === undefined) {
    throw new Error(`cannot spawn ${name} (${binary}) through setpriv; is util-linux installed?`);
  }

  return {
    name,
    pid: child.pid,
    exited,
    kill() {
      if (running) child.kill('SIGKILL');
    },
    logTail(lines) {
      try {
        return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch (err) {
        return `(no log: ${(err as Error).message})`;
      }
    },
  };
}
