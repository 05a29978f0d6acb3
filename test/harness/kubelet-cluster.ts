/**
 * A throw-away Kubernetes cluster with real nodes, for integration tests (root only): the control plane of
 * control-plane.ts (etcd + kube-apiserver) plus kube-scheduler and kube-controller-manager, and kubelet nodes, each
 * with its own containerd in its own network namespace on a bridge shared with the host. docs/kubelet-cluster.md
 * explains the layout and every workaround.
 *
 * Everything the cluster creates carries its id `tk<pid><letter>` (names of namespaces, links, cgroups, the dir
 * /tmp/<id>): stop() removes exactly that, and a later start removes what a killed test process left behind.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { issueControlPlaneLeaf, type CertPair } from './certificates.js';
import { kubeBinary, startControlPlane, type ControlPlane } from './control-plane.js';
import { startServer, type ServerProcess } from './server-process.js';

const run = promisify(execFile);

export interface KubeletNode {
  name: string;
  /** The node's address on the cluster bridge (its InternalIP). */
  address: string;
  netns: string;
  /** Holds the node's containerd root/state, kubelet root, configs and logs (containerd.log, kubelet.log). */
  dir: string;
  /** The node's containerd socket (for `ctr --address`). */
  containerdSocket: string;
  /** Where the node's own copies of KubeletClusterOptions.nodeDirs live: `<rootDir><path>` (e.g. rootDir + /var/lib/tern). */
  rootDir: string;
}

export interface KubeletCluster {
  id: string;
  controlPlane: ControlPlane;
  nodes: KubeletNode[];
  /** Wall time of startKubeletCluster, until every Node is Ready. */
  startupMs: number;
  /** Kills every process of the cluster and removes its mounts, cgroups, namespaces, links and files. */
  stop(): Promise<void>;
}

export interface KubeletClusterOptions {
  /** Node names (default node-a, node-b). */
  nodes?: string[];
  /** OCI archives imported into every node's containerd besides the pause image (default: busybox). */
  images?: string[];
  /**
   * Host directories each node has of its own, as separate machines would (e.g. /var/lib/tern for hostPath
   * volumes): in the node's containerd and kubelet, `<path>` is a bind mount of `<node dir>/root<path>`. The nodes'
   * containerd then runs in a mount namespace of its own. Absolute paths without whitespace; the empty mount
   * points are created on the host and left there.
   */
  nodeDirs?: string[];
}

/** The images test/kubelet-cluster/build-images.sh builds. */
export const PAUSE_IMAGE = 'tern.local/pause:3.10';
export const BUSYBOX_IMAGE = 'tern.local/busybox:test';

const READY_TIMEOUT_MS = 180_000;
const LOG_TAIL_LINES = 30;
/** A cluster's dir is /tmp/<id>; its namespaces and cgroups are <id>-<node>. */
const ID_PATTERN = /^(tk(\d+)[a-z])(-.+)?$/;
const SUBNET_BASE = '10.217';
/** The kernel settings kubelet insists on (container_manager_linux.go setupKernelTunables). */
const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];

function cacheDir(): string {
  return process.env.TERN_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'tern');
}

export function kubeletImageArchive(name: 'pause' | 'busybox'): string {
  const path = join(cacheDir(), 'images', `${name}.oci.tar`);
  if (!existsSync(path)) {
    throw new Error(`${path} not found: run bash test/kubelet-cluster/build-images.sh (npm run setup does)`);
  }
  return path;
}

async function cmd(file: string, args: string[], timeout = 30_000): Promise<string> {
  try {
    return (await run(file, args, { timeout, maxBuffer: 16 << 20 })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${file} ${args.join(' ')}: ${stderr || (error as Error).message}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + 10_000;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) throw new Error(`processes ${pids.filter(isAlive).join(', ')} do not exit`);
    await sleep(50);
  }
}

// --- names ---

let clustersStarted = 0;
const clusterDir = (id: string): string => join(tmpdir(), id);
const hostBridge = (id: string): string => `${id}-br`;
const hostVeth = (id: string, index: number): string => `${id}-v${index}`;
const netnsOf = (id: string, node: string): string => `${id}-${node}`;
const cgroupRootOf = (id: string, node: string): string => `${id}-${node}`;
/** The pod subnet of the node at `index` (every cluster uses the same: only one may run at a time). */
const podCidrOf = (index: number): string => `10.216.${index}.0/24`;

