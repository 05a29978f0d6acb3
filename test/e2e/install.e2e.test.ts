// `helm install tern ./helm/tern` on real kubelet nodes (issue 13 item 4; test/harness/kubelet-cluster.ts, root
// only): the image `npm run image` builds (warm: seconds) is imported into both nodes' containerd, the chart runs
// the operator Deployment and the hypervisor-node DaemonSet from it, both HypervisorNodes go Ready and `helm test`
// passes; each daemon pod holds only its own node's key (item 6: its certificate comes through the CSR API, and its
// pod's token cannot get another node's); a VirtualMachine created with `kubectl apply` runs and moves from one kubelet node to the other and back,
// with the guest agent's memory check OK after each move, exactly one QEMU for it across the nodes, and neither
// a watch on the VM nor the daemons ever showing it on two nodes. docs/install.md ("Install on a cluster") is
// what the test does, step by step.
//
// Then `helm upgrade` to a new image tag and chart version while two VMs run and a Migration is in flight: the pods
// restart, the daemons re-attach the guests (same QEMU pids, memory check OK), the operator's leadership moves to a
// new pod, the Migration ends (Succeeded, or Failed with a reason) with the guest on one node, and the new chart's
// CRD change is applied. `kubectl drain` of a node with 3 VMs moves them all; `helm uninstall` leaves the CRDs, the
// VMs and their guests. The file prints the timings docs/install.md quotes.
//
// The nodes of the kubelet cluster share this machine's file system: /var/lib/tern (the daemon's state dir) and
// /var/lib/tern-images (the image roots) are each node's own (nodeDirs), as on separate machines. No kube-proxy
// runs: the chart's apiServer.host/port point the pods at the apiserver. This host has cgroup v1: the guests' cgroups
// are made in every hierarchy, under the node's own cgroup root (<cluster id>-<node>, so that the nodes, which share
// the host's cgroup tree, do not share guest cgroups and the teardown finds them).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { isTerminalMigrationPhase, type Migration, type VirtualMachine } from '../../crds/index.js';
import { testGuestImages, testGuestVm } from '../fixtures/test-guest.js';
import { generateDevCerts, issueControlPlaneLeaf, type DevCerts } from '../harness/certificates.js';
import { controlClient } from '../harness/control-client.js';
import { kubeBinary } from '../harness/control-plane.js';
import { eventually } from '../harness/eventually.js';
import { guestOfVm, isQemuOfVm } from '../harness/guest-lookup.js';
import {
  kubeletClusterLeftovers,
  PAUSE_IMAGE,
  startKubeletCluster,
  type KubeletCluster,
  type KubeletNode,
} from '../harness/kubelet-cluster.js';
import { condition, kubectlOn, verifyGuest } from '../harness/operator-cluster.js';
import { buildTernImage, IMAGE_BUILD_TIMEOUT_MS, type TernImage } from '../harness/tern-image.js';
import { helm, kubeconfigWithToken } from '../helm/chart-tools.js';
import type { GuestControlClient } from '../../proto/index.js';
import { kubeCsrApi } from '../../hypervisor-node/src/identity/csr-api.js';
import { createCertificateRequest, NODE_SIGNER_NAME, nodeUri } from '../../pki/index.js';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../helm/tern/', import.meta.url));
const NAMESPACE = 'tern-system';
const STATE_DIR = '/var/lib/tern';
const IMAGES_DIR = '/var/lib/tern-images';
/** The chart's default hypervisorNode.sharedImageRoots: the test guest's kernel and initramfs go there. */
const SHARED_IMAGES = `${IMAGES_DIR}/shared`;
const CONTROL_PORT = 7443;
const READY_TIMEOUT_MS = 240_000;
const MIGRATION_TIMEOUT_MS = 180_000;
const VM = 'vm1';
/** The second VM of the upgrade (it stays put) and the third of the drain. */
const VM2 = 'vm2';
const VM3 = 'vm3';
/** The tag the upgrade moves to: the same image content under a new reference, so every pod restarts. */
const NEXT_TAG = '0.1.0-next';
/** The printer column the next chart version adds to the VirtualMachine CRD. */
const NEXT_COLUMN = 'Upgraded';

let cluster: KubeletCluster;
let work: string;
let image: TernImage;
let certs: DevCerts;
const controls = new Map<string, GuestControlClient>();
const timings: [string, number][] = [];
/** The stop() of every watchVm still running. */
const watches = new Set<() => Promise<unknown>>();
/** Set when the install came up: the VM test needs it. */
let installed = false;
const { kubectl, apply, getJson } = kubectlOn(() => cluster.controlPlane);

const node = (name: string): KubeletNode => cluster.nodes.find((n) => n.name === name)!;
const otherNode = (name: string): string => cluster.nodes.find((n) => n.name !== name)!.name;
const getVm = (name = VM) => getJson<VirtualMachine>('virtualmachine', name);

