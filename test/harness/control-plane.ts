/**
 * A throw-away Kubernetes control plane for integration tests, envtest-style: a real etcd and a real
 * kube-apiserver (built by hack/build-k8s.sh) on free loopback ports, with fresh certificates in a fresh temp
 * dir, RBAC authorization, and an admin kubeconfig (group system:masters). No controller-manager or scheduler
 * runs: objects are stored and watched, but nothing reconciles Pods, Deployments or ServiceAccounts.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  generateCertificates,
  issueControlPlaneLeaf,
  type ControlPlaneCertificates,
} from './certificates.js';
import { freeLoopbackPort } from './free-port.js';
import { startServer, type ServerProcess } from './server-process.js';

export interface ControlPlane {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Temp dir holding certificates, kubeconfig, etcd data and the server logs (etcd.log, kube-apiserver.log). */
  dir: string;
  /** Wall time of startControlPlane: certificates, etcd, kube-apiserver /readyz, default namespace, kubeconfig. */
  startupMs: number;
  /** Runs the cached kubectl against this control plane (--kubeconfig is added). */
  kubectl(
    args: string[],
    opts?: { input?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Stops kube-apiserver and etcd and removes dir. Idempotent. */
  stop(): Promise<void>;
  /** The etcd and kube-apiserver processes (a detached control plane's owner records them to stop them later). */
  processes: { name: string; pid: number }[];
  /** The PKI in dir; its CA signs further client and serving certificates (issueControlPlaneLeaf). */
  certs: ControlPlaneCertificates;
}

export interface ControlPlaneOptions {
  /** Part of the temp dir's name. */
  name?: string;
  /**
   * Address kube-apiserver listens on and the kubeconfig names (default 127.0.0.1); it is added to the serving
   * certificate. The local cluster uses the host's address on its own bridge, which its network namespaces reach.
   */
  bindAddress?: string;
  /**
   * The servers outlive this process (own session, no parent-death signal, no exit handler) and use `dir` (created
   * if missing) instead of a temp dir; the caller stops them, e.g. by the recorded `processes`.
   */
  detached?: { dir: string };
  /**
   * kube-apiserver talks to kubelets (logs, exec, port-forward): it presents a client certificate in group
   * system:masters and checks each kubelet's serving certificate against the control plane's CA, by InternalIP.
   */
  kubelets?: boolean;
}

/** The binaries hack/build-k8s.sh builds into $TERN_CACHE/bin (kstatus: the checker in hack/k8s/kstatus). */
export type KubeBinaryName =
  | 'kube-apiserver'
  | 'etcd'
  | 'kubectl'
  | 'kstatus'
  | 'kubelet'
  | 'kube-scheduler'
  | 'kube-controller-manager';

const START_TIMEOUT_MS = 60_000;
const POLL_MS = 50;
const LOG_TAIL_LINES = 25;
const PORT_ATTEMPTS = 3;
const DIR_PREFIX = 'tern-cp-';

export function kubeBinary(name: KubeBinaryName): string {
  const path = join(process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern'), 'bin', name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}: run npm run setup (or bash hack/build-k8s.sh) to build it`,
    );
  }
  return path;
}

/** Control planes of this process that are not stopped yet, for the exit and signal handlers. */
const live = new Set<{ destroyNow(): void }>();
let exitHandlersInstalled = false;

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  const destroyAll = (): void => {
    for (const cp of live) cp.destroyNow();
  };
  process.on('exit', destroyAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      destroyAll();
      // A signal listener replaces the default "terminate"; restore it unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** A zombie (killed, not yet reaped by its parent) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    // The state follows the parenthesised command name, which may itself contain spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A SIGKILLed test process cannot remove its dir (its servers die with it, see server-process.ts). The owner pid
 * is part of the dir name, so every start removes the dirs whose owner is gone.
 */
function removeAbandonedDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    const owner = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(entry)?.[1];
    if (owner === undefined || isAlive(Number(owner))) continue;
    try {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // another user's dir (sticky /tmp): not ours to remove
    }
  }
}

interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** HTTP status of a GET, or 0 when the server does not answer (yet). */
function httpsStatus(url: string, tls: Tls): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ...tls, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until check() is true; fails early when one of the servers exits. */
async function waitFor(
  what: string,
  deadline: number,
  servers: ServerProcess[],
  check: () => Promise<boolean>,
) {
  const exited = Promise.race(servers.map((s) => s.exited.then((how) => `${s.name} exited (${how})`)));
  let failure: string | undefined;
  void exited.then((why) => (failure = why));
  while (!(await check())) {
    if (failure !== undefined) throw new Error(`${failure} while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

function etcdArgs(dir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    '--unsafe-no-fsync', // the data is thrown away; fsync only slows tests down
    '--log-level=warn',
  ];
}

/** The client certificate kube-apiserver presents to kubelets (ControlPlaneOptions.kubelets). */
function kubeletClientArgs(dir: string, certs: ControlPlaneCertificates): string[] {
  const pair = issueControlPlaneLeaf({
    ca: { cert: certs.caCert, key: certs.caKey },
    pair: { cert: join(dir, 'apiserver-kubelet-client.crt'), key: join(dir, 'apiserver-kubelet-client.key') },
    subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
  });
  return [
    `--kubelet-client-certificate=${pair.cert}`,
    `--kubelet-client-key=${pair.key}`,
    `--kubelet-certificate-authority=${certs.caCert}`,
    '--kubelet-preferred-address-types=InternalIP',
    // Admission webhooks (and aggregated APIs) backed by a Service are called at one of its endpoints, a pod's
    // address (which the host routes to the node), not at its ClusterIP: no kube-proxy runs on the nodes.
    '--enable-aggregator-routing=true',
  ];
}

function apiserverArgs(
  certs: ControlPlaneCertificates,
  etcdPort: number,
  address: string,
  port: number,
  extra: string[],
  withServiceAccounts: boolean,
): string[] {
  return [
    ...extra,
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--bind-address=${address}`,
    `--advertise-address=${address}`,
    // The endpoint reconciler refuses a loopback advertise address; nothing here needs the kubernetes Service's
    // endpoints.
    '--endpoint-reconciler-type=none',
    `--secure-port=${port}`,
    `--tls-cert-file=${certs.servingCert}`,
    `--tls-private-key-file=${certs.servingKey}`,
    `--client-ca-file=${certs.caCert}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=https://${address}:${port}`,
    `--service-account-key-file=${certs.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${certs.serviceAccountKey}`,
    // Without a controller-manager nothing creates the "default" ServiceAccount, so this plugin would reject every
    // Pod; the kubelet cluster runs one.
    ...(withServiceAccounts ? [] : ['--disable-admission-plugins=ServiceAccount']),
    '--allow-privileged=true',
    '--profiling=false',
    // API Priority and Fairness only queues requests under contention, which no test makes; without it the
    // apiserver turns ready about 1.5 s sooner on a loaded 2-core host (its config producer and informers).
    '--enable-priority-and-fairness=false',
  ];
}

function writeKubeconfig(path: string, server: string, certs: ControlPlaneCertificates): void {
  const b64 = (file: string): string => readFileSync(file).toString('base64');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tern-test', cluster: { server, 'certificate-authority-data': b64(certs.caCert) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': b64(certs.adminCert), 'client-key-data': b64(certs.adminKey) },
      },
    ],
    contexts: [{ name: 'tern-test', context: { cluster: 'tern-test', user: 'admin', namespace: 'default' } }],
    'current-context': 'tern-test',
  };
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
}

function failureReport(servers: ServerProcess[]): string {
  return servers
    .map((s) => `--- ${s.name} log (last ${LOG_TAIL_LINES} lines):\n${s.logTail(LOG_TAIL_LINES)}`)
    .join('\n');
}