// --- teardown, by name only (so it also cleans up after a killed test process) ---

function cgroupHierarchies(): string[] {
  return readdirSync('/sys/fs/cgroup')
    .map((h) => join('/sys/fs/cgroup', h))
    .filter((h) => existsSync(join(h, 'cgroup.procs')));
}

/** The cgroup dirs `<hierarchy>/<id>-*` of a cluster, in every mounted hierarchy. */
function clusterCgroups(id: string): string[] {
  return cgroupHierarchies().flatMap((h) =>
    readdirSync(h, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name.startsWith(`${id}-`))
      .map((e) => join(h, e.name)),
  );
}

/** Every cgroup below `dir` (itself included), deepest first. */
function cgroupTree(dir: string): string[] {
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...children.flatMap((e) => cgroupTree(join(dir, e.name))), dir];
}

function pidsInCgroups(roots: string[]): number[] {
  const pids = new Set<number>();
  for (const root of roots) {
    for (const cg of cgroupTree(root)) {
      for (const line of readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n')) {
        if (line) pids.add(Number(line));
      }
    }
  }
  return [...pids];
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
function mountsBelow(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      // A cgroup whose last task just died can stay busy for a moment.
      if (attempt >= 50) throw error;
      await sleep(100);
    }
  }
}

/** Removes what cluster `id` created on this machine. Returns what it removed. */
export async function removeKubeletCluster(id: string): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = (await cmd('ip', ['netns', 'list']))
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((ns) => ns.startsWith(`${id}-`));
  // Every process of a node: containerd, kubelet and the shims share its network namespace; the containers
  // (also those with their own network namespace) sit in its cgroup root.
  const nsPids = (await Promise.all(namespaces.map((ns) => cmd('ip', ['netns', 'pids', ns]).catch(() => ''))))
    .flatMap((out) => out.split('\n'))
    .filter(Boolean)
    .map(Number);
  const cgroups = clusterCgroups(id);
  const pids = [...new Set([...nsPids, ...pidsInCgroups(cgroups)])].filter((pid) => pid !== process.pid);
  await killAll(pids);
  if (pids.length > 0) removed.push(`${pids.length} processes`);

  const dir = clusterDir(id);
  for (const mount of mountsBelow(dir)) {
    await cmd('umount', ['--lazy', mount]);
    removed.push(`mount ${mount}`);
  }
  for (const root of cgroups) {
    for (const cg of cgroupTree(root)) await removeCgroup(cg);
    removed.push(`cgroup ${root}`);
  }
  for (const ns of namespaces) {
    await cmd('ip', ['netns', 'del', ns]);
    removed.push(`netns ${ns}`);
  }
  const links = await cmd('ip', ['-o', 'link', 'show']);
  for (const match of links.matchAll(/^\d+: ([^:@\s]+)/gm)) {
    if (match[1]!.startsWith(`${id}-`)) {
      await cmd('ip', ['link', 'del', 'dev', match[1]!]).catch(() => undefined);
      removed.push(`link ${match[1]}`);
    }
  }
  // kubelet links every container log into /var/log/containers (a fixed path); libcni caches results in
  // /var/lib/cni/results under the network's name.
  for (const [logDir, owned] of [
    ['/var/log/containers', (entry: string) => readlinkSync(entry).startsWith(`${dir}/`)],
    ['/var/lib/cni/results', (entry: string) => entry.split('/').pop()!.startsWith(`${id}-`)],
  ] as const) {
    if (!existsSync(logDir)) continue;
    for (const name of readdirSync(logDir)) {
      const entry = join(logDir, name);
      try {
        if (owned(entry)) {
          unlinkSync(entry);
          removed.push(entry);
        }
      } catch {
        // not a link, or gone
      }
    }
  }
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    removed.push(dir);
  }
  return removed;
}

/** Clusters whose test process is gone (killed before it could stop them). */
async function removeAbandonedClusters(): Promise<void> {
  const ids = new Set<string>();
  const consider = (name: string, exact = false): void => {
    const match = ID_PATTERN.exec(name);
    if (match && !(exact && match[3]) && !isAlive(Number(match[2]))) ids.add(match[1]!);
  };
  for (const entry of readdirSync(tmpdir())) consider(entry, true);
  for (const line of (await cmd('ip', ['netns', 'list'])).split('\n')) consider(line.split(' ')[0]!);
  for (const h of cgroupHierarchies()) for (const entry of readdirSync(h)) consider(entry);
  for (const id of ids) await removeKubeletCluster(id);
}

