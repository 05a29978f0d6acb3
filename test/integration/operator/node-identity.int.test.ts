// Per-node identities through the Kubernetes CSR API (docs/install.md "Node identities"), on a real kube-apiserver
// with the chart's RBAC and admission policies (nodeIdentity.source csr), the operator and the daemon running under
// their ServiceAccounts' tokens:
// a daemon whose kubeconfig holds a token bound to its pod on node-a obtains node-a's certificate from the running
// operator (signer tern.dev/hypervisor-node) and serves with it, and the operator's client reaches it as node-a
// only. Requests the operator must deny: a pod on node-a asking for node-b's name, a request naming the operator's
// identity, a token bound to no pod, a token of another ServiceAccount. No kubelet runs: the Pods are objects with
// spec.nodeName, and the tokens come from the TokenRequest API bound to them, as the kubelet would mount them.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { eventually } from '../../harness/eventually.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import { helm, kubectl, tokenKubeconfig } from '../../helm/chart-tools.js';
import { DaemonClientPool } from '../../../operator/src/daemon/client-pool.js';
import { UNFENCED } from '../../../operator/src/daemon/fencing.js';
import { kubeCsrApi, type CsrApi } from '../../../hypervisor-node/src/identity/csr-api.js';
import { NodeIdentity } from '../../../hypervisor-node/src/identity/node-identity.js';
import { createCertificateRequest, NODE_SIGNER_NAME, nodeUri, OPERATOR_URI } from '../../../pki/index.js';

const NS = 'tern-system';
const DAEMON_SA = 'tern-hypervisor-node';
const CHART = fileURLToPath(new URL('../../../helm/tern', import.meta.url));

let cp: ControlPlane;
let dir: string;
let certs: DevCerts;
let operator: OperatorProcess | undefined;
let daemon: DaemonProcess | undefined;
const logger = pino({ level: 'silent' });

/** The CSR API as the holder of a token (bound to `pod` when given) of ServiceAccount `account` sees it. */
async function csrApiAs(account: string, pod?: string): Promise<CsrApi> {
  const path = await tokenKubeconfig(cp, join(dir, `${account}-${pod ?? 'unbound'}.kubeconfig`), {
    namespace: NS,
    name: account,
    ...(pod ? { pod } : {}),
  });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return kubeCsrApi(kubeConfig);
}

/** Requests a certificate for node `nodeName` the way the daemon does; resolves with the error it ends with. */
async function refusal(api: CsrApi, nodeName: string): Promise<string> {
  const identity = new NodeIdentity({
    api,
    nodeName,
    ips: [],
    caPem: readFileSync(certs.ca.cert, 'utf8'),
    stateDir: mkdtempSync(join(dir, 'state-')),
    lifetimeSeconds: 3600,
    answerTimeoutMs: 30_000,
    logger,
    pollMs: 200,
  });
  const error = await identity.start().then(
    async () => {
      await identity.stop();
      return undefined;
    },
    (e: unknown) => (e as Error).message,
  );
  if (error === undefined) throw new Error(`a certificate for ${nodeName} was issued`);
  return error;
}

