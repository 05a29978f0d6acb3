// One local cluster per end-to-end test file, brought up by the same code as `npm run cluster -- up` (network
// namespaces as root), under its own name and temp dir so that it never collides with a cluster a user has up.
// A cluster that a killed test run left behind is removed by the next run (its owner pid is part of the dir name).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Migration, VirtualMachine } from '../../crds/index.js';
import { AgentClient, type VerifyResult } from '../../guest/host/agent-client.js';
import { testGuestImages } from '../../hypervisor-node/src/guests/test-guest.js';
import { kubeBinary } from '../../test/harness/control-plane.js';
import { downCluster, testGuestVm, upCluster, type LocalCluster } from '../../hack/cluster/local-cluster.js';
import { isAlive } from '../../hack/cluster/processes.js';
import { PLUGIN_DIR } from '../../hack/cluster/usage.js';
import { eventually as pollUntil } from '../harness/eventually.js';

const run = promisify(execFile);
const DIR_PREFIX = 'tern-e2e-';

async function removeAbandonedClusters(): Promise<void> {
  for (const entry of await readdir(tmpdir())) {
    const owner = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1];
    if (owner !== undefined && !isAlive(Number(owner))) await downCluster(join(tmpdir(), entry));
  }
}

export interface E2eCluster extends LocalCluster {
  down(): Promise<void>;
  getJson<T>(...args: string[]): Promise<T>;
  getVm(name: string): Promise<VirtualMachine>;
  /** `kubectl tern ARGS` through the real kubectl with the plugin on the PATH; throws on a non-zero exit. */
  kubectlTern(args: string[]): Promise<string>;
  /** Pids of the QEMU processes running guest `vm` inside each node's namespace. */
  qemuPids(vm: string): Promise<Record<string, number[]>>;
  /** Runs the guest agent's memory check of `vm` on `node`. */
  verify(node: string, vm: string): Promise<VerifyResult>;
}

export async function startE2eCluster(nodes = ['node-a', 'node-b']): Promise<E2eCluster> {
  await removeAbandonedClusters();
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const name = `e${randomBytes(4).readUInt32BE().toString(36).slice(0, 5)}`;
  const cluster = await upCluster({ dir, name, nodes });
  if (cluster.state.mode !== 'netns') {
    await downCluster(dir, name);
    throw new Error('the end-to-end tests need network namespaces (run them as root)');
  }
  const getJson = async <T>(...args: string[]) =>
    JSON.parse(await cluster.kubectl(['get', ...args, '-o', 'json'])) as T;
  return {
    ...cluster,
    async down() {
      await downCluster(dir, name);
    },
    getJson,
    getVm: (vm) => getJson<VirtualMachine>('virtualmachine', vm),
    async kubectlTern(args) {
      const { stdout } = await run(
        kubeBinary('kubectl'),
        ['tern', ...args, '--kubeconfig', cluster.kubeconfig],
        {
          env: { ...process.env, NODE_OPTIONS: '', PATH: `${PLUGIN_DIR}:${process.env.PATH ?? ''}` },
        },
      );
      return stdout;
    },
    async qemuPids(vm) {
      const found: Record<string, number[]> = {};
      for (const node of cluster.state.nodes) {
        const { stdout } = await run('ip', ['netns', 'pids', node.netns!]);
        found[node.name] = [];
        for (const pid of stdout.split('\n').filter(Boolean).map(Number)) {
          const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
          if (argv[0]?.endsWith('qemu-system-x86_64') && argv.includes(join(node.stateDir, vm, 'qemu.pid')))
            found[node.name]!.push(pid);
        }
      }
      return found;
    },
    async verify(node, vm) {
      const agent = await AgentClient.connect(join(cluster.node(node).stateDir, vm, 'agent.sock'), {
        timeoutMs: 30_000,
      });
      try {
        await agent.waitReady(90_000);
        return await agent.verify();
      } finally {
        agent.close();
      }
    },
  };
}

/** A small test guest: 256 MiB, 1 CPU, a `wssMib` working set of which `dirtyPps` pages are dirtied per second. */
export async function smallVm(name: string, dirtyPps = 0, wssMib = 16): Promise<VirtualMachine> {
  // The agent takes the last tern.wss_mib on the command line.
  return testGuestVm(name, await testGuestImages(), [`tern.wss_mib=${wssMib}`, `tern.dirty_pps=${dirtyPps}`]);
}

/** test/harness's eventually, with the patience of a whole cluster: 2 min, polling every 250 ms. */
export const eventually = <T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> =>
  pollUntil(what, probe, ms, 250);

export const TERMINAL_MIGRATION_PHASES = ['Succeeded', 'Failed', 'Aborted'];

export async function migrationsOf(cluster: E2eCluster, vm: string): Promise<Migration[]> {
  const list = await cluster.getJson<{ items: Migration[] }>('migrations');
  return list.items.filter((migration) => migration.spec.vmName === vm);
}