/** The last lines of every Tern pod's log, for failure messages. */
async function podLogs(): Promise<string> {
  const pods = await cluster.controlPlane.kubectl(['get', 'pods', '-n', NAMESPACE, '-o', 'wide']);
  let text = `${pods.stdout}${pods.stderr}`;
  const names = pods.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0])
    .filter(Boolean);
  for (const name of names) {
    const logs = await cluster.controlPlane.kubectl(['logs', '-n', NAMESPACE, name!, '--tail=12']);
    const lines = `${logs.stdout}${logs.stderr}`.split('\n').map((line) => line.slice(0, 400));
    text += `\n--- ${name}:\n${lines.join('\n')}`;
  }
  return text;
}

/** Reasons a container waits with that no wait cures (the image is missing or wrong, a Secret is missing). */
const HOPELESS =
  /^(ErrImageNeverPull|ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError)$/;

/** Throws when a Tern pod waits for something that will not come. */
async function failOnHopelessPods(): Promise<void> {
  const pods = await getJson<{
    items: {
      metadata: { name: string };
      status?: { containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[] };
    }[];
  }>('pods', '-n', NAMESPACE);
  for (const pod of pods.items) {
    for (const status of pod.status?.containerStatuses ?? []) {
      const waiting = status.state?.waiting;
      if (waiting?.reason && HOPELESS.test(waiting.reason))
        throw new Error(`pod ${pod.metadata.name}: ${waiting.reason}: ${waiting.message ?? ''}`);
    }
  }
}

/** What the VM, its Migrations, its events and both daemons say, and the Tern pods' logs. */
async function diagnose(name = VM): Promise<string> {
  const vm = await getVm(name);
  const migrations = (await getJson<{ items: Migration[] }>('migrations')).items.map(
    (m) =>
      `${m.metadata?.name} ${m.status?.phase} ${m.status?.sourceNode}→${m.status?.targetNode} ${m.status?.failureReason ?? ''} ${m.status?.message ?? ''}`,
  );
  const events = await kubectl('get', 'events', '--field-selector', `involvedObject.name=${name}`);
  const guests: string[] = [];
  for (const n of cluster.nodes) {
    const guest = await guestOfVm(control(n.name), name).then(
      (g) => JSON.stringify(g ?? 'ABSENT'),
      (e: Error) => e.message,
    );
    guests.push(`${n.name}: ${guest.slice(0, 1500)}`);
  }
  return [
    `status: ${JSON.stringify(vm.status)}`,
    `migrations:\n${migrations.join('\n')}`,
    `events:\n${events}`,
    `guests:\n${guests.join('\n')}`,
    await podLogs(),
  ].join('\n');
}

