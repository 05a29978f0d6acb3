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