/** Creates a raw request with these names; resolves with the answer once the operator gave one. */
async function answerTo(api: CsrApi, names: { commonName: string; dnsNames: string[]; uris: string[] }) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = await api.create({
    generateName: 'tern-node-raw-',
    pem: createCertificateRequest({ ...names, ips: [] }, privateKey),
    signerName: NODE_SIGNER_NAME,
    expirationSeconds: 3600,
  });
  return eventually(`an answer to ${name}`, async () => {
    const answer = await api.read(name);
    return answer.refused || answer.certificate ? answer : undefined;
  });
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'node-identity' });
  dir = mkdtempSync(join(tmpdir(), 'tni-'));
  certs = generateDevCerts(join(dir, 'certs'), []);
  const pod = (name: string, node: string, account: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: { nodeName: node, serviceAccountName: account, containers: [{ name: 'c', image: 'tern:test' }] },
  });
  const objects = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'other', namespace: NS } },
    pod('daemon-a', 'node-a', DAEMON_SA),
    pod('daemon-b', 'node-b', DAEMON_SA),
    pod('other-a', 'node-a', 'other'),
    // Another ServiceAccount that may make the same CSR calls as the daemons.
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'other-node-certificate' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'tern-hypervisor-node-node-certificate',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'other', namespace: NS }],
    },
  ];
  // The chart with nodeIdentity.source csr: CRDs, ServiceAccounts, RBAC, admission policies (nothing runs its
  // workloads: the daemon and the operator below are processes with their ServiceAccounts' tokens).
  await kubectl(cp, ['create', 'namespace', NS]);
  await kubectl(
    cp,
    ['apply', '-f', '-'],
    await helm(
      'template',
      'tern',
      CHART,
      `--namespace=${NS}`,
      '--include-crds',
      '--set=nodeIdentity.source=csr',
    ),
  );
  await kubectl(cp, ['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  // The Nodes with their addresses (status is a subresource: written on its own).
  for (const [node, ip] of [
    ['node-a', '127.0.0.1'],
    ['node-b', '127.0.0.2'],
  ] as const) {
    await kubectl(
      cp,
      ['create', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }),
    );
    await kubectl(cp, [
      'patch',
      'node',
      node,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: ip }] } }),
    ]);
  }
  const operatorKubeconfig = await tokenKubeconfig(cp, join(dir, 'operator.kubeconfig'), {
    namespace: NS,
    name: 'tern-operator',
  });
  operator = await startOperatorProcess([
    ...['--kubeconfig', operatorKubeconfig, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--node-lease-namespace', NS],
    ...['--node-signer-ca-cert', certs.ca.cert, '--node-signer-ca-key', certs.ca.key],
    ...['--node-signer-service-account', `${NS}/${DAEMON_SA}`],
  ]);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await operator?.stop();
  if (dir) {
    await killGuestsIn(join(dir, 's'));
    rmSync(dir, { recursive: true, force: true });
  }
  await cp?.stop();
}, 60_000);