// --- configuration ---

function writeKubeconfig(path: string, server: string, ca: string, client: CertPair): string {
  const b64 = (file: string): string => readFileSync(file).toString('base64');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': b64(ca) } }],
      users: [
        {
          name: 'u',
          user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) },
        },
      ],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
    { mode: 0o600 },
  );
  return path;
}

function containerdConfig(dir: string, cniDir: string): string {
  // containerd 1.6's config format version 2. Every path is the node's own; pod network namespaces are mounted
  // under the state dir (not /run/netns), runc keeps its state under the node dir.
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.ttrpc.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj below its parent's (runc
  # fails creating the pause container, which gets -998): keep every container at or above containerd's.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cniDir}"
    max_conf_num = 1
`;
}

function cniConfig(network: string, podCidr: string, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: network,
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          // Pods reach the apiserver and the other nodes from the node's address (the host does not route the
          // pod subnets), as on most clusters.
          ipMasq: true,
          hairpinMode: true,
          // The default route through the node (the gateway): pods reach the apiserver and other nodes.
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: podCidr }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: ipamDir,
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: {
  caCert: string;
  serving: CertPair;
  socket: string;
  cgroupRoot: string;
  address: string;
  podLogsDir: string;
}): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine has cgroup v1; kubelet 1.35+ refuses it unless told otherwise.
    failCgroupV1: false,
    failSwapOn: false,
    // containerd 1.6 lacks the RuntimeConfig call, so kubelet 1.37 falls back to this (1.38 will not).
    cgroupDriver: 'cgroupfs',
    cgroupRoot: o.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    containerRuntimeEndpoint: `unix://${o.socket}`,
    address: o.address,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    tlsCertFile: o.serving.cert,
    tlsPrivateKeyFile: o.serving.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: o.caCert },
    },
    // Only clients with a certificate from the cluster CA get this far (kube-apiserver's kubelet client).
    authorization: { mode: 'AlwaysAllow' },
    podLogsDir: o.podLogsDir,
    // The host's disk is shared and may be fuller than the defaults allow: no eviction, no image GC.
    evictionHard: {
      'memory.available': '1Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
      'imagefs.inodesFree': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    maxPods: 30,
    registerNode: true,
    nodeStatusUpdateFrequency: '5s',
  });
}

/**
 * kubelet runs in the node's network namespace and in a mount namespace of its own, in which the six sysctls it
 * would otherwise set on the whole (shared) host are files of the node's dir. Its root dir is a shared mount, so
 * the volumes it mounts there (tmpfs for secrets and tokens) show in the host's namespace, where containerd runs.
 */
const KUBELET_WRAPPER = `set -e
for f in ${KUBELET_SYSCTLS.join(' ')}; do
  mount --bind "$SYSCTL_DIR/$(echo "$f" | tr / .)" "/proc/sys/$f"
done
for d in $NODE_DIRS; do mount --bind "$NODE_ROOT$d" "$d"; done
exec "$@"`;

/**
 * containerd in a mount namespace of its own in which the node's own directories (nodeDirs) are bind mounts: the
 * root mount is private, so they stay there; the kubelet dir, a shared mount made before, still receives the
 * volumes kubelet mounts.
 */
const CONTAINERD_WRAPPER = `set -e
for d in $NODE_DIRS; do mount --bind "$NODE_ROOT$d" "$d"; done
exec "$@"`;

// --- start ---

async function freeSubnet(): Promise<string> {
  const used = new Set(
    [...(await cmd('ip', ['-o', '-4', 'addr', 'show'])).matchAll(/inet 10\.217\.(\d+)\./g)].map((m) =>
      Number(m[1]),
    ),
  );
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const octet = ((start + i) % 250) + 1;
    if (!used.has(octet)) return `${SUBNET_BASE}.${octet}`;
  }
  throw new Error(`no free /24 in ${SUBNET_BASE}.0.0/16`);
}

