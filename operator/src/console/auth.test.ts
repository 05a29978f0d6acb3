import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { AuthenticationError, bearerToken, parseCaBundle, userFromClientCertificate } from './auth.js';

let dir: string;
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'console-auth-'));
  for (const name of ['ca', 'other-ca']) {
    openssl(
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
      ...['-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`)],
    );
  }
  openssl(
    ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-subj', '/O=team-a/O=devs/CN=alice', '-keyout', file('alice.key'), '-out', file('alice.csr')],
  );
  openssl(
    ...['x509', '-req', '-in', file('alice.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key')],
    ...['-CAcreateserial', '-days', '1', '-out', file('alice.crt')],
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const der = (name: string) => new X509Certificate(readFileSync(file(name))).raw;

test('a certificate of the client CA names its user (CN) and groups (O)', () => {
  const cas = parseCaBundle(
    readFileSync(file('other-ca.crt'), 'utf8') + readFileSync(file('ca.crt'), 'utf8'),
  );
  expect(cas).toHaveLength(2);
  expect(userFromClientCertificate(der('alice.crt'), cas, new Date())).toEqual({
    username: 'alice',
    groups: ['team-a', 'devs', 'system:authenticated'],
  });
});

test('a certificate of another CA, or out of its validity, is refused', () => {
  const other = parseCaBundle(readFileSync(file('other-ca.crt'), 'utf8'));
  expect(() => userFromClientCertificate(der('alice.crt'), other, new Date())).toThrow(AuthenticationError);
  const cas = parseCaBundle(readFileSync(file('ca.crt'), 'utf8'));
  const later = new Date(Date.now() + 3 * 24 * 3600 * 1000);
  expect(() => userFromClientCertificate(der('alice.crt'), cas, later)).toThrow(/not valid now/);
});

test('bearer tokens come from the authorization metadata only in the Bearer form', () => {
  expect(bearerToken('Bearer abc.def')).toBe('abc.def');
  expect(bearerToken('bearer abc')).toBe('abc');
  expect(bearerToken('Basic abc')).toBeUndefined();
  expect(bearerToken(undefined)).toBeUndefined();
});
