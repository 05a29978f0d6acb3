// Runs the real daemon (hypervisor-node/src/main.ts) as a child process for integration tests, and kills any
// QEMU it left behind.
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DevCerts } from './certificates.js';
import { killGuestQemusUnder } from '../../hypervisor-node/src/runtime/process.js';
import { runningWatchdog } from '../../hypervisor-node/src/self-fencing/watchdog.js';
import { programMain } from './program-bundles.js';
import { startServiceProcess, type ServiceProcess, type ServiceProcessOptions } from './service-process.js';

export type { LogLine } from './service-process.js';

const MAIN = fileURLToPath(new URL('../../hypervisor-node/src/main.ts', import.meta.url));

export interface DaemonProcess extends Omit<ServiceProcess, 'ready'> {
  grpcPort: number;
  metricsPort: number;
}

export interface LoopbackDaemon {
  node: string;
  certs: DevCerts;
  stateDir: string;
  /** --shared-image-root: read-only images (the test guest's kernel and initrd). */
  sharedImageRoot: string;
  /** --image-root: one directory per namespace, for writable disks; default none. */
  imageRoot?: string;
}

/**
 * The arguments of a test daemon for `node`: gRPC and metrics on free loopback ports, the node's certificate,
 * TCG; `extra` is appended (e.g. '--network', 'user').
 */
export function loopbackDaemonArgs(daemon: LoopbackDaemon, ...extra: string[]): string[] {
  const pair = daemon.certs.nodes[daemon.node]!;
  return [
    ...['--node-name', daemon.node, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-cert', pair.cert, '--tls-key', pair.key, '--tls-ca', daemon.certs.ca.cert],
    ...[
      '--state-dir',
      daemon.stateDir,
      '--shared-image-root',
      daemon.sharedImageRoot,
      '--accelerator',
      'tcg',
    ],
    ...(daemon.imageRoot !== undefined ? ['--image-root', daemon.imageRoot] : []),
    ...extra,
  ];
}

/**
 * `options.cgroup`: run the daemon in those cgroups (one v2 dir or one per v1 hierarchy), as a container runtime
 * would. `options.main`: a built bundle (hack/build-dist.ts) to run under plain node. Without it the daemon runs
 * from the harness's bundle of the current sources (program-bundles.ts), or from the TypeScript source when
 * `options.nodeOptions` may name a .ts module.
 */
export async function startDaemonProcess(
  args: string[],
  options: ServiceProcessOptions & { main?: string } = {},
): Promise<DaemonProcess> {
  const { main: given, ...serviceOptions } = options;
  const main =
    given ?? (serviceOptions.nodeOptions === undefined ? await programMain('hypervisor-node', MAIN) : MAIN);
  const service = await startServiceProcess(main, args, 'hypervisor-node ready', serviceOptions);
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
export function killGuestsIn(stateDir: string): Promise<number> {
  return killGuestQemusUnder(stateDir);
}

/**
 * Kills the node's fence watchdog, which outlives its daemon by design (it ends on its own within a tick, at most
 * 1 s, once the state dir is gone), and waits, bounded, until it is gone.
 */
export async function killWatchdogIn(stateDir: string, timeoutMs = 5_000): Promise<void> {
  const found = async (): Promise<number[]> => {
    const pid = await runningWatchdog(stateDir);
    // One spawned by a daemon stopped at that moment may not have written its pid file yet: its command line
    // (`sh -c <script> <state dir> <cgroup>`) names it.
    return [...new Set([...(pid === undefined ? [] : [pid]), ...(await unrecordedWatchdogs(stateDir))])];
  };
  const deadline = Date.now() + timeoutMs;
  for (let pids = await found(); pids.length > 0 && Date.now() < deadline; pids = await found()) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Live watchdog shells of `stateDir` by their command line (its script writes watchdog.pid; $0 is the dir). */
async function unrecordedWatchdogs(stateDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[1] === '-c' && argv[2]?.includes('watchdog.pid') && argv[3] === stateDir)
      pids.push(Number(entry));
  }
  return pids;
}
