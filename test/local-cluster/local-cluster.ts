// A local Tern cluster on this machine: a real kube-apiserver + etcd, the CRDs, hypervisor-node daemons running
// QEMU guests, and the operator. As root every node is a network namespace with its own address and bridge (see
// netns.ts); otherwise all daemons share the host's loopback and guests get user-mode networking. Every process
// is detached and recorded in the cluster dir's state file, so the cluster outlives the command that brought it up
// and `downCluster` finds everything again, also after a crash halfway through `upCluster`.
import { spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../fixtures/test-guest.js';
import { killGuestsIn } from '../harness/daemon-process.js';
import { qemuUserArgs } from '../harness/qemu-user.js';
import { kubeBinary, startControlPlane } from '../harness/control-plane.js';
import { generateDevCerts, type DevCerts } from '../harness/certificates.js';
import {
  checkClusterName,
  DAEMON_PORTS,
  defaultClusterDir,
  exampleVmPath,
  hostBridgeName,
  hostVethName,
  netnsName,
  NODE_BRIDGE,
  nodeAddress,
  readState,
  writeState,
  type ClusterMode,
  type ClusterState,
  type NodeState,
} from './cluster-state.js';
import {
  createHostBridge,
  createNodeNetwork,
  canUseNamespaces,
  freeSubnet,
  ip,
  removeClusterNetwork,
} from './netns.js';
import { isAlive, isOurs, killAndWait, processesOf, startDetached } from './processes.js';
import { runKubectl } from './kubectl.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CRDS = join(REPO, 'crds/generated/');
const DAEMON_MAIN = join(REPO, 'hypervisor-node/src/main.ts');
const OPERATOR_MAIN = join(REPO, 'operator/src/main.ts');
const NODE_READY_TIMEOUT_MS = 60_000;
/** What a cluster runs; each names the cluster dir on its command line. */
const CLUSTER_PROGRAMS = ['/etcd', '/kube-apiserver', DAEMON_MAIN, OPERATOR_MAIN] as const;

/** The nodes' guest state: a short path, because QEMU's unix socket paths under it must fit in 107 bytes. */
const guestRoot = (cluster: string): string => join(tmpdir(), `tern-${cluster}`);

export interface UpOptions {
  /** Cluster dir: state file, kubeconfig, certificates, logs, control-plane data (guest state: guestRoot). */
  dir: string;
  /** Short name the namespaces and links are named after (distinct for clusters that run side by side). */
  name: string;
  nodes: string[];
  /** Force loopback mode even as root. */
  loopback?: boolean;
  log?: (line: string) => void;
}

/** A cluster that is up, as the demo and the end-to-end tests use it. */
export interface LocalCluster {
  state: ClusterState;
  kubeconfig: string;
  certs: DevCerts;
  /** Runs kubectl against the cluster; throws with its stderr on failure. */
  kubectl(args: string[], input?: string): Promise<string>;
  node(name: string): NodeState;
  /** Stops a node's daemon (SIGTERM: its guests keep running; SIGKILL: a crash). */
  stopDaemon(node: string, signal?: NodeJS.Signals): Promise<void>;
  startDaemon(node: string): Promise<void>;
  stopOperator(signal?: NodeJS.Signals): Promise<void>;
  startOperator(): Promise<void>;
  /** SIGSTOP or SIGCONT to a node's daemon (a hung daemon, and its recovery); its QEMUs are not signalled. */
  signalDaemon(node: string, signal: 'SIGSTOP' | 'SIGCONT'): void;
  /**
   * Takes the host end of a node's veth down or up (netns mode): down cuts the node from the apiserver, the
   * operator and every other node; its daemon and guests keep running.
   */
  setNodeLink(node: string, up: boolean): Promise<void>;
  /** Stops kube-apiserver (SIGKILL); etcd and its data stay. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again with the flags it had, and waits until it is ready. */
  startApiServer(): Promise<void>;
}

const certsOf = (state: ClusterState): DevCerts =>
  generateDevCerts(
    join(state.dir, 'pki'),
    state.nodes.map((node) => ({ name: node.name, ips: [node.address] })),
  );

const NODE_VCPUS = 4;

function daemonArgs(state: ClusterState, node: NodeState, certs: DevCerts): string[] {
  const pair = certs.nodes[node.name]!;
  // netns mode: fixed ports on the node's own address (each namespace has its own ports). Incoming migrations
  // listen on the node's address too, which the other nodes reach over the shared bridge.
  const [grpc, metrics] =
    state.mode === 'netns'
      ? [`${node.address}:${DAEMON_PORTS.grpc}`, `${node.address}:${DAEMON_PORTS.metrics}`]
      : ['127.0.0.1:0', '127.0.0.1:0'];
  return [
    ...['--node-name', node.name, '--listen', grpc, '--metrics-listen', metrics],
    ...['--migration-address', state.mode === 'netns' ? node.address : '127.0.0.1'],
    // TCG guests share the host's cores: each node offers 4 vCPUs, so a 2-core machine holds a few small VMs.
    ...['--cpu-capacity', String(NODE_VCPUS)],
    ...['--tls-cert', pair.cert, '--tls-key', pair.key, '--tls-ca', certs.ca.cert],
    ...[
      '--state-dir',
      node.stateDir,
      '--shared-image-root',
      state.imagesRoot,
      '--image-root',
      state.imageRoot,
    ],
    // As root (netns mode) QEMU drops to the unprivileged test user, as the Helm chart runs it; the guest state
    // lies under /tmp/tern-<cluster> (0755), which that user may pass through to its migration keys.
    ...(state.mode === 'netns'
      ? ['--network', 'bridge', '--bridge', NODE_BRIDGE, ...qemuUserArgs()]
      : ['--network', 'user']),
    ...[
      '--kubeconfig',
      state.kubeconfig,
      '--heartbeat-interval-seconds',
      '2',
      '--lease-duration-seconds',
      '10',
    ],
  ];
}

function clusterHandle(state: ClusterState): LocalCluster {
  const certs = certsOf(state);
  const node = (name: string): NodeState => {
    const found = state.nodes.find((entry) => entry.name === name);
    if (found === undefined) throw new Error(`no node ${name} in cluster ${state.name}`);
    return found;
  };
  return {
    state,
    kubeconfig: state.kubeconfig,
    certs,
    node,
    async kubectl(args, input) {
      const result = await runKubectl(state.kubeconfig, args, input);
      if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
      return result.stdout;
    },
    async stopDaemon(name, signal = 'SIGTERM') {
      const entry = node(name);
      const { daemon } = entry;
      // Forgotten before the kill: a supervisor polling meanwhile (the fault matrix's) must not take the exit for a
      // crash and start a second daemon.
      entry.daemon = undefined;
      writeState(state);
      if (daemon && isOurs(daemon.pid, state.dir)) await killAndWait([daemon.pid], signal);
    },
    startDaemon: (name) => startDaemon(state, node(name), certs),
    async stopOperator(signal = 'SIGTERM') {
      const { operator } = state;
      state.operator = undefined;
      writeState(state);
      if (operator && isOurs(operator.pid, state.dir)) await killAndWait([operator.pid], signal);
    },
    startOperator: () => startOperator(state, certs),
    signalDaemon(name, signal) {
      const { daemon } = node(name);
      if (!daemon || !isOurs(daemon.pid, state.dir)) throw new Error(`the daemon of ${name} does not run`);
      process.kill(daemon.pid, signal);
    },
    async setNodeLink(name, up) {
      const { hostVeth } = node(name);
      if (hostVeth === undefined)
        throw new Error(`cluster ${state.name} has no links to cut (loopback mode)`);
      await ip(['link', 'set', 'dev', hostVeth, up ? 'up' : 'down']);
    },
    stopApiServer: () => stopApiServer(state),
    startApiServer: () => startApiServer(state),
  };
}

const API_SERVER_READY_TIMEOUT_MS = 60_000;

async function stopApiServer(state: ClusterState): Promise<void> {
  const cp = state.controlPlane;
  const server = cp?.processes.find((p) => p.name === 'kube-apiserver');
  if (!cp || !server || !isOurs(server.pid, state.dir)) throw new Error('kube-apiserver does not run');
  cp.stoppedApiServer = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  writeState(state);
  await killAndWait([server.pid]);
}

async function startApiServer(state: ClusterState): Promise<void> {
  const cp = state.controlPlane;
  const server = cp?.processes.find((p) => p.name === 'kube-apiserver');
  const argv = cp?.stoppedApiServer;
  if (!cp || !server || !argv) throw new Error('kube-apiserver was not stopped by stopApiServer');
  const log = openSync(join(state.dir, 'control-plane', 'kube-apiserver.log'), 'a');
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${argv[0]}`);
  server.pid = child.pid;
  cp.stoppedApiServer = undefined;
  writeState(state);
  const deadline = Date.now() + API_SERVER_READY_TIMEOUT_MS;
  while ((await runKubectl(state.kubeconfig, ['get', '--raw', '/readyz'])).code !== 0) {
    if (!isAlive(child.pid))
      throw new Error('kube-apiserver exited on restart (see control-plane/kube-apiserver.log)');
    if (Date.now() > deadline)
      throw new Error(`kube-apiserver not ready within ${API_SERVER_READY_TIMEOUT_MS} ms`);
    await sleep(250);
  }
}

async function startDaemon(state: ClusterState, node: NodeState, certs: DevCerts): Promise<void> {
  const log = join(state.dir, 'logs', `daemon-${node.name}.log`);
  const main = [process.execPath, '--import', 'tsx', DAEMON_MAIN, ...daemonArgs(state, node, certs)];
  // `ip netns exec` execs the program, so the recorded pid is the daemon's.
  const [command, ...args] = node.netns ? ['ip', 'netns', 'exec', node.netns, ...main] : main;
  const { pid, ready } = await startDetached(command!, args, {
    log,
    readyMessage: 'hypervisor-node ready',
    cwd: REPO,
  });
  const host = state.mode === 'netns' ? node.address : '127.0.0.1';
  node.daemon = { pid, log };
  node.endpoint = `${host}:${String(ready.grpcPort)}`;
  node.metricsEndpoint = `${host}:${String(ready.metricsPort)}`;
  writeState(state);
}

async function startOperator(state: ClusterState, certs: DevCerts): Promise<void> {
  const log = join(state.dir, 'logs', 'operator.log');
  const { pid, ready } = await startDetached(
    process.execPath,
    [
      ...['--import', 'tsx', OPERATOR_MAIN, '--kubeconfig', state.kubeconfig],
      ...['--metrics-listen', '127.0.0.1:0', '--guest-poll-interval-ms', '1000'],
      ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
      // `kubectl tern console` (docs/console.md): served with the control plane's serving certificate (127.0.0.1),
      // published in ConfigMap tern-system/tern-console. The operator runs as the cluster admin here: no RBAC to add.
      ...['--console-listen', '127.0.0.1:0', '--console-publish-namespace', 'tern-system'],
      ...['--console-tls-cert', join(state.dir, 'control-plane', 'apiserver.crt')],
      ...['--console-tls-key', join(state.dir, 'control-plane', 'apiserver.key')],
      ...['--console-tls-ca', join(state.dir, 'control-plane', 'ca.crt')],
    ],
    { log, readyMessage: 'tern-operator ready', cwd: REPO },
  );
  state.operator = { pid, log, metricsEndpoint: `127.0.0.1:${String(ready.metricsPort)}` };
  writeState(state);
}

/** The Ready condition's status of each HypervisorNode (empty when the apiserver does not answer). */
async function nodeReadiness(kubeconfig: string): Promise<Map<string, string>> {
  const { stdout } = await runKubectl(kubeconfig, [
    'get',
    'hypervisornodes',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}',
  ]);
  return new Map(
    stdout
      .split(' ')
      .filter(Boolean)
      .map((entry) => entry.split('=') as [string, string]),
  );
}

async function waitNodesReady(state: ClusterState): Promise<void> {
  const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
  for (;;) {
    const readiness = await nodeReadiness(state.kubeconfig);
    if (state.nodes.every((node) => readiness.get(node.name) === 'True')) return;
    if (Date.now() > deadline) {
      throw new Error(
        `hypervisor nodes not Ready within ${NODE_READY_TIMEOUT_MS} ms: ${JSON.stringify([...readiness])}`,
      );
    }
    await sleep(250);
  }
}

/** A small VirtualMachine of the test guest for this cluster (in netns mode with an address on its subnet). */
function exampleVm(state: ClusterState, images: TestGuestImages): string {
  const address = state.subnet ? [`tern.ip=${state.subnet}.50/24`] : [];
  const vm = testGuestVm('vm01', images, address);
  return `# The test guest (guest/README.md) on the local cluster${address.length ? `, at ${state.subnet}.50` : ''}.\n${stringify(vm)}`;
}

/** Brings a cluster up in `dir`; refuses when one is recorded there already (healCluster starts what is down). */
export async function upCluster(options: UpOptions): Promise<LocalCluster> {
  const log = options.log ?? (() => undefined);
  const name = checkClusterName(options.name);
  if (readState(options.dir) !== undefined) {
    throw new Error(
      `a cluster is recorded in ${options.dir} already: heal it (healCluster) or bring it down first`,
    );
  }
  const images = await testGuestImages();
  kubeBinary('kubectl');
  const mode: ClusterMode = !options.loopback && (await canUseNamespaces()) ? 'netns' : 'loopback';
  if (mode === 'loopback') {
    log(
      `NOTE: LOOPBACK MODE (${options.loopback ? '--loopback' : 'network namespaces are not available: not root?'}). ` +
        'All daemons share 127.0.0.1 and guests get user-mode networking: no guest address, no network across a migration.',
    );
  }
  mkdirSync(join(options.dir, 'logs'), { recursive: true, mode: 0o700 });
  const subnet = mode === 'netns' ? await freeSubnet(name) : undefined;
  const state: ClusterState = {
    name,
    dir: options.dir,
    mode,
    hostBridge: mode === 'netns' ? hostBridgeName(name) : undefined,
    subnet,
    hostAddress: subnet ? `${subnet}.1` : '127.0.0.1',
    kubeconfig: join(options.dir, 'kubeconfig'),
    imagesRoot: images.root,
    imageRoot: join(guestRoot(name), 'images'),
    nodes: options.nodes.map((node, index) => ({
      name: node,
      address: subnet ? nodeAddress(subnet, index) : '127.0.0.1',
      netns: subnet ? netnsName(name, node) : undefined,
      hostVeth: subnet ? hostVethName(name, index) : undefined,
      stateDir: join(guestRoot(name), node),
    })),
  };
  writeState(state);
  // Readable for the QEMU user, which inspects the images' headers (0755 like the guest state beside it).
  mkdirSync(join(state.imageRoot, 'default'), { recursive: true, mode: 0o755 });
  try {
    if (mode === 'netns') {
      await createHostBridge(state);
      for (let index = 0; index < state.nodes.length; index++) await createNodeNetwork(state, index);
      log(
        `network: bridge ${state.hostBridge} ${state.hostAddress}/24, nodes in namespaces ${state.nodes.map((n) => `${n.netns} (${n.address})`).join(', ')}`,
      );
    }
    const cp = await startControlPlane({
      name,
      bindAddress: state.hostAddress,
      detached: { dir: join(options.dir, 'control-plane') },
    });
    state.controlPlane = {
      processes: cp.processes.map(({ name: server, pid }) => ({
        name: server as 'etcd' | 'kube-apiserver',
        pid,
        argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean),
      })),
    };
    state.apiServer = cp.server;
    copyFileSync(cp.kubeconfigPath, state.kubeconfig);
    writeState(state);
    log(`control plane up in ${cp.startupMs} ms: ${cp.server}`);

    const cluster = clusterHandle(state);
    await cluster.kubectl(['apply', '-f', CRDS]);
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    await cluster.kubectl(['create', 'namespace', 'tern-system']);
    await Promise.all(
      state.nodes.map(async (node) => {
        await startDaemon(state, node, cluster.certs);
        log(`daemon ${node.name} up: gRPC ${node.endpoint}${node.netns ? ` in netns ${node.netns}` : ''}`);
      }),
    );
    await startOperator(state, cluster.certs);
    log('operator up');
    writeFileSync(exampleVmPath(state), exampleVm(state, images));
    await waitNodesReady(state);
    log(`nodes Ready: ${state.nodes.map((node) => node.name).join(', ')}`);
    return cluster;
  } catch (error) {
    await downCluster(options.dir);
    throw error;
  }
}

