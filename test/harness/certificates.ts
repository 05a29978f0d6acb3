// The test PKI, made with openssl: the throw-away control plane's certificates, and the development set of Tern's
// own mTLS (one CA, the operator's client certificate, a server/peer certificate per hypervisor node) that the
// tests, the local cluster and `hack/gen-certs.ts` use. ECDSA P-256 keys throughout: they are generated in
// milliseconds, unlike RSA keys, which keeps a control plane's start fast. One `openssl req -x509` per certificate.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DNS1123_LABEL } from '../../crds/index.js';

const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
const P256 = 'ec_paramgen_curve:P-256';

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

export interface CertPair {
  cert: string;
  key: string;
}

/** A new key (mode 0600) and a certificate for it, self-signed or signed by `signer`. */
function newCertificate(o: {
  pair: CertPair;
  subject: string;
  extensions: string[];
  days: number;
  signer?: CertPair;
}): void {
  const flags: [string, string][] = [
    ['-newkey', 'ec'],
    ['-pkeyopt', P256],
    ['-keyout', o.pair.key],
    ['-out', o.pair.cert],
    ['-subj', o.subject],
    ['-days', String(o.days)],
    ...o.extensions.map((e): [string, string] => ['-addext', e]),
    ...(o.signer
      ? ([
          ['-CA', o.signer.cert],
          ['-CAkey', o.signer.key],
        ] as [string, string][])
      : []),
  ];
  openssl(['req', '-x509', '-nodes', ...flags.flat()]);
  chmodSync(o.pair.key, 0o600);
}

// --- the throw-away control plane ---