/**
 * eventually, with the Tern pods' logs in the error when it times out; it gives up at once when a pod waits for
 * something that will not come.
 */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  try {
    return await eventually(
      what,
      async () => {
        await failOnHopelessPods();
        return probe();
      },
      ms,
      500,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await podLogs().catch((e: Error) => e.message)}`);
  }
}

const timed = async <T>(what: string, since: number, step: Promise<T>): Promise<T> => {
  const result = await step;
  timings.push([what, Date.now() - since]);
  return result;
};

/**
 * The daemon's control client for `name`, as the operator connects (its certificate, the advertised address:
 * the node's InternalIP and hypervisorNode.controlPort).
 */
function control(name: string): GuestControlClient {
  let client = controls.get(name);
  if (client === undefined) {
    client = controlClient(
      `${node(name).address}:${CONTROL_PORT}`,
      { ca: certs.ca.cert, cert: certs.operator.cert, key: certs.operator.key },
      name,
    );
    controls.set(name, client);
  }
  return client;
}

interface DaemonPod {
  metadata: { name: string; uid: string };
  spec: { nodeName: string; volumes: { name: string; secret?: object }[] };
}

interface NodeCsr {
  spec: { signerName: string; username: string; extra?: Record<string, string[]> };
  status?: { certificate?: string };
}

/** The certificate the node's daemon serves its control API with, as the operator reaches it. */
function servedCertificate(n: KubeletNode): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: n.address,
      port: CONTROL_PORT,
      servername: n.name,
      ca: readFileSync(certs.ca.cert),
      cert: readFileSync(certs.operator.cert),
      key: readFileSync(certs.operator.key),
      ALPNProtocols: ['h2'],
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()!);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** The ServiceAccount token kubelet mounted into a pod of `n` (read from kubelet's directory on the host). */
async function podToken(n: KubeletNode, podUid: string): Promise<string> {
  const projected = join(n.dir, 'kubelet', 'pods', podUid, 'volumes', 'kubernetes.io~projected');
  for (const volume of await readdir(projected)) {
    const token = await readFile(join(projected, volume, 'token'), 'utf8').catch(() => undefined);
    if (token !== undefined) return token.trim();
  }
  throw new Error(`no ServiceAccount token in ${projected}`);
}

/** Pids of the QEMU processes running the VM's guest, per node (the processes in the node's network namespace). */
async function qemuPids(vm = VM): Promise<Record<string, number[]>> {
  const found: Record<string, number[]> = {};
  for (const n of cluster.nodes) {
    found[n.name] = [];
    const { stdout } = await run('ip', ['netns', 'pids', n.netns]);
    for (const pid of stdout.split('\n').filter(Boolean).map(Number)) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (argv[0]?.endsWith('qemu-system-x86_64') && isQemuOfVm(argv, vm)) found[n.name]!.push(pid);
    }
  }
  return found;
}

/**
 * Watches where the VM runs while a test moves it: a `kubectl get --watch` of the VirtualMachine (every status.node
 * it reports) and the daemons' guest lists polled, the destination asked first (a guest moving between the two
 * calls cannot look as if it ran on both). stop() returns what each saw.
 */
function watchVm(destination: string, vm = VM) {
  const nodesSeen: string[] = [];
  const bothRunning: string[] = [];
  const watch: ChildProcess = spawn(
    kubeBinary('kubectl'),
    [
      ...['--kubeconfig', cluster.controlPlane.kubeconfigPath, 'get', 'virtualmachine', vm, '--watch'],
      ...['-o', 'jsonpath={.status.node}{"\\n"}'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let buffered = '';
  watch.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (nodesSeen.at(-1) !== line) nodesSeen.push(line);
  });
  let polling = true;
  const poll = (async () => {
    const order = [destination, otherNode(destination)];
    while (polling) {
      const phases: string[] = [];
      for (const name of order) {
        const guest = await guestOfVm(control(name), vm, 'default', new Date(Date.now() + 2_000)).catch(
          () => undefined,
        );
        phases.push(guest?.phase ?? 'ABSENT');
      }
      if (phases.every((phase) => phase === 'GUEST_PHASE_RUNNING'))
        bothRunning.push(new Date().toISOString());
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const stop = async () => {
    watches.delete(stop);
    polling = false;
    await poll;
    watch.kill();
    return { nodesSeen, bothRunning };
  };
  watches.add(stop);
  return stop;
}

beforeAll(async () => {
  const began = Date.now();
  work = await mkdtemp(join(tmpdir(), 'tinstall-'));
  const [built, guest] = await Promise.all([buildTernImage(), testGuestImages()]);
  image = built;
  console.log(`${image.output}\nnpm run image: ${image.buildMs} ms`);
  cluster = await startKubeletCluster({ images: [], nodeDirs: [STATE_DIR, IMAGES_DIR] });
  timings.push(['kubelet cluster up', cluster.startupMs]);

  // What an administrator does before `helm install` (docs/install.md): the guest images on each node, the
  // namespace, the operator's certificate and the CA, the hypervisor label.
  const importing = Date.now();
  for (const n of cluster.nodes) {
    // As docs/install.md says: --digests with the repository as --base-name also names the image by its manifest
    // digest (docker.io/library/tern@sha256:...), which image.digest makes the pods ask for.
    await run(
      'ctr',
      [
        ...['--address', n.containerdSocket, '--namespace', 'k8s.io', 'images', 'import'],
        ...['--base-name', image.reference.replace(/:[^:/]+$/, ''), '--digests', image.archive],
      ],
      { timeout: 180_000 },
    );
    const shared = join(n.rootDir, SHARED_IMAGES);
    await mkdir(shared, { recursive: true });
    await copyFile(guest.kernel, join(shared, 'vmlinux'));
    await copyFile(guest.initrd, join(shared, 'initramfs.img'));
  }
  timings.push(['image imported into both nodes', Date.now() - importing]);
  // A development CA and the operator's client certificate (hack/gen-certs.ts's set); the daemons get their node
  // certificates from the operator through the CSR API (nodeIdentity.source csr, the chart's default).
  certs = generateDevCerts(join(work, 'pki'), []);
  await kubectl('create', 'namespace', NAMESPACE);
  await kubectl(
    ...['-n', NAMESPACE, 'create', 'secret', 'generic', 'tern-operator-tls'],
    `--from-file=tls.crt=${certs.operator.cert}`,
    `--from-file=tls.key=${certs.operator.key}`,
    `--from-file=ca.crt=${certs.ca.cert}`,
  );
  await kubectl(
    '-n',
    NAMESPACE,
    'create',
    'secret',
    'tls',
    'tern-ca',
    '--cert',
    certs.ca.cert,
    '--key',
    certs.ca.key,
  );
  await kubectl('-n', NAMESPACE, 'create', 'configmap', 'tern-ca', `--from-file=ca.crt=${certs.ca.cert}`);
  // The eviction webhook's serving certificate (operator.nodeMaintenance): for its Service's name, which the
  // apiserver checks; any CA (the operator writes ca.crt into the webhook configuration).
  const webhook = issueControlPlaneLeaf({
    ca: { cert: cluster.controlPlane.certs.caCert, key: cluster.controlPlane.certs.caKey },
    pair: { cert: join(work, 'webhook.crt'), key: join(work, 'webhook.key') },
    subject: '/CN=tern-operator-webhook',
    dnsNames: [`tern-operator-webhook.${NAMESPACE}.svc`],
  });
  await kubectl(
    ...['-n', NAMESPACE, 'create', 'secret', 'generic', 'tern-eviction-webhook-tls'],
    `--from-file=tls.crt=${webhook.cert}`,
    `--from-file=tls.key=${webhook.key}`,
    `--from-file=ca.crt=${cluster.controlPlane.certs.caCert}`,
  );
  for (const n of cluster.nodes) await kubectl('label', 'node', n.name, 'tern.dev/hypervisor=true');
  console.log(`setup: ${Date.now() - began} ms`);
}, IMAGE_BUILD_TIMEOUT_MS + 300_000);

afterAll(async () => {
  // Watches a failed test left running (it threw before stopping them).
  await Promise.all([...watches].map((stop) => stop()));
  for (const client of controls.values()) client.close();
  console.log(
    `timings:\n${timings.map(([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(1)} s`).join('\n')}`,
  );
  if (cluster) {
    await cluster.stop();
    expect(await kubeletClusterLeftovers(cluster.id)).toEqual([]);
  }
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

test(
  'helm install runs the operator and the daemons from the image; both HypervisorNodes go Ready',
  async () => {
    const apiServer = new URL(cluster.controlPlane.server);
    const started = Date.now();
    await helm(
      ...['install', 'tern', CHART, '--namespace', NAMESPACE],
      ...['--kubeconfig', cluster.controlPlane.kubeconfigPath],
      // The exact build: the pods name the image by its digest, which the nodes have (imported, never pulled).
      ...['--set', `image.digest=${image.digest}`, '--set', 'image.pullPolicy=Never'],
      // No kube-proxy on these nodes: the pods reach the apiserver at its address.
      ...['--set', `apiServer.host=${apiServer.hostname}`, '--set', `apiServer.port=${apiServer.port}`],
      // Each guest in cgroups of its own under the node's cgroup root, in every cgroup v1 hierarchy, so that it
      // outlives its daemon pod (the upgrade test). No bridge on the nodes: user networking; no KVM.
      ...['--set', `hypervisorNode.guestCgroup=${cluster.id}-$(TERN_NODE_NAME)/tern-guests`],
      ...['--set', 'hypervisorNode.network=user'],
      ...['--set', 'hypervisorNode.accelerator=tcg'],
      // This machine's 2 CPUs, offered twice over on each node: the drain moves 3 one-CPU VMs onto one node.
      ...['--set', 'hypervisorNode.extraArgs[0]=--cpu-capacity=4'],
      // kubectl drain moves VMs (the last test); the guard pods run the pause image the nodes have.
      ...['--set', 'operator.nodeMaintenance.enabled=true'],
      ...['--set', `operator.nodeMaintenance.guardImage=${PAUSE_IMAGE}`],
    );
    timings.push(['helm install', Date.now() - started]);

    await timed(
      'helm install → operator Deployment Available',
      started,
      waitFor(
        'the operator Deployment available',
        async () => {
          const deployment = await getJson<{ status?: { availableReplicas?: number } }>(
            'deployment',
            '-n',
            NAMESPACE,
            'tern-operator',
          );
          return (deployment.status?.availableReplicas ?? 0) >= 1 ? deployment : undefined;
        },
        READY_TIMEOUT_MS,
      ),
    );
    await timed(
      'helm install → both HypervisorNodes Ready',
      started,
      waitFor(
        'both HypervisorNodes Ready',
        async () => {
          const list = await getJson<{ items: { metadata: { name: string }; status?: object }[] }>(
            'hypervisornodes',
          );
          const ready = list.items.filter((hvn) => condition(hvn, 'Ready')?.status === 'True');
          return ready.length === cluster.nodes.length ? ready : undefined;
        },
        READY_TIMEOUT_MS,
      ),
    );

    // Every Tern pod runs the image that was built, by digest.
    const pods = await getJson<{
      items: { metadata: { name: string }; spec: { nodeName: string; containers: { image: string }[] } }[];
    }>('pods', '-n', NAMESPACE);
    expect(pods.items.length).toBe(2 + cluster.nodes.length);
    for (const pod of pods.items) expect(pod.spec.containers[0]!.image).toBe(`tern@${image.digest}`);
    const daemonNodes = pods.items
      .filter((pod) => pod.metadata.name.startsWith('tern-hypervisor-node-'))
      .map((pod) => pod.spec.nodeName);
    expect(daemonNodes.sort()).toEqual(cluster.nodes.map((n) => n.name).sort());

    const testStarted = Date.now();
    const result = await helm(
      ...['test', 'tern', '--namespace', NAMESPACE, '--kubeconfig', cluster.controlPlane.kubeconfigPath],
    );
    timings.push(['helm test', Date.now() - testStarted]);
    expect(result).toMatch(/Phase:\s+Succeeded/);
    installed = true;
  },
  READY_TIMEOUT_MS * 2,
);

test("each daemon pod holds its own node's key only: its certificate came through a CSR made with its pod's token, which cannot get the other node's", async () => {
  if (!installed) throw new Error('the install did not come up (see the first test)');
  const pods = await getJson<{ items: DaemonPod[] }>(
    ...['pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=tern-hypervisor-node'],
  );
  expect(pods.items.map((pod) => pod.spec.nodeName).sort()).toEqual(cluster.nodes.map((n) => n.name).sort());
  const csrs = await getJson<{ items: NodeCsr[] }>('csr');
  for (const pod of pods.items) {
    // No Secret reaches a daemon: the CA certificate comes from a ConfigMap, the key is made on the node.
    expect(pod.spec.volumes.filter((volume) => volume.secret !== undefined)).toEqual([]);
    const n = node(pod.spec.nodeName);
    const served = await servedCertificate(n);
    expect(served.subject).toBe(`CN=${n.name}`);
    expect(served.subjectAltName?.split(', ').sort()).toEqual(
      [`DNS:${n.name}`, `IP Address:${n.address}`, `URI:spiffe://tern.dev/node/${n.name}`].sort(),
    );
    // Issued for a request the apiserver recorded as made with a token bound to this node's daemon pod.
    const issuedBy = csrs.items.find(
      (csr) =>
        csr.status?.certificate !== undefined &&
        new X509Certificate(Buffer.from(csr.status.certificate, 'base64')).fingerprint256 ===
          served.fingerprint256,
    );
    expect(issuedBy?.spec).toMatchObject({
      signerName: NODE_SIGNER_NAME,
      username: `system:serviceaccount:${NAMESPACE}:tern-hypervisor-node`,
      extra: {
        'authentication.kubernetes.io/node-name': [n.name],
        'authentication.kubernetes.io/pod-name': [pod.metadata.name],
      },
    });
  }

  // The token kubelet mounted into node A's daemon pod asks for node B's certificate: denied.
  const [a, b] = cluster.nodes as [KubeletNode, KubeletNode];
  const podOfA = pods.items.find((pod) => pod.spec.nodeName === a.name)!;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(
    await kubeconfigWithToken(
      cluster.controlPlane,
      join(work, 'daemon-a.kubeconfig'),
      await podToken(a, podOfA.metadata.uid),
      'daemon-a',
    ),
  );
  const api = kubeCsrApi(kubeConfig);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const names = { commonName: b.name, dnsNames: [b.name], uris: [nodeUri(b.name)], ips: [] };
  const request = await api.create({
    generateName: 'tern-node-impostor-',
    pem: createCertificateRequest(names, privateKey),
    signerName: NODE_SIGNER_NAME,
    expirationSeconds: 3600,
  });
  const answer = await eventually(`the operator's answer to ${request}`, async () => {
    const read = await api.read(request);
    return read.refused !== undefined || read.certificate !== undefined ? read : undefined;
  });
  expect(answer).toEqual({
    refused: expect.stringMatching(
      new RegExp(
        `^Denied: the daemon pod ${podOfA.metadata.name} on node ${a.name} asked for subject CN=${b.name}`,
      ),
    ),
  });
}, 120_000);

test(
  'a VM applied with kubectl runs, moves to the other kubelet node and back, on one node at a time',
  async () => {
    if (!installed) throw new Error('the install did not come up (see the first test)');
    const guest = await testGuestImages();
    const vm = testGuestVm(VM, {
      ...guest,
      kernel: `${SHARED_IMAGES}/vmlinux`,
      initrd: `${SHARED_IMAGES}/initramfs.img`,
    });
    const created = Date.now();
    await apply(vm);
    const running = await timed(
      'VM applied → Running',
      created,
      waitFor(
        `${VM} Running`,
        async () => {
          const current = await getVm();
          return current.status?.phase === 'Running' ? current : undefined;
        },
        READY_TIMEOUT_MS,
      ),
    );
    const first = running.status!.node!;
    const check = async (on: string) => {
      expect(await qemuPids()).toEqual({ [on]: [expect.any(Number)], [otherNode(on)]: [] });
      const verify = await verifyGuest(join(node(on).rootDir, STATE_DIR), VM);
      expect(verify.detail).toMatch(/^OK /);
      expect(verify.ok).toBe(true);
    };
    await check(first);

    let from = first;
    for (const [index, to] of [otherNode(first), first].entries()) {
      const stop = watchVm(to);
      const name = `${VM}-move-${index + 1}`;
      const started = Date.now();
      await apply({
        apiVersion: 'tern.dev/v1alpha1',
        kind: 'Migration',
        metadata: { name, namespace: 'default' },
        spec: { vmName: VM, targetNode: to },
      });
      const done = await waitFor(
        `Migration ${name} finished`,
        async () => {
          const migration = await getJson<Migration>('migration', name);
          return isTerminalMigrationPhase(migration.status?.phase) ? migration : undefined;
        },
        MIGRATION_TIMEOUT_MS,
      );
      timings.push([
        `migration ${from} → ${to} (created → Succeeded; downtime ${JSON.stringify(done.status?.downtime)})`,
        Date.now() - started,
      ]);
      expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
      // The operator reports the VM Running on `to` once it has seen the guest run there (its guest poll).
      await waitFor(
        `${VM} Running on ${to}`,
        async () => {
          const current = await getVm();
          expect(current.status?.node).toBe(to);
          return current.status?.phase === 'Running' ? current : undefined;
        },
        60_000,
      );
      timings.push([`migration ${from} → ${to}: created → VM Running on ${to}`, Date.now() - started]);
      const seen = await stop();
      const checking = Date.now();
      await check(to);
      timings.push([`memory check on ${to}`, Date.now() - checking]);
      // The watch saw the VM leave `from` for `to` once, and the daemons never both ran it.
      expect(seen.nodesSeen.filter(Boolean)).toEqual([from, to]);
      expect(seen.bothRunning).toEqual([]);
      from = to;
    }
  },
  READY_TIMEOUT_MS + 2 * MIGRATION_TIMEOUT_MS + 120_000,
);

/** Applies a test-guest VM whose kernel and initramfs are the shared copies on the nodes, and waits for Running. */
async function createVm(name: string): Promise<VirtualMachine> {
  const guest = await testGuestImages();
  await apply(
    testGuestVm(name, {
      ...guest,
      kernel: `${SHARED_IMAGES}/vmlinux`,
      initrd: `${SHARED_IMAGES}/initramfs.img`,
    }),
  );
  return waitFor(
    `${name} Running`,
    async () => {
      const current = await getVm(name);
      return current.status?.phase === 'Running' ? current : undefined;
    },
    READY_TIMEOUT_MS,
  );
}

/** Migrates `vm` to `to` unless it runs there, and waits until it runs there. */
async function moveTo(vm: string, to: string): Promise<void> {
  if ((await getVm(vm)).status?.node === to) return;
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: `${vm}-to-${to}-${Date.now()}`, namespace: 'default' },
    spec: { vmName: vm, targetNode: to },
  });
  await waitFor(
    `${vm} Running on ${to}`,
    async () => {
      const current = await getVm(vm);
      return current.status?.phase === 'Running' && current.status.node === to ? current : undefined;
    },
    MIGRATION_TIMEOUT_MS,
  );
}