/** `up` found a recorded cluster it cannot heal; the message says which part and what to do. */
export class CannotHealError extends Error {}

export interface HealOptions {
  /** The nodes `up` was asked for: refused when they are not the recorded ones. */
  nodes?: string[];
  loopback?: boolean;
  log?: (line: string) => void;
}

/** Starts a control-plane process again with its recorded command line; returns its pid. */
function restartServer(state: ClusterState, server: { name: string; argv: string[] }): number {
  const log = openSync(join(state.dir, 'control-plane', `${server.name}.log`), 'a');
  const child = spawn(server.argv[0]!, server.argv.slice(1), { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${server.argv[0]}`);
  return child.pid;
}

async function waitApiServerReady(state: ClusterState, pids: number[]): Promise<void> {
  const deadline = Date.now() + API_SERVER_READY_TIMEOUT_MS;
  while ((await runKubectl(state.kubeconfig, ['get', '--raw', '/readyz'])).code !== 0) {
    const dead = state.controlPlane!.processes.filter((p) => pids.includes(p.pid) && !isAlive(p.pid));
    if (dead.length > 0)
      throw new Error(
        `${dead.map((p) => p.name).join(' and ')} exited on restart (see ${state.dir}/control-plane/)`,
      );
    if (Date.now() > deadline)
      throw new Error(`kube-apiserver not ready within ${API_SERVER_READY_TIMEOUT_MS} ms`);
    await sleep(250);
  }
}

/**
 * What of the cluster recorded in `dir` cannot be started again, or undefined when all of it can: a network
 * namespace or the host bridge gone (the guests in it went with it), a control plane that never came up or whose
 * dead process has no recorded command line, another node list or mode than asked for.
 */
async function unhealable(state: ClusterState, options: HealOptions): Promise<string | undefined> {
  const recorded = state.nodes.map((node) => node.name).join(',');
  if (options.nodes !== undefined && options.nodes.join(',') !== recorded)
    return `it has the nodes ${recorded}, not ${options.nodes.join(',')}`;
  if (options.loopback && state.mode !== 'loopback') return 'it runs in netns mode, not --loopback';
  if (!state.controlPlane?.processes.length || state.apiServer === undefined)
    return 'its control plane never came up (an `up` that failed halfway)';
  for (const server of state.controlPlane.processes) {
    if (
      !isOurs(server.pid, state.dir) &&
      server.argv === undefined &&
      !(server.name === 'kube-apiserver' && state.controlPlane.stoppedApiServer)
    )
      return `${server.name} is down and its command line was not recorded (a cluster of an older version)`;
  }
  if (state.mode === 'netns') {
    const namespaces = new Set(
      (await ip(['netns', 'list']).catch(() => '')).split('\n').map((line) => line.split(' ')[0]),
    );
    const missing = state.nodes.filter((node) => !namespaces.has(node.netns));
    if (missing.length > 0)
      return `its network namespace(s) ${missing.map((node) => node.netns).join(', ')} are gone (with their guests)`;
    const bridge = await ip(['-o', '-4', 'addr', 'show', 'dev', state.hostBridge!]).catch(() => '');
    if (!bridge.includes(`inet ${state.hostAddress}/`))
      return `its host bridge ${state.hostBridge} with ${state.hostAddress} is gone`;
  }
  return undefined;
}

/**
 * `up` on a cluster that is recorded in `dir` but not all of it runs: keeps what runs (etcd, kube-apiserver,
 * each daemon, the operator) and starts what is down, in that order, then waits until every node is Ready. A
 * daemon started again finds its guests' QEMUs running and re-attaches to them. Logs what it found and what it
 * started; throws CannotHealError (saying which part) when the cluster cannot be healed.
 */
export async function healCluster(dir: string, options: HealOptions = {}): Promise<LocalCluster> {
  const log = options.log ?? (() => undefined);
  const state = readState(dir);
  if (state === undefined) throw new CannotHealError(`no cluster is recorded in ${dir}`);
  const why = await unhealable(state, options);
  if (why !== undefined)
    throw new CannotHealError(
      `the cluster ${state.name} in ${dir} cannot be healed: ${why}. Remove it with: npm run cluster -- down` +
        (dir === defaultClusterDir() ? '' : ` --dir ${dir} --name ${state.name}`),
    );
  const alive = (pid: number | undefined) => pid !== undefined && isOurs(pid, dir);
  const found = [
    ...state.controlPlane!.processes.map(
      (p) => `${p.name} ${alive(p.pid) ? `running (pid ${p.pid})` : 'DOWN'}`,
    ),
    ...state.nodes.map(
      (node) =>
        `daemon ${node.name} ${alive(node.daemon?.pid) ? `running (pid ${node.daemon!.pid})` : 'DOWN'}`,
    ),
    `operator ${alive(state.operator?.pid) ? `running (pid ${state.operator!.pid})` : 'DOWN'}`,
  ];
  log(`found: ${found.join(', ')}`);
  const started: string[] = [];

  const restarted: number[] = [];
  for (const server of state.controlPlane!.processes) {
    if (alive(server.pid)) continue;
    const argv =
      server.name === 'kube-apiserver' ? (state.controlPlane!.stoppedApiServer ?? server.argv) : server.argv;
    server.argv = argv;
    server.pid = restartServer(state, { name: server.name, argv: argv! });
    if (server.name === 'kube-apiserver') state.controlPlane!.stoppedApiServer = undefined;
    writeState(state);
    restarted.push(server.pid);
    started.push(`${server.name} (pid ${server.pid})`);
  }
  await waitApiServerReady(state, restarted);
  if (restarted.length > 0) log(`control plane ready: ${state.apiServer}`);

  const cluster = clusterHandle(state);
  for (const node of state.nodes) {
    if (alive(node.daemon?.pid)) continue;
    await startDaemon(state, node, cluster.certs);
    started.push(`daemon ${node.name} (pid ${node.daemon!.pid})`);
    log(`daemon ${node.name} up: gRPC ${node.endpoint}${node.netns ? ` in netns ${node.netns}` : ''}`);
  }
  if (!alive(state.operator?.pid)) {
    await startOperator(state, cluster.certs);
    started.push(`operator (pid ${state.operator!.pid})`);
    log('operator up');
  }
  if (!existsSync(exampleVmPath(state)))
    writeFileSync(exampleVmPath(state), exampleVm(state, await testGuestImages()));
  await waitNodesReady(state);
  log(`started: ${started.length > 0 ? started.join(', ') : 'nothing (all of it runs)'}`);
  log(`nodes Ready: ${state.nodes.map((node) => node.name).join(', ')}`);
  return cluster;
}

/** The cluster recorded in `dir` with its processes alive, or undefined. */
export function openCluster(dir: string): LocalCluster | undefined {
  const state = readState(dir);
  if (state === undefined) return undefined;
  if (!state.controlPlane?.processes.length || !state.operator) return undefined;
  const pids = [
    ...state.controlPlane.processes.map((p) => p.pid),
    state.operator.pid,
    ...state.nodes.map((node) => node.daemon?.pid ?? 0),
  ];
  if (!pids.every((pid) => isOurs(pid, dir))) return undefined;
  return clusterHandle(state);
}

/**
 * Removes everything of the cluster recorded in `dir` (processes, guests, namespaces, links, files). `name`
 * covers an `up` that crashed before writing its state file. Returns what was removed.
 */
export async function downCluster(dir: string, name?: string): Promise<string[]> {
  const state = readState(dir);
  const clusterName = state?.name ?? name;
  const removed: string[] = [];
  const kill = async (what: string, pid: number | undefined) => {
    if (pid === undefined || !isOurs(pid, dir)) return;
    await killAndWait([pid]);
    removed.push(`${what} (pid ${pid})`);
  };
  // The operator first, so that it does not react to the nodes going away.
  await kill('operator', state?.operator?.pid);
  for (const node of state?.nodes ?? []) await kill(`daemon ${node.name}`, node.daemon?.pid);
  if (clusterName !== undefined) removed.push(...(await removeClusterNetwork(clusterName)));
  for (const node of state?.nodes ?? []) {
    if (existsSync(node.stateDir)) {
      const guests = await killGuestsIn(node.stateDir);
      if (guests > 0) removed.push(`${guests} guest(s) of ${node.name}`);
    }
  }
  for (const server of state?.controlPlane?.processes ?? []) await kill(server.name, server.pid);
  // Processes a crashed `up` started but did not record yet (a control plane starting, loopback-mode daemons).
  const strays = processesOf([...CLUSTER_PROGRAMS], dir);
  if (strays.length > 0) {
    await killAndWait(strays);
    removed.push(`unrecorded processes ${strays.join(', ')}`);
  }
  if (clusterName !== undefined && existsSync(guestRoot(clusterName))) {
    rmSync(guestRoot(clusterName), { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    removed.push(`dir ${guestRoot(clusterName)}`);
  }
  if (existsSync(dir)) {
    // A killed QEMU's exit shim may still be writing into its guest dir.
    rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    removed.push(`dir ${dir}`);
  }
  return removed;
}

export interface ComponentStatus {
  component: string;
  running: boolean;
  detail: string;
}

/** Each recorded component: whether its process runs, and where it listens. */
export async function clusterStatus(dir: string): Promise<ComponentStatus[] | undefined> {
  const state = readState(dir);
  if (state === undefined) return undefined;
  const alive = (pid: number | undefined) => pid !== undefined && isOurs(pid, dir);
  const rows: ComponentStatus[] = [];
  if (state.mode === 'netns') {
    const namespaces = await ip(['netns', 'list']).catch(() => '');
    const present = new Set(namespaces.split('\n').map((line) => line.split(' ')[0]));
    const missing = state.nodes.filter((node) => !present.has(node.netns));
    const bridge = await ip(['-o', '-4', 'addr', 'show', 'dev', state.hostBridge!]).catch(() => '');
    rows.push({
      component: 'network',
      running: missing.length === 0 && bridge.includes(`inet ${state.hostAddress}/`),
      detail:
        `bridge ${state.hostBridge} ${state.hostAddress}/24, ` +
        state.nodes.map((node) => `${node.netns} ${node.address}`).join(', ') +
        (missing.length > 0 ? ` (missing: ${missing.map((node) => node.netns).join(', ')})` : ''),
    });
  }
  for (const server of state.controlPlane?.processes ?? []) {
    rows.push({
      component: server.name,
      running: alive(server.pid),
      detail: `pid ${server.pid}${server.name === 'kube-apiserver' ? ` ${state.apiServer}` : ''}`,
    });
  }
  const readyOf = state.apiServer ? await nodeReadiness(state.kubeconfig) : new Map<string, string>();
  for (const node of state.nodes) {
    rows.push({
      component: `daemon ${node.name}`,
      running: alive(node.daemon?.pid),
      detail:
        `pid ${node.daemon?.pid ?? '-'} gRPC ${node.endpoint ?? '-'}` +
        `${node.netns ? ` netns ${node.netns}` : ''} Ready=${readyOf.get(node.name) ?? 'unknown'}`,
    });
  }
  rows.push({
    component: 'operator',
    running: alive(state.operator?.pid),
    detail: `pid ${state.operator?.pid ?? '-'} metrics ${state.operator?.metricsEndpoint ?? '-'}`,
  });
  return rows;
}
