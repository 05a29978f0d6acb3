// The set-up most operator integration tests share: a real kube-apiserver (or a kubelet cluster) with Tern's CRDs,
// dev certificates, one real daemon process per node running the test guest (TCG), the real operator process, and
// every HypervisorNode Ready. stop() tears it all down in order — operators, daemons, their QEMUs, taps and
// bridges, the temp dir, the control plane — however far start() got, and is safe to call at any time.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { HypervisorNode, VirtualMachine } from '../../crds/index.js';
import type { GuestControlClient, MigrationClient } from '../../proto/index.js';
import { testGuestImages, type TestGuestImages } from '../fixtures/test-guest.js';
import { generateDevCerts, type DevCerts } from './certificates.js';
import { controlClient } from './control-client.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { killGuestsIn, killWatchdogIn, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { installEvictionWebhook } from './eviction-webhook.js';
import { startKubeletCluster, type KubeletCluster } from './kubelet-cluster.js';
import { migrationClient } from './migration-driver.js';
import { condition, eventually, kubectlOn, testDaemonArgs, type Kubectl } from './operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from './operator-process.js';
import { letQemuUserThrough, qemuUserArgs } from './qemu-user.js';

const CRDS = fileURLToPath(new URL('../../crds/generated/', import.meta.url));
/** The namespace of the operator's own objects (console endpoint, guard pods, leader lease). */
const OPERATOR_NAMESPACE = 'tern-system';
const DAEMON_LEASE_SECONDS = 6;

export interface TwoNodeClusterOptions {
  /** Names the control plane's temp dir. */
  name: string;
  /** The nodes whose daemons start() starts (default node-a, node-b). */
  nodes?: string[];
  /** Nodes that get a certificate now and a daemon only when the test calls startNode(). */
  laterNodes?: string[];
  /** The guests' QEMU drops to the unprivileged test user (--qemu-user), as under the Helm chart. */
  qemuUser?: boolean;
  /**
   * 'user' (default): QEMU's user-mode networking. 'bridge': taps on a bridge of each node's own, named after this
   * process, so that the target sees the guest's first frame; stop() removes the taps and bridges.
   */
  network?: 'user' | 'bridge';
  /** A Kubernetes Node object per node (no kubelet behind it), for the operator's Node mirror and guard pods. */
  kubeNodes?: boolean;
  /** Real kubelet nodes (kubelet-cluster.ts, root only) instead of a bare kube-apiserver. */
  kubelets?: boolean;
  /** Installs the eviction webhook's configuration and gives the operator its flags (guards in tern-system). */
  evictionWebhook?: boolean;
  /** Operator flags after the common ones; a function for flags that name the control plane's files. */
  operatorArgs?: string[] | ((controlPlane: ControlPlane) => string[]);
}

export interface ClusterNode {
  name: string;
  /** The daemon's --state-dir: <work>/<last letter of the name>. */
  stateDir: string;
  daemon: DaemonProcess;
  /** The daemon's control and Migration APIs with the operator's certificate (closed by stop()). */
  control: GuestControlClient;
  migration: MigrationClient;
}

export interface LeaderElection {
  name: string;
  identity: string;
  leaseDurationSeconds: number;
}

export interface TwoNodeCluster {
  /** The following throw until start() got that far. */
  readonly work: string;
  readonly controlPlane: ControlPlane;
  readonly certs: DevCerts;
  readonly images: TestGuestImages;
  /** With `kubelets`: the kubelet cluster behind controlPlane. */
  readonly kubeletCluster: KubeletCluster | undefined;
  /** The operator last started (start() starts one; startOperator() another). */
  readonly operator: OperatorProcess;
  /** The running nodes by name. */
  readonly nodes: Readonly<Record<string, ClusterNode>>;
  node(name: string): ClusterNode;
  /** kubectl helpers on the control plane; usable before start() (they reach it when called). */
  readonly kubectl: Kubectl;
  stateDir(node: string): string;
  start(): Promise<void>;
  /** Starts the daemon of one of `laterNodes` and waits for its HypervisorNode to be Ready. */
  startNode(name: string): Promise<ClusterNode>;
  /**
   * Starts an operator with the cluster's flags (after the previous one stopped, or a replica under leader
   * election); it becomes `operator`, and stop() stops it.
   */
  startOperator(options?: { leaderElection?: LeaderElection }): Promise<OperatorProcess>;
  /** Waits for VirtualMachine `name` (in default) to be Running (on `node`, when given); returns it. */
  runningVm(name: string, node?: string, ms?: number): Promise<VirtualMachine>;
  /** Idempotent; stops what start() started so far, and whatever it still starts, in order. */
  stop(): Promise<void>;
}

