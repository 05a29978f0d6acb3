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
import { TERMINAL_MIGRATION_PHASES as TERMINAL_PHASES } from '../../crds/index.js';
import { AgentClient, type VerifyResult } from '../../guest/host/agent-client.js';
import { testGuestImages, testGuestVm } from '../fixtures/test-guest.js';
import { controlClient } from '../harness/control-client.js';
import { guestDirOfVm, guestOfVm, isQemuOfVm } from '../harness/guest-lookup.js';
import type { GuestControlClient } from '../../proto/index.js';
import { kubeBinary } from '../../test/harness/control-plane.js';
import { downCluster, upCluster, type LocalCluster } from '../local-cluster/local-cluster.js';
import { isAlive } from '../local-cluster/processes.js';
import { PLUGIN_DIR } from '../local-cluster/usage.js';
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
  /**
   * Each node's daemon's view of guest `vm` (GetGuest, with the operator's certificate): its phase
   * ('GUEST_PHASE_RUNNING', …), 'ABSENT' when the daemon has no such guest, 'UNREACHABLE' when the daemon does not
   * answer (it is down). The daemons are asked one after the other in `order` (default: every node, in cluster
   * order): asking a move's destination first means a guest that moves during the poll cannot look as if it ran
   * on both nodes.
   */
  guestPhases(vm: string, order?: string[]): Promise<Record<string, string>>;
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
  // netns mode: a daemon keeps its endpoint across restarts, so one client per node serves the whole file.
  const controls = new Map<string, GuestControlClient>();
  const control = (node: string): GuestControlClient => {
    let client = controls.get(node);
    if (client === undefined) {
      const { ca, operator } = cluster.certs;
      client = controlClient(
        cluster.node(node).endpoint!,
        { ca: ca.cert, cert: operator.cert, key: operator.key },
        node,
      );
      controls.set(node, client);
    }
    return client;
  };
  return {
    ...cluster,
    async down() {
      for (const client of controls.values()) client.close();
      await downCluster(dir, name);
    },
    getJson,
    getVm: (vm) => getJson<VirtualMachine>('virtualmachine', vm),
    async guestPhases(vm, order = cluster.state.nodes.map(({ name: node }) => node)) {
      const phases: Record<string, string> = {};
      for (const node of order) {
        const deadline = new Date(Date.now() + 1_000);
        phases[node] = await guestOfVm(control(node), vm, 'default', deadline).then(
          (guest) => guest?.phase ?? 'ABSENT',
          () => 'UNREACHABLE',
        );
      }
      return phases;
    },
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
          const pidfile = argv[argv.indexOf('-pidfile') + 1];
          const ofNode = argv.includes('-pidfile') && pidfile?.startsWith(join(node.stateDir, '/')) === true;
          if (argv[0]?.endsWith('qemu-system-x86_64') && ofNode && isQemuOfVm(argv, vm))
            found[node.name]!.push(pid);
        }
      }
      return found;
    },
    async verify(node, vm) {
      const dir = await guestDirOfVm(cluster.node(node).stateDir, vm);
      const agent = await AgentClient.connect(join(dir, 'agent.sock'), {
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
/**
 * One cluster for the calling test file, shared by its tests: up before the first, down after the last. Call it
 * at the file's top level; the object is filled in when the cluster is up.
 */
export function e2eClusterForFile(): E2eCluster {
  const cluster = {} as E2eCluster;
  beforeAll(async () => {
    Object.assign(cluster, await startE2eCluster());
  }, 180_000);
  afterAll(async () => {
    await cluster.down?.();
  }, 60_000);
  return cluster;
}

export async function smallVm(name: string, dirtyPps = 0, wssMib = 16): Promise<VirtualMachine> {
  // The agent takes the last tern.wss_mib on the command line.
  return testGuestVm(name, await testGuestImages(), [`tern.wss_mib=${wssMib}`, `tern.dirty_pps=${dirtyPps}`]);
}

/** test/harness's eventually, with the patience of a whole cluster: 2 min, polling every 250 ms. */
export const eventually = <T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> =>
  pollUntil(what, probe, ms, 250);

/** The API's terminal Migration phases, as strings: the tests compare them with any phase a status reports. */
export const TERMINAL_MIGRATION_PHASES: readonly string[] = TERMINAL_PHASES;

export async function migrationsOf(cluster: E2eCluster, vm: string): Promise<Migration[]> {
  const list = await cluster.getJson<{ items: Migration[] }>('migrations');
  return list.items.filter((migration) => migration.spec.vmName === vm);
}

/** Waits until a Migration of `vm` (the one named `name`, when given) is in one of `phases`; returns it. */
export function migrationInPhase(
  cluster: E2eCluster,
  vm: string,
  phases: readonly string[],
  { name, ms }: { name?: string; ms?: number } = {},
): Promise<Migration> {
  return eventually(
    `a Migration of ${vm}${name ? ` (${name})` : ''} in ${phases.join('|')}`,
    async () =>
      (await migrationsOf(cluster, vm)).find(
        (migration) =>
          (name === undefined || migration.metadata.name === name) &&
          phases.includes(migration.status?.phase ?? ''),
      ),
    ms,
  );
}

/** Waits until VirtualMachine `name` is Running (on `node`, when given); returns it. */
export function runningVm(cluster: E2eCluster, name: string, node?: string): Promise<VirtualMachine> {
  return eventually(`${name} Running${node ? ` on ${node}` : ''}`, async () => {
    const vm = await cluster.getVm(name);
    return vm.status?.phase === 'Running' && (node === undefined || vm.status.node === node) ? vm : undefined;
  });
}

/**
 * Creates `vms` on node-a (node-b is cordoned while they are placed, then uncordoned) and waits until each runs
 * there with its memory verified. Returns them as Running, in order.
 */
export async function startVmsOnNodeA(cluster: E2eCluster, vms: VirtualMachine[]): Promise<VirtualMachine[]> {
  await cluster.kubectl([
    'patch',
    'hypervisornode',
    'node-b',
    '--type',
    'merge',
    '-p',
    '{"spec":{"unschedulable":true}}',
  ]);
  for (const vm of vms) await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(vm));
  const running: VirtualMachine[] = [];
  for (const vm of vms) {
    const name = vm.metadata.name!;
    const vmRunning = await runningVm(cluster, name);
    expect(vmRunning.status!.node).toBe('node-a');
    expect((await cluster.verify('node-a', name)).ok).toBe(true);
    running.push(vmRunning);
  }
  // node-b takes new VMs again.
  await cluster.kubectlTern(['uncordon', 'node-b']);
  return running;
}
