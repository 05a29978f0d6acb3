// The daemon's control API serves a renewed node certificate without a restart (rpc/rotating-credentials.ts): a real
// grpc-js server, TLS clients holding the operator's certificate. New connections get the new certificate; an open
// one keeps working.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { loadControlProto } from '../../../proto/index.js';
import { RotatingServerCredentials } from '../../../hypervisor-node/src/rpc/rotating-credentials.js';
import { issueCertificate, loadCertificateAuthority, nodeUri } from '../../../pki/index.js';

let dir: string;
let certs: DevCerts;
let server: grpc.Server | undefined;
/** Every connection made, closed in afterAll (an open one would keep jest running after a failure). */
const sockets: TLSSocket[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tern-rotate-'));
  certs = generateDevCerts(dir, []);
});
afterAll(() => {
  for (const socket of sockets) socket.destroy();
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

/** A node-a key pair issued by the dev CA. */
function nodeA(): { certificatePem: string; keyPem: string } {
  const ca = loadCertificateAuthority(
    readFileSync(certs.ca.cert, 'utf8'),
    readFileSync(certs.ca.key, 'utf8'),
  );
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificatePem = issueCertificate(ca, {
    names: { commonName: 'node-a', dnsNames: ['node-a'], uris: [nodeUri('node-a')], ips: [] },
    publicKeyInfo: publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    usages: ['serverAuth'],
  });
  return { certificatePem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A TLS connection as the operator makes it (its client certificate, the CA, server name node-a). */
function dial(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'node-a',
      ca: readFileSync(certs.ca.cert),
      cert: readFileSync(certs.operator.cert),
      key: readFileSync(certs.operator.key),
      ALPNProtocols: ['h2'],
    });
    sockets.push(socket);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

const serial = (socket: TLSSocket): string => socket.getPeerCertificate().serialNumber;

test('a rotated certificate serves new connections while open ones keep theirs', async () => {
  const first = nodeA();
  const credentials = new RotatingServerCredentials(readFileSync(certs.ca.cert), first);
  server = new grpc.Server();
  server.addService(loadControlProto().GuestControl.service, {});
  const port = await new Promise<number>((resolve, reject) =>
    server!.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const before = await dial(port);
  expect(serial(before)).toBe(new X509Certificate(first.certificatePem).serialNumber);

  const second = nodeA();
  credentials.rotate(second);
  const after = await dial(port);
  expect(serial(after)).toBe(new X509Certificate(second.certificatePem).serialNumber);
  expect(before.destroyed).toBe(false);
  before.destroy();
  after.destroy();

  // Client certificates are still required after the rotation.
  await expect(
    new Promise((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        servername: 'node-a',
        ca: readFileSync(certs.ca.cert),
      });
      sockets.push(socket);
      socket.once('secureConnect', () =>
        socket.once('data', resolve).once('close', () => reject(new Error('closed'))),
      );
      socket.once('error', reject);
    }),
  ).rejects.toThrow();
});