/** Describes the cluster; nothing runs before start(). */
export function twoNodeCluster(options: TwoNodeClusterOptions): TwoNodeCluster {
  const startNodes = options.nodes ?? ['node-a', 'node-b'];
  const allNodes = [...startNodes, ...(options.laterNodes ?? [])];
  let work: string | undefined;
  let controlPlane: ControlPlane | undefined;
  let kubeletCluster: KubeletCluster | undefined;
  let certs: DevCerts | undefined;
  let images: TestGuestImages | undefined;
  let operatorArgs: string[] = [];
  let operator: OperatorProcess | undefined;
  const operators: OperatorProcess[] = [];
  const nodes: Record<string, ClusterNode> = {};
  let stopping = false;
  let serversStopped = false;
  let teardowns: Promise<void> = Promise.resolve();

  const required = <T>(value: T | undefined, what: string): T => {
    if (value === undefined)
      throw new Error(`the cluster's ${what} is not there (start() has not got that far)`);
    return value;
  };
  const stateDir = (node: string) => join(required(work, 'work dir'), node.slice(-1));
  const bridgeOf = (node: string) => `tnb${node.slice(-1)}${process.pid % 100_000}`;
  const kubectl = kubectlOn(() => required(controlPlane, 'control plane'));

  /** Tears down whatever is recorded, in order; records nothing twice. Errors are collected, every step runs. */
  const tearDown = async (): Promise<void> => {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const node of Object.values(nodes)) {
      node.control.close();
      node.migration.close();
    }
    await Promise.all(operators.splice(0).map((process) => attempt(() => process.stop())));
    const stopped = Object.values(nodes);
    for (const node of stopped) delete nodes[node.name];
    await Promise.all(stopped.map((node) => attempt(() => node.daemon.stop())));
    if (work !== undefined) {
      // Every node's dir, started or not: a daemon that was starting may have launched a guest.
      for (const node of allNodes) await attempt(() => killGuestsIn(stateDir(node)));
      for (const node of allNodes) await attempt(() => killWatchdogIn(stateDir(node)));
      const dir = work;
      // A guest killed just before may still be removing its sockets.
      await attempt(() => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
    }
    if (options.network === 'bridge')
      for (const node of allNodes) await attempt(() => removeBridge(bridgeOf(node)));
    if (!serversStopped && controlPlane !== undefined) {
      serversStopped = true;
      const servers = kubeletCluster ?? controlPlane;
      await attempt(() => servers.stop());
    }
    if (errors.length > 0)
      throw new AggregateError(errors, `stopping the cluster: ${errors.map(String).join('; ')}`);
  };
  const stop = (): Promise<void> => {
    stopping = true;
    teardowns = teardowns.then(tearDown, tearDown);
    return teardowns;
  };
  /** After each step of start(): a stop() meanwhile tears down what the step started too, and start() ends. */
  const checkStopping = async (): Promise<void> => {
    if (!stopping) return;
    await stop();
    throw new Error(`cluster ${options.name} stopped while starting`);
  };

  const daemonArgs = (node: string): string[] => [
    ...testDaemonArgs({
      node,
      certs: required(certs, 'certificates'),
      stateDir: stateDir(node),
      imagesRoot: required(images, 'guest images').root,
      kubeconfig: required(controlPlane, 'control plane').kubeconfigPath,
      leaseDurationSeconds: DAEMON_LEASE_SECONDS,
    }),
    // Taps instead of user-mode networking (the last --network wins).
    ...(options.network === 'bridge' ? ['--network', 'bridge', '--bridge', bridgeOf(node)] : []),
    ...(options.qemuUser ? qemuUserArgs() : []),
  ];

  const nodeReady = (node: string) =>
    eventually(`${node} Ready`, async () => {
      const hvn = await kubectl.getJson<HypervisorNode>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });

  /** Starts the node's daemon with its clients (without waiting for Ready). */
  const launchNode = async (name: string): Promise<ClusterNode> => {
    if (nodes[name] !== undefined) throw new Error(`${name} runs already`);
    const daemon = await startDaemonProcess(daemonArgs(name));
    const address = `127.0.0.1:${daemon.grpcPort}`;
    const { ca, operator: client } = required(certs, 'certificates');
    const files = { ca: ca.cert, cert: client.cert, key: client.key };
    const node = {
      name,
      stateDir: stateDir(name),
      daemon,
      control: controlClient(address, files),
      migration: migrationClient(address, files),
    };
    nodes[name] = node;
    await checkStopping();
    return node;
  };

  const commonOperatorArgs = (leaderElection?: LeaderElection): string[] => {
    const { ca, operator: client } = required(certs, 'certificates');
    return [
      ...['--kubeconfig', required(controlPlane, 'control plane').kubeconfigPath],
      ...['--metrics-listen', '127.0.0.1:0'],
      ...(leaderElection === undefined
        ? ['--no-leader-election']
        : [
            ...['--leader-election-name', leaderElection.name],
            ...['--leader-election-identity', leaderElection.identity],
            ...['--leader-lease-duration-seconds', String(leaderElection.leaseDurationSeconds)],
          ]),
      ...['--tls-cert', client.cert, '--tls-key', client.key, '--tls-ca', ca.cert],
      ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ];
  };

  const startOperator = async (
    startOptions: { leaderElection?: LeaderElection } = {},
  ): Promise<OperatorProcess> => {
    const started = await startOperatorProcess([
      ...commonOperatorArgs(startOptions.leaderElection),
      ...operatorArgs,
    ]);
    operators.push(started);
    operator = started;
    await checkStopping();
    return started;
  };

  const startAll = async (): Promise<void> => {
    const dir = await mkdtemp(join(tmpdir(), 'tnc-'));
    work = dir;
    await checkStopping();
    if (options.qemuUser) await letQemuUserThrough(dir);
    const startServers = async (): Promise<ControlPlane> => {
      if (options.kubelets) {
        kubeletCluster = await startKubeletCluster({ nodes: startNodes });
        controlPlane = kubeletCluster.controlPlane;
      } else controlPlane = await startControlPlane({ name: options.name });
      // When the guest images failed meanwhile, start() is stopping already: the servers go too.
      await checkStopping();
      return controlPlane;
    };
    const [cp, guestImages] = await Promise.all([startServers(), testGuestImages()]);
    images = guestImages;
    await checkStopping();
    await kubectl.kubectl('apply', '-f', CRDS);
    await kubectl.kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
    await kubectl.kubectl('create', 'namespace', OPERATOR_NAMESPACE);
    if (options.kubeNodes)
      for (const node of startNodes)
        await kubectl.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } });
    certs = generateDevCerts(
      join(dir, 'pki'),
      allNodes.map((name) => ({ name })),
    );
    const extra =
      typeof options.operatorArgs === 'function' ? options.operatorArgs(cp) : options.operatorArgs;
    operatorArgs = [
      ...(options.evictionWebhook ? await installEvictionWebhook(cp, dir, OPERATOR_NAMESPACE) : []),
      ...(extra ?? []),
    ];
    await checkStopping();
    await Promise.all(startNodes.map(launchNode));
    await startOperator();
    for (const node of startNodes) await nodeReady(node);
  };

  const start = async (): Promise<void> => {
    if (work !== undefined || stopping)
      throw new Error(`cluster ${options.name}: start() runs once, before stop()`);
    try {
      await startAll();
    } catch (error) {
      // Nothing half-started stays behind, whether or not the caller stops the cluster too.
      const stopError = await stop().then(
        () => undefined,
        (failure: unknown) => failure,
      );
      if (stopError !== undefined)
        throw new AggregateError([error, stopError], `${String(error)}; then ${String(stopError)}`);
      throw error;
    }
  };

  return {
    get work() {
      return required(work, 'work dir');
    },
    get controlPlane() {
      return required(controlPlane, 'control plane');
    },
    get certs() {
      return required(certs, 'certificates');
    },
    get images() {
      return required(images, 'guest images');
    },
    get kubeletCluster() {
      return kubeletCluster;
    },
    get operator() {
      return required(operator, 'operator');
    },
    nodes,
    node: (name) => required(nodes[name], `node ${name}`),
    kubectl,
    stateDir,
    start,
    async startNode(name) {
      if (!allNodes.includes(name)) throw new Error(`${name} is not one of the cluster's nodes`);
      const node = await launchNode(name);
      await nodeReady(name);
      return node;
    },
    startOperator,
    runningVm: (name, node, ms) =>
      eventually(
        `${name} Running${node === undefined ? '' : ` on ${node}`}`,
        async () => {
          const vm = await kubectl.getJson<VirtualMachine>('virtualmachine', name);
          return vm.status?.phase === 'Running' && (node === undefined || vm.status.node === node)
            ? vm
            : undefined;
        },
        ms,
      ),
    stop,
  };
}

/** Removes a bridge and the taps still on it (the daemons create taps persistent: they outlive a daemon). */
async function removeBridge(bridge: string): Promise<void> {
  const ip = (...args: string[]) => promisify(execFile)('ip', args).then(({ stdout }) => stdout);
  const ports = await ip('-o', 'link', 'show', 'master', bridge).catch(() => '');
  for (const [, tap] of ports.matchAll(/^\d+: ([^:@]+)[:@]/gm))
    await ip('link', 'del', tap!).catch(() => undefined);
  await ip('link', 'del', bridge).catch(() => undefined);
}