/** Paths of the PEM files a throw-away control plane needs, all in one directory. */
export interface ControlPlaneCertificates {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

const LEAF_EXTENSIONS = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'];

/**
 * One CA signs both the serving certificate (127.0.0.1, localhost and `extraIps`) and the admin client certificate
 * (CN=admin, O=system:masters); kube-apiserver trusts it as --client-ca-file. The service-account signing key is
 * a separate key pair. Valid for a week.
 */
export function generateCertificates(dir: string, extraIps: string[] = []): ControlPlaneCertificates {
  const file = (name: string): string => join(dir, name);
  const c: ControlPlaneCertificates = {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    servingCert: file('apiserver.crt'),
    servingKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    serviceAccountKey: file('sa.key'),
    serviceAccountPublicKey: file('sa.pub'),
  };
  const ca = { cert: c.caCert, key: c.caKey };
  newCertificate({ pair: ca, subject: '/CN=tern-test-ca', extensions: CA_EXTENSIONS, days: 7 });
  newCertificate({
    pair: { cert: c.servingCert, key: c.servingKey },
    subject: '/CN=localhost',
    extensions: [
      ...LEAF_EXTENSIONS,
      `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...extraIps.map((ip) => `IP:${ip}`)].join(',')}`,
      'extendedKeyUsage=serverAuth',
    ],
    days: 7,
    signer: ca,
  });
  newCertificate({
    pair: { cert: c.adminCert, key: c.adminKey },
    subject: '/O=system:masters/CN=admin',
    extensions: [...LEAF_EXTENSIONS, 'extendedKeyUsage=clientAuth'],
    days: 7,
    signer: ca,
  });
  newServiceAccountKeyPair(c.serviceAccountKey, c.serviceAccountPublicKey);
  return c;
}

/**
 * A leaf certificate (mode-0600 key) signed by a throw-away control plane's CA, valid for a week: a client identity
 * (subject /O=group/CN=user) and, with `ips`/`dnsNames`, a serving certificate for those names too.
 */
export function issueControlPlaneLeaf(o: {
  ca: CertPair;
  pair: CertPair;
  subject: string;
  ips?: string[];
  dnsNames?: string[];
}): CertPair {
  const names = [...(o.dnsNames ?? []).map((n) => `DNS:${n}`), ...(o.ips ?? []).map((ip) => `IP:${ip}`)];
  newCertificate({
    pair: o.pair,
    subject: o.subject,
    extensions: [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${names.length > 0 ? 'serverAuth,clientAuth' : 'clientAuth'}`,
      ...(names.length > 0 ? [`subjectAltName=${names.join(',')}`] : []),
    ],
    days: 7,
    signer: o.ca,
  });
  return o.pair;
}

function newServiceAccountKeyPair(privateKey: string, publicKey: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', P256, '-out', privateKey]);
  openssl(['pkey', '-in', privateKey, '-pubout', '-out', publicKey]);
}

// --- Tern's development PKI ---

/** Common name of the operator's client certificate; the daemons' default allowed control identity. */
export const OPERATOR_COMMON_NAME = 'tern-operator';
export const OPERATOR_URI = 'spiffe://tern.dev/operator';
export const nodeUri = (nodeName: string): string => `spiffe://tern.dev/node/${nodeName}`;

export interface NodeCertRequest {
  name: string;
  /** Extra IP SANs besides 127.0.0.1 (e.g. the node's address in its network namespace). */
  ips?: string[];
}

export interface DevCerts {
  ca: CertPair;
  operator: CertPair;
  nodes: Record<string, CertPair>;
}

const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

interface LeafRequest {
  commonName: string;
  /** In the X509Certificate.subjectAltName spelling: 'URI:…', 'DNS:…', 'IP Address:…'. */
  altNames: string[];
  extendedKeyUsage: string;
}

function ensureCa(pair: CertPair): void {
  if (existsSync(pair.cert) && existsSync(pair.key)) {
    const ca = new X509Certificate(readFileSync(pair.cert));
    if (ca.ca && Date.parse(ca.validTo) - Date.now() > RENEW_BEFORE_MS) return;
  }
  newCertificate({ pair, subject: '/CN=tern-dev-ca', extensions: CA_EXTENSIONS, days: 3650 });
}

function leafIsCurrent(pair: CertPair, ca: X509Certificate, request: LeafRequest): boolean {
  if (!existsSync(pair.cert) || !existsSync(pair.key)) return false;
  const cert = new X509Certificate(readFileSync(pair.cert));
  const names = (cert.subjectAltName ?? '').split(', ').sort();
  return (
    cert.verify(ca.publicKey) &&
    cert.subject === `CN=${request.commonName}` &&
    Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS &&
    JSON.stringify(names) === JSON.stringify([...request.altNames].sort())
  );
}

function issueLeaf(ca: CertPair, pair: CertPair, request: LeafRequest): void {
  if (leafIsCurrent(pair, new X509Certificate(readFileSync(ca.cert)), request)) return;
  newCertificate({
    pair,
    subject: `/CN=${request.commonName}`,
    extensions: [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${request.extendedKeyUsage}`,
      `subjectAltName=${request.altNames.map((name) => name.replace(/^IP Address:/, 'IP:')).join(',')}`,
    ],
    days: 825,
    signer: ca,
  });
}

/**
 * Creates (or keeps) the CA, the operator certificate and one certificate per node under dir. Idempotent: the CA
 * is kept when present; a leaf is re-issued only when it is missing, not signed by the CA, expires within 30
 * days, or its names differ from what was asked for.
 */
export function generateDevCerts(dir: string, nodes: NodeCertRequest[]): DevCerts {
  for (const node of nodes) {
    if (!DNS1123_LABEL.test(node.name))
      throw new Error(`node name ${JSON.stringify(node.name)} is not a DNS-1123 label`);
    for (const ip of node.ips ?? [])
      if (isIP(ip) === 0) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  }
  mkdirSync(dir, { recursive: true });
  const pair = (base: string): CertPair => ({
    cert: join(dir, `${base}.crt`),
    key: join(dir, `${base}.key`),
  });
  const ca = pair('ca');
  ensureCa(ca);

  const operator = pair('operator');
  issueLeaf(ca, operator, {
    commonName: OPERATOR_COMMON_NAME,
    altNames: [`URI:${OPERATOR_URI}`],
    extendedKeyUsage: 'clientAuth',
  });
  const issued: Record<string, CertPair> = {};
  for (const node of nodes) {
    const ips = [...new Set(['127.0.0.1', ...(node.ips ?? [])])];
    const leaf = pair(`node-${node.name}`);
    issued[node.name] = leaf;
    // Nodes serve the control API and dial each other for migration streams: server and client auth.
    issueLeaf(ca, leaf, {
      commonName: node.name,
      altNames: [
        `URI:${nodeUri(node.name)}`,
        `DNS:${node.name}`,
        'DNS:localhost',
        ...ips.map((ip) => `IP Address:${ip}`),
      ],
      extendedKeyUsage: 'serverAuth,clientAuth',
    });
  }
  return { ca, operator, nodes: issued };
}