/** The VM runs on `on` only, as exactly one QEMU, and its guest's memory check is OK. */
async function expectRunsOn(vm: string, on: string): Promise<number> {
  const pids = await qemuPids(vm);
  if (pids[on]?.length !== 1 || pids[otherNode(on)]?.length !== 0)
    throw new Error(`QEMU of ${vm}: ${JSON.stringify(pids)}, expected one on ${on}\n${await diagnose(vm)}`);
  const verify = await verifyGuest(join(node(on).rootDir, STATE_DIR), vm);
  expect(verify.detail).toMatch(/^OK /);
  expect(verify.ok).toBe(true);
  return pids[on]![0]!;
}

const leaseHolder = async (): Promise<string | undefined> =>
  (await getJson<{ spec?: { holderIdentity?: string } }>('lease', '-n', NAMESPACE, 'tern-operator')).spec
    ?.holderIdentity;

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    spec: { nodeName?: string; containers: { image: string }[] };
    status?: { containerStatuses?: { ready?: boolean }[] };
  }[];
}

/** Every Tern pod (operator and daemons, not the guard pods) runs `image` and is Ready, and no old one is left. */
async function allPodsReadyOn(image: string): Promise<PodList['items'] | undefined> {
  const pods = (await getJson<PodList>('pods', '-n', NAMESPACE)).items.filter((pod) =>
    /^tern-(operator|hypervisor-node)-/.test(pod.metadata.name),
  );
  const ready = pods.every(
    (pod) =>
      !pod.metadata.deletionTimestamp &&
      pod.spec.containers[0]!.image === image &&
      (pod.status?.containerStatuses ?? []).every((c) => c.ready) &&
      (pod.status?.containerStatuses ?? []).length > 0,
  );
  return ready && pods.length === 2 + cluster.nodes.length ? pods : undefined;
}

