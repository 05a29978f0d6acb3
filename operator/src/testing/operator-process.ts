// Runs the real operator (operator/src/main.ts) as a child process for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface OperatorProcess {
  pid: number;
  metricsPort: number;
  /** Every JSON log line so far. */
  logs: LogLine[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends the signal (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the operator with `args` and resolves once it logged 'tern-operator ready' (metrics endpoint up). */
export async function startOperatorProcess(args: string[]): Promise<OperatorProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`operator not ready within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as LogLine;
        logs.push(entry);
        if (entry.msg === 'tern-operator ready') {
          clearTimeout(timer);
          resolve(entry);
        }
      } catch {
        stderr += `${line}\n`;
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`operator exited with ${code} before it was ready: ${stderr}`));
    });
  });
  const entry = await ready.catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    pid: child.pid!,
    metricsPort: entry.metricsPort as number,
    logs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
