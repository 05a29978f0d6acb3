import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import {
  issueCertificate,
  loadCertificateAuthority,
  parseCertificateRequest,
  type CertificateAuthority,
} from '../../../pki/index.js';
import type { CsrApi } from './csr-api.js';
import { NodeIdentity, renewalTime } from './node-identity.js';

let dir: string;
let ca: CertificateAuthority;
let caPem: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tern-node-identity-'));
  execFileSync('openssl', [
    ...['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ...['-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', '/CN=test-ca', '-days', '1'],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
  ]);
  caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  ca = loadCertificateAuthority(caPem, readFileSync(join(dir, 'ca.key'), 'utf8'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A signer in memory: issues each request for `lifetimeMs` from the (fake) clock, or fails while `down`. */
function fakeSigner(clock: { now: number }, lifetimeMs: number) {
  const requests: string[] = [];
  const state = { down: false, refuse: undefined as string | undefined, lifetimeMs };
  const api: CsrApi = {
    create: async ({ pem }) => {
      if (state.down) throw new Error('apiserver unreachable');
      requests.push(pem);
      return `csr-${requests.length}`;
    },
    read: async (name) => {
      if (state.refuse) return { refused: state.refuse };
      const request = parseCertificateRequest(requests[Number(name.slice(4)) - 1]!);
      const certificate = issueCertificate(ca, {
        names: { commonName: 'node-a', dnsNames: request.dnsNames, uris: request.uris, ips: request.ips },
        publicKeyInfo: request.publicKeyInfo,
        notBefore: new Date(clock.now),
        notAfter: new Date(clock.now + state.lifetimeMs),
        usages: ['serverAuth'],
      });
      return { certificate };
    },
  };
  return { api, requests, state };
}

const options = (api: CsrApi, stateDir: string, clock: { now: number }) => ({
  api,
  nodeName: 'node-a',
  ips: ['10.0.0.2'],
  caPem,
  stateDir,
  lifetimeSeconds: 3600,
  answerTimeoutMs: 10_000,
  logger: pino({ level: 'silent' }),
  pollMs: 1,
  now: () => clock.now,
});

test('renewal is due once two thirds of the lifetime have passed', () => {
  expect(renewalTime({ notBefore: new Date(0), notAfter: new Date(3000) })).toBe(2000);
});

test('the first certificate is requested and stored 0600; a restart serves the stored one without a request', async () => {
  const clock = { now: Date.now() };
  const signer = fakeSigner(clock, 3_600_000);
  const stateDir = mkdtempSync(join(dir, 'state-'));
  const first = new NodeIdentity(options(signer.api, stateDir, clock));
  const identity = await first.start();
  await first.stop();
  expect(signer.requests).toHaveLength(1);
  const cert = new X509Certificate(identity.certificatePem);
  expect(cert.subjectAltName).toBe('DNS:node-a, URI:spiffe://tern.dev/node/node-a, IP Address:10.0.0.2');
  expect(statSync(join(stateDir, 'identity', 'node.key')).mode & 0o777).toBe(0o600);

  const restarted = new NodeIdentity(options(signer.api, stateDir, clock));
  expect((await restarted.start()).certificatePem).toBe(identity.certificatePem);
  await restarted.stop();
  expect(signer.requests).toHaveLength(1);
});

test('a refusal ends the start with its reason; a certificate from another CA is not served', async () => {
  const clock = { now: Date.now() };
  const signer = fakeSigner(clock, 3_600_000);
  signer.state.refuse = 'Denied: not your node';
  const identity = new NodeIdentity(options(signer.api, mkdtempSync(join(dir, 'state-')), clock));
  await expect(identity.start()).rejects.toThrow('certificate request csr-1 refused: Denied: not your node');

  const other = new NodeIdentity({
    ...options(fakeSigner(clock, 3_600_000).api, mkdtempSync(join(dir, 'state-')), clock),
    caPem: otherCa(),
  });
  await expect(other.start()).rejects.toThrow('not signed by the CA of --tls-ca');
});

function otherCa(): string {
  execFileSync('openssl', [
    ...['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ...[
      '-keyout',
      join(dir, 'other.key'),
      '-out',
      join(dir, 'other.crt'),
      '-subj',
      '/CN=other-ca',
      '-days',
      '1',
    ],
    ...['-addext', 'basicConstraints=critical,CA:TRUE'],
  ]);
  return readFileSync(join(dir, 'other.crt'), 'utf8');
}

test('the certificate is renewed after 2/3 of its lifetime; a failed renewal keeps the old one serving and is retried', async () => {
  const clock = { now: Date.now() };
  // Real seconds-long lifetimes, since the renewal timer runs on real time (1.5 s: renewal after 1 s).
  const signer = fakeSigner(clock, 1_500);
  const identity = new NodeIdentity({
    ...options(signer.api, mkdtempSync(join(dir, 'state-')), clock),
    now: Date.now,
  });
  clock.now = Date.now();
  const rotated: string[] = [];
  identity.onRotate((next) => rotated.push(next.certificatePem));
  const first = await identity.start();
  signer.state.down = true;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  // Due but failing: still the first certificate.
  expect(identity.identity.certificatePem).toBe(first.certificatePem);
  expect(rotated).toEqual([]);
  clock.now = Date.now();
  signer.state.lifetimeMs = 3_600_000;
  signer.state.down = false;
  for (let i = 0; i < 100 && rotated.length === 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  await identity.stop();
  expect(rotated).toHaveLength(1);
  expect(identity.identity.certificatePem).toBe(rotated[0]);
  expect(rotated[0]).not.toBe(first.certificatePem);
});