async function kubectlJson(cp: ControlPlane, args: string[]): Promise<unknown> {
  const res = await cp.kubectl([...args, '-o', 'json']);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr.trim()}`);
  return JSON.parse(res.stdout) as unknown;
}

interface NodeStatus {
  items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[];
}

export async function readyNodes(cp: ControlPlane): Promise<string[]> {
  const list = (await kubectlJson(cp, ['get', 'nodes'])) as NodeStatus;
  return list.items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata.name);
}

export async function startKubeletCluster(opts: KubeletClusterOptions = {}): Promise<KubeletCluster> {
  const began = performance.now();
  if (process.getuid?.() !== 0)
    throw new Error('the kubelet cluster needs root (namespaces, mounts, cgroups)');
  const names = opts.nodes ?? ['node-a', 'node-b'];
  const images = [kubeletImageArchive('pause'), ...(opts.images ?? [kubeletImageArchive('busybox')])];
  const nodeDirs = opts.nodeDirs ?? [];
  for (const path of nodeDirs) {
    if (!/^\/[^\s]*$/.test(path) || path.split('/').includes('..'))
      throw new Error(`nodeDirs: ${path} is not an absolute path without whitespace and ..`);
  }
  const binaries = {
    kubelet: kubeBinary('kubelet'),
    scheduler: kubeBinary('kube-scheduler'),
    controllerManager: kubeBinary('kube-controller-manager'),
  };
  await removeAbandonedClusters();

  const id = `tk${process.pid}${String.fromCharCode(97 + (clustersStarted++ % 26))}`;
  const dir = clusterDir(id);
  mkdirSync(dir, { mode: 0o700 });
  const servers: ServerProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  const stop = async (): Promise<void> => {
    for (const s of servers) s.kill();
    await Promise.all(servers.map((s) => s.exited));
    servers.length = 0;
    try {
      await removeKubeletCluster(id);
    } finally {
      await controlPlane?.stop();
    }
  };

  try {
    const subnet = await freeSubnet();
    const hostAddress = `${subnet}.1`;
    await cmd('ip', ['link', 'add', 'name', hostBridge(id), 'type', 'bridge']);
    await cmd('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', hostBridge(id)]);
    await cmd('ip', ['link', 'set', 'dev', hostBridge(id), 'up']);

    controlPlane = await startControlPlane({ name: id, bindAddress: hostAddress, kubelets: true });
    const cp = controlPlane;
    const ca = { cert: cp.certs.caCert, key: cp.certs.caKey };
    const leaf = (base: string, subject: string, ips?: string[], dnsNames?: string[]): CertPair =>
      issueControlPlaneLeaf({
        ca,
        pair: { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) },
        subject,
        ips,
        dnsNames,
      });
    const kubeconfig = (base: string, subject: string): string =>
      writeKubeconfig(join(dir, `${base}.kubeconfig`), cp.server, ca.cert, leaf(base, subject));

    // RBAC has no default binding for kubelets (the Node authorizer is not on): bind the system:node role.
    const bind = await cp.kubectl([
      'create',
      'clusterrolebinding',
      'tern-test-nodes',
      '--clusterrole=system:node',
      '--group=system:nodes',
    ]);
    if (bind.code !== 0) throw new Error(`cannot bind system:node: ${bind.stderr.trim()}`);

    servers.push(
      startServer(
        'kube-scheduler',
        binaries.scheduler,
        [
          `--kubeconfig=${kubeconfig('scheduler', '/CN=system:kube-scheduler')}`,
          '--leader-elect=false',
          '--secure-port=0',
        ],
        join(dir, 'kube-scheduler.log'),
      ),
      startServer(
        'kube-controller-manager',
        binaries.controllerManager,
        [
          `--kubeconfig=${kubeconfig('controller-manager', '/CN=system:kube-controller-manager')}`,
          '--leader-elect=false',
          '--secure-port=0',
          '--use-service-account-credentials=true',
          `--service-account-private-key-file=${cp.certs.serviceAccountKey}`,
          `--root-ca-file=${cp.certs.caCert}`,
          '--allocate-node-cidrs=false',
        ],
        join(dir, 'kube-controller-manager.log'),
      ),
    );

    const nodes: KubeletNode[] = [];
    for (const [index, name] of names.entries()) {
      nodes.push(
        await startNode({
          id,
          index,
          name,
          subnet,
          cp,
          servers,
          leaf,
          kubeconfig,
          images,
          binaries,
          nodeDirs,
        }),
      );
    }

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const dead = servers.find((s) => !isAlive(s.pid));
      if (dead) throw new Error(`${dead.name} exited while waiting for the Nodes to become Ready`);
      const ready = await readyNodes(cp);
      // The ServiceAccount admission plugin rejects pods until the controller-manager made "default".
      const serviceAccount = await cp.kubectl(['get', 'serviceaccount', 'default', '--namespace=default']);
      if (names.every((n) => ready.includes(n)) && serviceAccount.code === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${READY_TIMEOUT_MS} ms waiting for Nodes ${names.join(', ')} to be Ready (ready: ${ready.join(', ') || 'none'}) and the default ServiceAccount`,
        );
      }
      await sleep(500);
    }
    return {
      id,
      controlPlane: cp,
      nodes,
      startupMs: Math.round(performance.now() - began),
      stop,
    };
  } catch (error) {
    const report = servers
      .map((s) => `--- ${s.name} log (last ${LOG_TAIL_LINES} lines):\n${s.logTail(LOG_TAIL_LINES)}`)
      .join('\n');
    await stop().catch(() => undefined);
    throw new Error(`kubelet cluster failed to start: ${(error as Error).message}\n${report}`);
  }
}

