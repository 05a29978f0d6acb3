// Development PKI for the control and migration channels: one CA, the operator's client certificate (the only
// identity allowed to call the daemons' control API) and one server/peer certificate per hypervisor node.
//
//   npx tsx hack/gen-certs.ts --out .cache/certs --node node-a=10.0.0.2 --node node-b
//
// Idempotent: the CA is kept when present; a leaf is re-issued only when it is missing, not signed by the CA,
// expires within 30 days, or its names differ from what was asked for.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

/** Common name of the operator's client certificate; the daemons' default allowed control identity. */
export const OPERATOR_COMMON_NAME = 'tern-operator';
export const OPERATOR_URI = 'spiffe://tern.dev/operator';
export const nodeUri = (nodeName: string): string => `spiffe://tern.dev/node/${nodeName}`;

export interface NodeCertRequest {
  name: string;
  /** Extra IP SANs besides 127.0.0.1 (e.g. the node's address in its network namespace). */
  ips?: string[];
}

export interface CertPair {
  cert: string;
  key: string;
}

export interface DevCerts {
  ca: CertPair;
  operator: CertPair;
  nodes: Record<string, CertPair>;
}

const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

interface LeafRequest {
  commonName: string;
  /** In the X509Certificate.subjectAltName spelling: 'URI:…', 'DNS:…', 'IP Address:…'. */
  altNames: string[];
  extendedKeyUsage: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function ensureCa(pair: CertPair): void {
  if (existsSync(pair.cert) && existsSync(pair.key)) {
    const ca = new X509Certificate(readFileSync(pair.cert));
    if (ca.ca && Date.parse(ca.validTo) - Date.now() > RENEW_BEFORE_MS) return;
  }
  // prettier-ignore
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', pair.key, '-out', pair.cert, '-days', '3650', '-subj', '/CN=tern-dev-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  chmodSync(pair.key, 0o600);
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
  const scratch = mkdtempSync(join(tmpdir(), 'tern-certs-'));
  try {
    const csr = join(scratch, 'leaf.csr');
    const extensions = join(scratch, 'leaf.ext');
    const subjectAltName = request.altNames.map((name) => name.replace(/^IP Address:/, 'IP:')).join(',');
    writeFileSync(
      extensions,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${request.extendedKeyUsage}`,
        `subjectAltName=${subjectAltName}`,
      ].join('\n') + '\n',
    );
    // prettier-ignore
    openssl([
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', pair.key, '-out', csr, '-subj', `/CN=${request.commonName}`,
    ]);
    chmodSync(pair.key, 0o600);
    const serial = `0x${execFileSync('openssl', ['rand', '-hex', '16']).toString().trim()}`;
    // prettier-ignore
    openssl([
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial,
      '-days', '825', '-sha256', '-extfile', extensions, '-out', pair.cert,
    ]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Creates (or keeps) the CA, the operator certificate and one certificate per node under dir. */
export function generateDevCerts(dir: string, nodes: NodeCertRequest[]): DevCerts {
  for (const node of nodes) {
    if (!DNS_LABEL.test(node.name))
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
    issued[node.name] = pair(`node-${node.name}`);
    // Nodes serve the control API and dial each other for migration streams: server and client auth.
    issueLeaf(ca, issued[node.name]!, {
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

function parseNodeArg(value: string, previous: NodeCertRequest[]): NodeCertRequest[] {
  const [name = '', ips] = value.split('=', 2);
  return [...previous, { name, ips: ips ? ips.split(',') : [] }];
}

function main(): void {
  const options = new Command()
    .description('Generate a development CA, the operator client certificate and node certificates')
    .requiredOption('--out <dir>', 'output directory')
    .option('--node <name[=ip,ip]>', 'a node certificate (repeatable)', parseNodeArg, [] as NodeCertRequest[])
    .parse()
    .opts<{ out: string; node: NodeCertRequest[] }>();
  const certs = generateDevCerts(resolve(options.out), options.node);
  console.log(JSON.stringify(certs, null, 2));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
