// Runs the real daemon (hypervisor-node/src/main.ts) as a child process for integration tests, and kills any
// QEMU it left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface DaemonProcess {
  grpcPort: number;
  metricsPort: number;
  /** Every JSON log line so far. */
  logs: LogLine[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startDaemonProcess(args: string[]): Promise<DaemonProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`daemon not ready within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as LogLine;
        logs.push(entry);
        if (entry.msg === 'hypervisor-node ready') {
          clearTimeout(timer);
          resolve(entry);
        }
      } catch {
        stderr += `${line}\n`;
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before it was ready: ${stderr}${JSON.stringify(logs)}`));
    });
  });
  const entry = await ready.catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    grpcPort: entry.grpcPort as number,
    metricsPort: entry.metricsPort as number,
    logs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Kills every QEMU whose pidfile lies in stateDir and whose command line names that guest dir. */
export async function killGuestsIn(stateDir: string): Promise<number> {
  let killed = 0;
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    const pid = Number((await readFile(join(stateDir, name, 'qemu.pid'), 'utf8').catch(() => '')).trim());
    if (!pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(join(stateDir, name))) continue;
    process.kill(pid, 'SIGKILL');
    killed++;
  }
  return killed;
}
