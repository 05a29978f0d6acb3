// Runs the real daemon (hypervisor-node/src/main.ts) as a child process for integration tests, and kills any
// QEMU it left behind.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServiceProcess, type ServiceProcess } from '../../../test/harness/service-process.js';

export type { LogLine } from '../../../test/harness/service-process.js';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

export interface DaemonProcess extends Omit<ServiceProcess, 'ready'> {
  grpcPort: number;
  metricsPort: number;
}

export async function startDaemonProcess(args: string[]): Promise<DaemonProcess> {
  const service = await startServiceProcess(MAIN, args, 'hypervisor-node ready');
  return {
    ...service,
    grpcPort: service.ready.grpcPort as number,
    metricsPort: service.ready.metricsPort as number,
  };
}

/**
 * Kills every QEMU whose command line names a guest dir under stateDir (whether or not it has written its
 * pidfile yet) and waits until they are gone, so that the caller can remove the directory.
 */
export async function killGuestsIn(stateDir: string): Promise<number> {
  const prefix = join(stateDir, '/');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.startsWith('qemu-system') && !cmdline.includes('/qemu-system')) continue;
    if (!cmdline.includes(prefix)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      pids.push(pid);
    } catch {
      // Exited meanwhile.
    }
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const alive = await Promise.all(pids.map(isRunning));
    if (!alive.includes(true)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pids.length;
}

/** True while the process exists and is not a zombie (a zombie no longer touches files). */
async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}