const bothHypervisorNodesReady = () =>
  waitFor(
    'both HypervisorNodes Ready',
    async () => {
      const list = await getJson<{ items: { metadata: { name: string }; status?: object }[] }>(
        'hypervisornodes',
      );
      const ready = list.items.filter((hvn) => condition(hvn, 'Ready')?.status === 'True');
      return ready.length === cluster.nodes.length ? ready : undefined;
    },
    READY_TIMEOUT_MS,
  );

/**
 * The next chart version: this chart, version bumped, with a printer column added to the VirtualMachine CRD (what
 * a new release's CRD change looks like to `helm upgrade`).
 */
async function nextChart(): Promise<string> {
  const dir = join(work, 'chart-next');
  await cp(CHART, dir, { recursive: true });
  const chartYaml = parse(await readFile(join(dir, 'Chart.yaml'), 'utf8')) as { version: string };
  await writeFile(join(dir, 'Chart.yaml'), stringify({ ...chartYaml, version: `${chartYaml.version}-next` }));
  const crdFile = join(dir, 'files', 'crds', 'tern.dev_virtualmachines.yaml');
  const crd = parse(await readFile(crdFile, 'utf8')) as {
    spec: { versions: { additionalPrinterColumns?: object[] }[] };
  };
  crd.spec.versions[0]!.additionalPrinterColumns!.push({
    name: NEXT_COLUMN,
    type: 'string',
    jsonPath: '.metadata.uid',
    priority: 1,
  });
  await writeFile(crdFile, stringify(crd, { lineWidth: 0 }));
  return dir;
}