test("the daemon on node-a gets node-a's certificate from the operator, and the operator reaches it as node-a only", async () => {
  const stateDir = join(dir, 's');
  const images = join(dir, 'images');
  mkdirSync(stateDir);
  mkdirSync(images);
  const kubeconfig = await tokenKubeconfig(cp, join(dir, 'daemon-a.kubeconfig'), {
    namespace: NS,
    name: DAEMON_SA,
    pod: 'daemon-a',
  });
  daemon = await startDaemonProcess([
    ...['--node-name', 'node-a', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-from-csr', '--tls-ca', certs.ca.cert, '--migration-address', '127.0.0.1'],
    ...['--state-dir', stateDir, '--shared-image-root', images, '--accelerator', 'tcg', '--network', 'user'],
    ...['--kubeconfig', kubeconfig, '--lease-namespace', NS],
  ]);

  // The daemon's key and certificate: 0600, node-a's names only, server authentication only, from the Tern CA.
  const keyFile = join(stateDir, 'identity', 'node.key');
  expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  const cert = new X509Certificate(readFileSync(join(stateDir, 'identity', 'node.crt')));
  expect(cert.subject).toBe('CN=node-a');
  expect(cert.subjectAltName).toBe(`DNS:node-a, URI:${nodeUri('node-a')}, IP Address:127.0.0.1`);
  expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  expect(cert.verify(new X509Certificate(readFileSync(certs.ca.cert)).publicKey)).toBe(true);
  const csrs = JSON.parse(await kubectl(cp, ['get', 'csr', '-o', 'json'])) as {
    items: {
      spec: { signerName: string; extra?: Record<string, string[]> };
      status: { conditions?: { type: string; reason: string }[] };
    }[];
  };
  const issued = csrs.items.filter((csr) => csr.spec.signerName === NODE_SIGNER_NAME);
  expect(issued).toHaveLength(1);
  // The node the apiserver recorded from the pod-bound token, which is what the operator judged.
  expect(issued[0]!.spec.extra?.['authentication.kubernetes.io/node-name']).toEqual(['node-a']);
  expect(issued[0]!.status.conditions).toEqual([
    expect.objectContaining({ type: 'Approved', reason: 'TernNodeIdentity' }),
  ]);

  // The operator's daemon client (it names the node it dials as the TLS target) reaches node-a's daemon...
  const pool = new DaemonClientPool({
    tls: { caFile: certs.ca.cert, certFile: certs.operator.cert, keyFile: certs.operator.key },
    callTimeoutMs: 5_000,
    fencing: UNFENCED,
  });
  try {
    const endpoint = `127.0.0.1:${daemon.grpcPort}`;
    expect(await pool.guestClient('node-a', endpoint).listGuests()).toEqual([]);
    // ...and refuses it when it is told that endpoint is node-b's.
    await expect(pool.guestClient('node-b', endpoint).listGuests()).rejects.toThrow(
      /Hostname\/IP does not match certificate's altnames|node-b/,
    );
  } finally {
    pool.close();
  }
  // Neither program was refused a call: the chart's RBAC and admission policies allow what they did.
  const refused = (logs: object[]) => logs.map((l) => JSON.stringify(l)).filter((l) => /forbidden/i.test(l));
  expect(refused(operator!.logs)).toEqual([]);
  expect(refused(daemon.logs)).toEqual([]);
}, 120_000);

test("a pod on node-a asking for node-b's name is denied, with the reason", async () => {
  const error = await refusal(await csrApiAs(DAEMON_SA, 'daemon-a'), 'node-b');
  expect(error).toMatch(
    /refused: Denied: the daemon pod daemon-a on node node-a asked for subject CN=node-b; it may have only CN=node-a/,
  );
});

test("requests naming the operator's identity are denied", async () => {
  const api = await csrApiAs(DAEMON_SA, 'daemon-a');
  const uri = await answerTo(api, { commonName: 'node-a', dnsNames: ['node-a'], uris: [OPERATOR_URI] });
  expect(uri.refused).toMatch(
    /Denied: .*asked for names DNS:node-a, URI:spiffe:\/\/tern.dev\/operator; it may have exactly/,
  );
  const cn = await answerTo(api, {
    commonName: 'tern-operator',
    dnsNames: ['node-a'],
    uris: [nodeUri('node-a')],
  });
  expect(cn.refused).toMatch(/Denied: .*asked for subject CN=tern-operator; it may have only CN=node-a/);
});

test('a token bound to no pod, and a token of another ServiceAccount, get no certificate', async () => {
  expect(await refusal(await csrApiAs(DAEMON_SA), 'node-a')).toMatch(
    /Denied: the requester's token names no node .*bound to its pod/,
  );
  expect(await refusal(await csrApiAs('other', 'other-a'), 'node-a')).toMatch(
    /Denied: requested by system:serviceaccount:tern-system:other, not by the hypervisor-node daemons' ServiceAccount/,
  );
});

test("the daemon on node-b gets node-b's certificate, not node-a's address", async () => {
  const api = await csrApiAs(DAEMON_SA, 'daemon-b');
  const answer = await answerTo(api, {
    commonName: 'node-b',
    dnsNames: ['node-b'],
    uris: [nodeUri('node-b')],
  });
  expect(new X509Certificate(answer.certificate!).subject).toBe('CN=node-b');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = await api.create({
    generateName: 'tern-node-raw-',
    pem: createCertificateRequest(
      { commonName: 'node-b', dnsNames: ['node-b'], uris: [nodeUri('node-b')], ips: ['127.0.0.1'] },
      privateKey,
    ),
    signerName: NODE_SIGNER_NAME,
    expirationSeconds: 3600,
  });
  const refused = await eventually('the answer', async () => (await api.read(name)).refused);
  expect(refused).toMatch(/IP addresses 127.0.0.1, which are not Node node-b's \(127.0.0.2\)/);
});
