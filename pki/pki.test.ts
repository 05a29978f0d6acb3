import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateRequest,
  issueCertificate,
  loadCertificateAuthority,
  parseCertificateRequest,
} from './index.js';

let dir: string;
const openssl = (...args: string[]): string =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tern-pki-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const names = {
  commonName: 'node-a',
  dnsNames: ['node-a'],
  uris: ['spiffe://tern.dev/node/node-a'],
  ips: ['10.0.0.2', 'fd00::1:2'],
};

test('a request the daemon writes is one openssl reads and verifies, and one the signer reads back', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createCertificateRequest(names, privateKey);
  writeFileSync(join(dir, 'req.pem'), pem);
  const text = openssl('req', '-in', join(dir, 'req.pem'), '-noout', '-verify', '-text');
  expect(text).toContain('Subject: CN = node-a');
  expect(text).toMatch(
    /DNS:node-a, URI:spiffe:\/\/tern.dev\/node\/node-a, IP Address:10.0.0.2, IP Address:FD00:0:0:0:0:0:1:2/,
  );
  const parsed = parseCertificateRequest(pem);
  expect(parsed.subject).toEqual([{ oid: '2.5.4.3', value: 'node-a' }]);
  expect(parsed).toMatchObject({
    dnsNames: ['node-a'],
    uris: [names.uris[0]],
    ips: ['10.0.0.2', 'fd00::1:2'],
  });
});

test('requests openssl writes (RSA, several attributes, email SANs) are read, and a forged signature is refused', () => {
  const key = join(dir, 'rsa.key');
  const req = join(dir, 'rsa.csr');
  openssl(
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    req,
    '-subj',
    '/O=system:masters/CN=tern-operator',
    '-addext',
    'subjectAltName=email:a@b.c,URI:spiffe://tern.dev/operator',
  );
  const parsed = parseCertificateRequest(readFileSync(req, 'utf8'));
  expect(parsed.subject).toEqual([
    { oid: '2.5.4.10', value: 'system:masters' },
    { oid: '2.5.4.3', value: 'tern-operator' },
  ]);
  expect(parsed.uris).toEqual(['spiffe://tern.dev/operator']);
  expect(parsed.otherNames).toEqual([1]);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { privateKey: other } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const genuine = createCertificateRequest(names, privateKey);
  const forged = createCertificateRequest({ ...names, commonName: 'node-b' }, other);
  // node-b's request body under node-a's key: the signature no longer verifies.
  const der = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const spliced = Buffer.from(der(forged));
  const genuineKey = parseCertificateRequest(genuine).publicKeyInfo;
  const otherKey = parseCertificateRequest(forged).publicKeyInfo;
  spliced.set(genuineKey, spliced.indexOf(otherKey));
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${spliced.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  expect(() => parseCertificateRequest(pem)).toThrow('its signature does not verify');
  expect(() => parseCertificateRequest('junk')).toThrow('no CERTIFICATE REQUEST PEM block');
});

test.each(['ec', 'rsa'] as const)(
  'a certificate issued by a %s CA chains to it and carries exactly the names given',
  (type) => {
    const caKey = join(dir, `ca-${type}.key`);
    const caCert = join(dir, `ca-${type}.crt`);
    openssl(
      'req',
      '-x509',
      '-nodes',
      '-newkey',
      type === 'ec' ? 'ec' : 'rsa:2048',
      ...(type === 'ec' ? ['-pkeyopt', 'ec_paramgen_curve:P-256'] : []),
      '-keyout',
      caKey,
      '-out',
      caCert,
      '-subj',
      '/O=Tern/CN=tern-ca',
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
    const ca = loadCertificateAuthority(readFileSync(caCert, 'utf8'), readFileSync(caKey, 'utf8'));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const request = parseCertificateRequest(createCertificateRequest(names, privateKey));
    const notBefore = new Date('2026-01-01T00:00:00Z');
    const pem = issueCertificate(ca, {
      names,
      publicKeyInfo: request.publicKeyInfo,
      notBefore,
      notAfter: new Date('2055-01-01T00:00:00Z'),
      usages: ['serverAuth'],
    });
    const cert = new X509Certificate(pem);
    expect(cert.verify(ca.certificate.publicKey)).toBe(true);
    expect(cert.checkIssued(ca.certificate)).toBe(true);
    expect(cert.checkPrivateKey(privateKey)).toBe(true);
    expect(cert.subject).toBe('CN=node-a');
    expect(cert.issuer).toBe('O=Tern\nCN=tern-ca');
    expect(cert.subjectAltName).toBe(
      'DNS:node-a, URI:spiffe://tern.dev/node/node-a, IP Address:10.0.0.2, IP Address:FD00:0:0:0:0:0:1:2',
    );
    expect(cert.ca).toBe(false);
    expect(new Date(cert.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(cert.validTo).getUTCFullYear()).toBe(2055); // GeneralizedTime from 2050 on
    writeFileSync(join(dir, 'leaf.crt'), pem);
    const text = openssl('x509', '-in', join(dir, 'leaf.crt'), '-noout', '-text');
    expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    // A server certificate, not a client one: openssl's purpose check agrees.
    const verify = (purpose: string) =>
      execFileSync('openssl', ['verify', '-CAfile', caCert, '-purpose', purpose, join(dir, 'leaf.crt')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    expect(verify('sslserver').toString()).toContain('OK');
    expect(() => verify('sslclient')).toThrow();
  },
);

test('a signer certificate that is no CA, or a key that is not its own, is refused', () => {
  const key = join(dir, 'leaf.key');
  const cert = join(dir, 'notca.crt');
  openssl(
    'req',
    '-x509',
    '-nodes',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=leaf',
    '-days',
    '1',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
  );
  expect(() => loadCertificateAuthority(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'))).toThrow(
    'not a CA certificate',
  );
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  expect(() =>
    loadCertificateAuthority(
      readFileSync(join(dir, 'ca-ec.crt'), 'utf8'),
      privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    ),
  ).toThrow('does not match');
});