test(
  'helm upgrade to a new image tag and chart version while two VMs run and a Migration is in flight keeps the guests',
  async () => {
    if (!installed) throw new Error('the install did not come up (see the first test)');
    const chart = await nextChart();
    // The same image under a new tag in each node's containerd: a new image reference, so every pod restarts.
    for (const n of cluster.nodes) {
      await run('ctr', [
        ...['--address', n.containerdSocket, '--namespace', 'k8s.io', 'images', 'tag', '--force'],
        ...[image.reference, image.reference.replace(/:[^:/]+$/, `:${NEXT_TAG}`)],
      ]);
    }
    const vm1 = await getVm();
    const from = vm1.status!.node!;
    const to = otherNode(from);
    const vm2 = await createVm(VM2);
    const vm2Node = vm2.status!.node!;
    const pidsBefore = { [VM]: await expectRunsOn(VM, from), [VM2]: await expectRunsOn(VM2, vm2Node) };
    const holderBefore = await leaseHolder();
    expect(holderBefore).toMatch(/^tern-operator-/);

    const stop = watchVm(to);
    const migration = `${VM}-during-upgrade`;
    await apply({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name: migration, namespace: 'default' },
      spec: { vmName: VM, targetNode: to },
    });
    const inFlight = await waitFor(
      `Migration ${migration} in flight`,
      async () => {
        const phase = (await getJson<Migration>('migration', migration)).status?.phase;
        return phase !== undefined && !['Pending', 'Scheduling'].includes(phase) ? phase : undefined;
      },
      MIGRATION_TIMEOUT_MS,
    );
    const started = Date.now();
    await helm(
      ...['upgrade', 'tern', chart, '--namespace', NAMESPACE, '--reuse-values'],
      ...['--kubeconfig', cluster.controlPlane.kubeconfigPath],
      ...['--set', 'image.digest=', '--set', `image.tag=${NEXT_TAG}`],
    );
    timings.push(['helm upgrade (the command)', Date.now() - started]);
    console.log(`helm upgrade started with Migration ${migration} in phase ${inFlight}`);

    const ended = waitFor(
      `Migration ${migration} ended`,
      async () => {
        const current = await getJson<Migration>('migration', migration);
        return isTerminalMigrationPhase(current.status?.phase) ? current : undefined;
      },
      READY_TIMEOUT_MS + MIGRATION_TIMEOUT_MS,
    ).then((done) => {
      timings.push([
        `helm upgrade → Migration in flight ended (${done.status?.phase})`,
        Date.now() - started,
      ]);
      return done;
    });
    await timed(
      'helm upgrade → every pod Ready on the new image',
      started,
      waitFor(
        'every Tern pod Ready on the new image',
        () => allPodsReadyOn(`tern:${NEXT_TAG}`),
        READY_TIMEOUT_MS,
      ),
    );
    await timed('helm upgrade → both HypervisorNodes Ready', started, bothHypervisorNodesReady());
    const done = await ended;
    // Ended cleanly: Succeeded, or Failed/Aborted with the reason said.
    if (done.status?.phase !== 'Succeeded')
      expect(done.status?.failureReason ?? done.status?.message).toBeTruthy();
    const on = done.status?.phase === 'Succeeded' ? to : from;
    await waitFor(
      `${VM} Running on ${on}`,
      async () => {
        const current = await getVm();
        return current.status?.phase === 'Running' && current.status.node === on ? current : undefined;
      },
      MIGRATION_TIMEOUT_MS,
    );
    timings.push([`helm upgrade → ${VM} Running again`, Date.now() - started]);
    const seen = await stop();
    console.log(
      `Migration ${migration}: ${done.status?.phase} ${done.status?.failureReason ?? ''} ${done.status?.message ?? ''}`,
    );
    expect(seen.bothRunning).toEqual([]);
    expect(seen.nodesSeen.filter(Boolean)).toEqual(on === from ? [from] : [from, to]);

    // The guests ran on through the restarts: the same QEMU processes (a new one only where the migration moved
    // the guest), each memory check OK.
    const vm1Pid = await expectRunsOn(VM, on);
    if (on === from) expect(vm1Pid).toBe(pidsBefore[VM]);
    const vm2Pid = await expectRunsOn(VM2, vm2Node);
    if (vm2Pid !== pidsBefore[VM2])
      throw new Error(`${VM2} runs as QEMU ${vm2Pid}, not ${pidsBefore[VM2]}:\n${await diagnose(VM2)}`);
    // The operator's leadership moves to one of the new pods (once the last old leader's Lease has run out, when it
    // did not release it).
    const holder = await timed(
      'helm upgrade → operator Lease held by a new pod',
      started,
      waitFor(
        'the operator Lease held by a new pod',
        async () => {
          const current = await leaseHolder();
          const operatorPods = (await getJson<PodList>('pods', '-n', NAMESPACE)).items
            .filter((pod) => !pod.metadata.deletionTimestamp)
            .map((pod) => pod.metadata.name)
            .filter((name) => name.startsWith('tern-operator-'));
          return current !== undefined && operatorPods.includes(current) ? current : undefined;
        },
        READY_TIMEOUT_MS,
      ),
    );
    expect(holder).not.toBe(holderBefore);
    // The new chart's CRD change is on the cluster.
    const crd = await getJson<{
      spec: { versions: { additionalPrinterColumns?: { name: string }[] }[] };
    }>('crd', 'virtualmachines.tern.dev');
    expect(crd.spec.versions[0]!.additionalPrinterColumns!.map((c) => c.name)).toContain(NEXT_COLUMN);
  },
  READY_TIMEOUT_MS * 2 + MIGRATION_TIMEOUT_MS * 3,
);

