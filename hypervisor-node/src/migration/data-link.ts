// The daemon's end of the migration data plane: the target daemon's link listener, admitting only links from
// hypervisor-node certificates that carry a one-time token the operator issued for a migration prepared here.
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { listenForLinks, type AdmittedLink, type LinkListener, type LinkTls } from './tunnel/tls-link.js';
import type { MigrationTokenRegistry } from './tunnel/token.js';

/** URI SAN prefix of the node certificates (hack/gen-certs.ts: spiffe://tern.dev/node/<name>). */
export const NODE_URI_PREFIX = 'spiffe://tern.dev/node/';

/** True when a verified peer certificate names a hypervisor node (and not, say, the operator). */
export function isNodeCertificate(cert: PeerCertificate): boolean {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .some((entry) => entry.startsWith(`URI:${NODE_URI_PREFIX}`) && entry.length > 4 + NODE_URI_PREFIX.length);
}

export interface DataLinkListenerOptions {
  host: string;
  port: number;
  tls: LinkTls;
  tokens: MigrationTokenRegistry;
  onLink: (link: TLSSocket, admission: AdmittedLink) => void;
  logger: Logger;
}

export function startDataLinkListener(options: DataLinkListenerOptions): Promise<LinkListener> {
  return listenForLinks({
    host: options.host,
    port: options.port,
    tls: options.tls,
    admit: options.tokens.admit.bind(options.tokens),
    authorizePeer: isNodeCertificate,
    onLink: options.onLink,
    onRefused: (reason) => options.logger.warn({ reason }, 'migration link refused'),
  });
}