/** Starts etcd, then kube-apiserver, and waits until the apiserver is ready; the caller cleans up on failure. */
async function launch(
  dir: string,
  certs: ControlPlaneCertificates,
  servers: ServerProcess[],
  address: string,
  detached: boolean,
  kubelets: boolean,
): Promise<string> {
  const [etcdClientPort, etcdPeerPort, apiserverPort] = await Promise.all([
    freeLoopbackPort(),
    freeLoopbackPort(),
    freeLoopbackPort(),
  ]);
  const deadline = Date.now() + START_TIMEOUT_MS;
  const etcd = startServer(
    'etcd',
    kubeBinary('etcd'),
    etcdArgs(dir, etcdClientPort, etcdPeerPort),
    join(dir, 'etcd.log'),
    { detached },
  );
  servers.push(etcd);
  const etcdHealth = `http://127.0.0.1:${etcdClientPort}/health`;
  await waitFor('etcd /health', deadline, servers, async () => {
    const res = await fetch(etcdHealth, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    return res !== undefined && res.ok && ((await res.json()) as { health?: string }).health === 'true';
  });

  const server = `https://${address}:${apiserverPort}`;
  const apiserverLog = join(dir, 'kube-apiserver.log');
  servers.push(
    startServer(
      'kube-apiserver',
      kubeBinary('kube-apiserver'),
      apiserverArgs(
        certs,
        etcdClientPort,
        address,
        apiserverPort,
        kubelets ? kubeletClientArgs(dir, certs) : [],
        kubelets,
      ),
      apiserverLog,
      { detached },
    ),
  );
  const tls: Tls = {
    ca: readFileSync(certs.caCert),
    cert: readFileSync(certs.adminCert),
    key: readFileSync(certs.adminKey),
  };
  await waitFor(
    'kube-apiserver /readyz',
    deadline,
    servers,
    async () => (await httpsStatus(`${server}/readyz`, tls)) === 200,
  );
  // /readyz can turn ready before the system-namespaces controller has created "default".
  await waitFor(
    'the default namespace',
    deadline,
    servers,
    async () => (await httpsStatus(`${server}/api/v1/namespaces/default`, tls)) === 200,
  );
  return server;
}

function runKubectl(
  kubeconfigPath: string,
  args: string[],
  input: string | undefined,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Through setpriv as well, so that a `kubectl get --watch` cannot outlive a killed test process.
    const child = spawn('setpriv', [
      '--pdeathsig',
      'SIGKILL',
      '--',
      kubeBinary('kubectl'),
      `--kubeconfig=${kubeconfigPath}`,
      ...args,
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    // kubectl may exit before it reads its input (a `get` never does): EPIPE then, and the exit status counts.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const began = performance.now();
  kubeBinary('etcd');
  kubeBinary('kube-apiserver');
  kubeBinary('kubectl');
  const address = opts.bindAddress ?? '127.0.0.1';
  const detached = opts.detached !== undefined;
  if (!detached) installExitHandlers();
  removeAbandonedDirs();
  const label = (opts.name ?? 'test').replace(/[^a-zA-Z0-9_.-]/g, '_');
  if (opts.detached) mkdirSync(opts.detached.dir, { recursive: true, mode: 0o700 });
  const dir = opts.detached?.dir ?? mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-${label}-`));

  let servers: ServerProcess[] = [];
  let destroyed = false;
  const destroyNow = (): void => {
    destroyed = true;
    for (const s of servers) s.kill();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    live.delete(handle);
  };
  const handle = { destroyNow };
  if (!detached) live.add(handle);

  let server: string;
  let certs: ControlPlaneCertificates;
  try {
    certs = await generateCertificates(dir, address === '127.0.0.1' ? [] : [address]);
    for (let attempt = 1; ; attempt++) {
      try {
        server = await launch(dir, certs, servers, address, detached, opts.kubelets === true);
        break;
      } catch (err) {
        const report = failureReport(servers);
        for (const s of servers) s.kill();
        await Promise.all(servers.map((s) => s.exited));
        // Free ports are picked before binding, so a concurrent test may grab one first: retry with new ones.
        if (attempt < PORT_ATTEMPTS && /address already in use/.test(report)) {
          servers = [];
          rmSync(join(dir, 'etcd'), { recursive: true, force: true });
          continue;
        }
        throw new Error(`control plane failed to start: ${(err as Error).message}\n${report}`);
      }
    }
  } catch (err) {
    destroyNow();
    throw err;
  }

  const kubeconfigPath = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, server, certs);
  return {
    kubeconfigPath,
    server,
    dir,
    startupMs: Math.round(performance.now() - began),
    kubectl: (args, kubectlOpts) => runKubectl(kubeconfigPath, args, kubectlOpts?.input),
    processes: servers.map((s) => ({ name: s.name, pid: s.pid })),
    certs,
    async stop() {
      if (destroyed) return;
      for (const s of servers) s.kill();
      await Promise.all(servers.map((s) => s.exited));
      destroyNow();
    },
  };
}