test('kubectl drain of a node with 3 VMs completes once they have been live-migrated away; uncordon makes it eligible', async () => {
  if (!installed) throw new Error('the install did not come up (see the first test)');
  // The drain evicts an operator replica too (the chart spreads them over the nodes; its disruption budget evicts
  // them one at a time): the apiserver's webhook calls for the guard pods must go to a replica that stays
  // (operator.shutdownDelaySeconds), or the drain fails. It drains a node that runs one.
  const operatorPods = await getJson<{ items: { metadata: { name: string }; spec: { nodeName: string } }[] }>(
    ...['pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=tern-operator'],
  );
  const from = cluster.nodes.find((n) =>
    operatorPods.items.some((pod) => pod.spec.nodeName === n.name),
  )!.name;
  const to = otherNode(from);
  const evictedOperator = operatorPods.items.find((pod) => pod.spec.nodeName === from)!;
  const vms = [VM, VM2, VM3];
  await createVm(VM3);
  for (const vm of vms) await moveTo(vm, from);
  const stops = vms.map((vm) => watchVm(to, vm));
  const started = Date.now();
  const drained = await cluster.controlPlane.kubectl([
    ...['drain', from, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=300s'],
  ]);
  timings.push([`kubectl drain ${from} (3 VMs): start → complete`, Date.now() - started]);
  console.log(`kubectl drain ${from}:\n${drained.stdout}${drained.stderr}`);
  if (drained.code !== 0) {
    await Promise.all(stops.map((stop) => stop()));
    throw new Error(`kubectl drain failed:\n${drained.stderr}\n${await podLogs()}`);
  }
  for (const vm of vms)
    expect(drained.stderr).toMatch(
      new RegExp(`VirtualMachine default/${vm} is being live-migrated off node ${from}`),
    );
  expect(drained.stdout).toContain(`pod/${evictedOperator.metadata.name} evicted`);
  for (const vm of vms) {
    await waitFor(
      `${vm} Running on ${to}`,
      async () => {
        const current = await getVm(vm);
        return current.status?.phase === 'Running' && current.status.node === to ? current : undefined;
      },
      60_000,
    );
  }
  for (const [index, vm] of vms.entries()) {
    const seen = await stops[index]!();
    await expectRunsOn(vm, to);
    expect(seen.nodesSeen.filter(Boolean)).toEqual([from, to]);
    expect(seen.bothRunning).toEqual([]);
  }
  // Node and HypervisorNode are the same machine: the drain's cordon shows on both, and so does the uncordon.
  expect(
    (await getJson<{ spec?: { unschedulable?: boolean } }>('hypervisornode', from)).spec?.unschedulable,
  ).toBe(true);
  await kubectl('uncordon', from);
  await waitFor(
    `HypervisorNode ${from} eligible again`,
    async () => {
      const spec = (
        await getJson<{ spec?: { unschedulable?: boolean; drain?: boolean } }>('hypervisornode', from)
      ).spec;
      return spec?.unschedulable || spec?.drain ? undefined : true;
    },
    60_000,
  );
}, 600_000);

test(
  'helm uninstall removes the operator and the daemons and leaves the CRDs, the VMs and their guests running',
  async () => {
    if (!installed) throw new Error('the install did not come up (see the first test)');
    const vms = [VM, VM2, VM3];
    const before = new Map<string, Record<string, number[]>>();
    for (const vm of vms) before.set(vm, await qemuPids(vm));
    const started = Date.now();
    await helm(
      'uninstall',
      'tern',
      '--namespace',
      NAMESPACE,
      '--kubeconfig',
      cluster.controlPlane.kubeconfigPath,
    );
    await waitFor(
      'every Tern pod gone',
      async () => {
        const pods = (await getJson<PodList>('pods', '-n', NAMESPACE)).items.filter((pod) =>
          /^tern-(operator|hypervisor-node)-/.test(pod.metadata.name),
        );
        return pods.length === 0 ? true : undefined;
      },
      READY_TIMEOUT_MS,
    );
    timings.push(['helm uninstall → every Tern pod gone', Date.now() - started]);
    const crds = await getJson<{ items: { metadata: { name: string } }[] }>('crds');
    expect(
      crds.items
        .map((crd) => crd.metadata.name)
        .filter((name) => name.endsWith('.tern.dev'))
        .sort(),
    ).toEqual([
      'hypervisornodes.tern.dev',
      'migrationpolicies.tern.dev',
      'migrations.tern.dev',
      'virtualmachines.tern.dev',
    ]);
    for (const vm of vms) {
      expect((await getVm(vm)).metadata?.name).toBe(vm);
      // The same QEMU, still running: no daemon pod is left to hold it, the guest is in cgroups of its own.
      expect(await qemuPids(vm)).toEqual(before.get(vm));
    }
  },
  READY_TIMEOUT_MS + 60_000,
);
