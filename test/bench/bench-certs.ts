import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LinkTls } from '../../hypervisor-node/src/migration/tunnel/tls-link.js';

// The tunnel's test PKI (hypervisor-node/src/migration/tunnel/testdata): a cluster CA and two node certificates.
const testdata = fileURLToPath(
  new URL('../../hypervisor-node/src/migration/tunnel/testdata/', import.meta.url),
);
const pem = (name: string): string => readFileSync(`${testdata}${name}`, 'utf8');

export const nodeTls = (node: 'node-a' | 'node-b'): LinkTls => ({
  ca: pem('cluster-ca.crt'),
  cert: pem(`${node}.crt`),
  key: pem(`${node}.key`),
});