async function startNode(o: {
  id: string;
  index: number;
  name: string;
  subnet: string;
  cp: ControlPlane;
  servers: ServerProcess[];
  leaf: (base: string, subject: string, ips?: string[], dnsNames?: string[]) => CertPair;
  kubeconfig: (base: string, subject: string) => string;
  images: string[];
  binaries: { kubelet: string };
  nodeDirs: string[];
}): Promise<KubeletNode> {
  const { id, index, name } = o;
  const address = `${o.subnet}.${11 + index}`;
  const netns = netnsOf(id, name);
  const dir = join(clusterDir(id), name);
  for (const sub of ['cni', 'ipam', 'kubelet', 'pod-logs', 'sysctl'])
    mkdirSync(join(dir, sub), { recursive: true });
  const rootDir = join(dir, 'root');
  for (const path of o.nodeDirs) {
    mkdirSync(join(rootDir, path), { recursive: true });
    mkdirSync(path, { recursive: true });
  }
  const nodeDirsEnv = [`NODE_ROOT=${rootDir}`, `NODE_DIRS=${o.nodeDirs.join(' ')}`];

  // The namespace, plugged into the host bridge by a veth pair (eth0 inside).
  await cmd('ip', ['netns', 'add', netns]);
  await cmd('ip', ['-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
  await cmd('ip', [
    'link',
    'add',
    hostVeth(id, index),
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    netns,
  ]);
  await cmd('ip', ['link', 'set', 'dev', hostVeth(id, index), 'master', hostBridge(id)]);
  await cmd('ip', ['link', 'set', 'dev', hostVeth(id, index), 'up']);
  await cmd('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  await cmd('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
  await cmd('ip', ['-n', netns, 'route', 'add', 'default', 'via', `${o.subnet}.1`]);
  // The host (where kube-apiserver runs) reaches the node's pods through the node: webhooks served by pods. The
  // route goes with the host bridge.
  await cmd('ip', ['route', 'add', podCidrOf(index), 'via', address, 'dev', hostBridge(id)]);

  // The node's cgroup root in every v1 hierarchy (kubelet checks that it exists); a new cpuset cgroup starts
  // with no CPUs or memory nodes, so it gets its parent's.
  const cgroupRoot = cgroupRootOf(id, name);
  for (const h of cgroupHierarchies()) {
    const cg = join(h, cgroupRoot);
    mkdirSync(cg, { recursive: true });
    if (h.endsWith('/cpuset')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems'])
        writeFileSync(join(cg, file), readFileSync(join(h, file)));
    }
  }

  // containerd: own config, root, state and socket; its CNI network gives pods 10.216.<index>.0/24.
  const socket = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'cni', '10-tern.conflist'),
    cniConfig(`${id}-${name}`, podCidrOf(index), join(dir, 'ipam')),
  );
  writeFileSync(join(dir, 'containerd.toml'), containerdConfig(dir, join(dir, 'cni')));
  const nsenter = ['--net=' + join('/run/netns', netns), '--'];
  // The kubelet dir is a shared mount: the volumes kubelet mounts there (in its own mount namespace) show in the
  // host's, and in containerd's when it has one.
  const kubeletDir = join(dir, 'kubelet');
  await cmd('mount', ['--bind', kubeletDir, kubeletDir]);
  await cmd('mount', ['--make-shared', kubeletDir]);
  const containerdArgs = ['containerd', '--config', join(dir, 'containerd.toml')];
  const containerd = startServer(
    `containerd ${name}`,
    'nsenter',
    o.nodeDirs.length === 0
      ? [...nsenter, ...containerdArgs]
      : [
          ...[...nsenter, 'unshare', '--mount', '--propagation', 'unchanged', '--'],
          ...['env', ...nodeDirsEnv, 'sh', '-c', CONTAINERD_WRAPPER, 'containerd', ...containerdArgs],
        ],
    join(dir, 'containerd.log'),
  );
  o.servers.push(containerd);
  const ctr = (args: string[]): Promise<string> =>
    cmd('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], 120_000);
  const deadline = Date.now() + 30_000;
  while (
    !(await ctr(['version']).then(
      () => true,
      () => false,
    ))
  ) {
    if (!isAlive(containerd.pid)) throw new Error(`containerd of ${name} exited`);
    if (Date.now() > deadline) throw new Error(`containerd of ${name} does not answer on ${socket}`);
    await sleep(200);
  }
  for (const archive of o.images) await ctr(['images', 'import', archive]);

  // kubelet: identity system:node:<name>, a serving certificate for its address, its sysctl files.
  for (const sysctl of KUBELET_SYSCTLS) {
    writeFileSync(join(dir, 'sysctl', sysctl.replaceAll('/', '.')), readFileSync(join('/proc/sys', sysctl)));
  }
  const serving = o.leaf(`kubelet-${name}-serving`, `/CN=${name}`, [address], [name]);
  writeFileSync(
    join(dir, 'kubelet.yaml'),
    kubeletConfig({
      caCert: o.cp.certs.caCert,
      serving,
      socket,
      cgroupRoot: `/${cgroupRoot}`,
      address,
      podLogsDir: join(dir, 'pod-logs'),
    }),
  );
  const kubeletArgs = [
    `--config=${join(dir, 'kubelet.yaml')}`,
    `--kubeconfig=${o.kubeconfig(`kubelet-${name}`, `/O=system:nodes/CN=system:node:${name}`)}`,
    `--root-dir=${kubeletDir}`,
    `--cert-dir=${join(dir, 'kubelet-pki')}`,
    `--hostname-override=${name}`,
    `--node-ip=${address}`,
    '--v=1',
  ];
  const wrapper = [
    'unshare',
    '--mount',
    '--propagation',
    'unchanged',
    '--',
    'env',
    `SYSCTL_DIR=${join(dir, 'sysctl')}`,
    ...nodeDirsEnv,
    'sh',
    '-c',
    KUBELET_WRAPPER,
    'kubelet',
  ];
  o.servers.push(
    startServer(
      `kubelet ${name}`,
      'nsenter',
      [...nsenter, ...wrapper, o.binaries.kubelet, ...kubeletArgs],
      join(dir, 'kubelet.log'),
    ),
  );
  return { name, address, netns, dir, containerdSocket: socket, rootDir };
}

/**
 * What is left on this machine of cluster `id`: its dir, mounts, cgroups, namespaces, links, and processes that
 * name its dir on their command line (containerd, kubelet, the shims).
 */
export async function kubeletClusterLeftovers(id: string): Promise<string[]> {
  const left: string[] = [];
  if (existsSync(clusterDir(id))) left.push(clusterDir(id));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || !isAlive(Number(entry))) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((arg) => arg.includes(`${clusterDir(id)}/`))) left.push(`pid ${entry}: ${argv[0]}`);
    } catch {
      // gone
    }
  }
  left.push(...mountsBelow(clusterDir(id)), ...clusterCgroups(id));
  const owned = (name: string | undefined): name is string => name?.startsWith(`${id}-`) === true;
  left.push(
    ...(await cmd('ip', ['netns', 'list']))
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter(owned),
  );
  const links = await cmd('ip', ['-o', 'link', 'show']);
  left.push(...[...links.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]).filter(owned));
  return left;
}
