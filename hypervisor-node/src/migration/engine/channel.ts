// Where QEMU's migration stream goes, and how it is protected. The daemons migrate over TCP between the nodes with
// QEMU's own TLS, keyed by the migration's one-time token as a pre-shared key (a peer without the token fails the
// handshake); tests and the benchmark's baseline migrate over a unix socket. A URI reaches QEMU as a JSON string
// (never through its option parser), and is still kept to characters that cannot surprise QEMU's URI parsing.
import { isIP } from 'node:net';
import type { QmpClient } from '../../qemu/qmp-client.js';

export type MigrationChannel = UnixChannel | TcpChannel;

export interface UnixChannel {
  transport: 'unix';
  path: string;
}

export interface TcpChannel {
  transport: 'tcp';
  /** An IP address (the target node's migration address). */
  host: string;
  /** 0 on the target: QEMU picks a free port (listeningPort reads it back). */
  port: number;
  tls: PskTls;
}

/** A `keys.psk` file (`<identity>:<hex key>` lines) in `dir`, readable by QEMU; see writePskFile. */
export interface PskTls {
  dir: string;
  identity: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]+$/;
/** sun_path is 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;
export const TLS_CREDS_ID = 'tern-migration-tls';
/**
 * TLS 1.2 only: QEMU 10.0 reads and writes the main channel from two threads (the return path), which GnuTLS
 * supports in TLS 1.2 but not in 1.3 (GnuTLS bug 1717; QEMU 10.1 adds a lock for it). AES-GCM only: GnuTLS's
 * NORMAL list let the peers settle on ChaCha20-Poly1305, which moved ~230 MB/s here against ~550 MB/s for
 * AES-128-GCM with AES-NI (a unix socket without TLS: ~600 MB/s). QEMU appends the PSK key exchanges itself.
 */
const TLS_PRIORITY = 'NORMAL:-VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM';

/** Throws saying what is wrong with the channel; returns the URI QEMU gets. */
export function channelUri(channel: MigrationChannel): string {
  if (channel.transport === 'unix') {
    if (!SAFE_PATH.test(channel.path) || channel.path.split('/').includes('..')) {
      throw new Error(
        `migration socket path ${JSON.stringify(channel.path)} must be absolute, of letters, digits, ".", "_", "-", "/"`,
      );
    }
    if (Buffer.byteLength(channel.path) > MAX_SOCKET_PATH) {
      throw new Error(`migration socket path ${channel.path} is longer than ${MAX_SOCKET_PATH} bytes`);
    }
    return `unix:${channel.path}`;
  }
  const family = isIP(channel.host);
  if (family === 0) throw new Error(`migration host ${JSON.stringify(channel.host)} must be an IP address`);
  if (!Number.isInteger(channel.port) || channel.port < 0 || channel.port > 65535) {
    throw new Error(`migration port ${channel.port} must be an integer in 0..65535`);
  }
  if (!SAFE_PATH.test(channel.tls.dir))
    throw new Error(`TLS key dir ${channel.tls.dir} must be a plain absolute path`);
  return family === 6 ? `tcp:[${channel.host}]:${channel.port}` : `tcp:${channel.host}:${channel.port}`;
}

/**
 * Points QEMU's migration at the channel's TLS credentials, or at none for a unix socket. The credentials object is
 * replaced each time (a guest whose earlier migration failed still holds the old one). The client side loads its
 * key now; the server side reads the key file at each handshake, so the file must stay until the stream is in.
 */
export async function applyChannelTls(
  qmp: QmpClient,
  channel: MigrationChannel,
  endpoint: 'client' | 'server',
): Promise<void> {
  await qmp.execute('object-del', { id: TLS_CREDS_ID }).catch(() => undefined);
  if (channel.transport === 'unix') {
    await qmp.migrateSetParameters({ 'tls-creds': '' });
    return;
  }
  await qmp.execute('object-add', {
    'qom-type': 'tls-creds-psk',
    id: TLS_CREDS_ID,
    endpoint,
    dir: channel.tls.dir,
    priority: TLS_PRIORITY,
    ...(endpoint === 'client' ? { username: channel.tls.identity } : {}),
  });
  await qmp.migrateSetParameters({ 'tls-creds': TLS_CREDS_ID, 'tls-hostname': '', 'tls-authz': '' });
}

/** The TCP port an incoming migration listens on (after migrate-incoming on port 0). */
export async function listeningPort(qmp: QmpClient): Promise<number> {
  const info = await qmp.queryMigrate();
  const inet = info['socket-address']?.find((address) => address.type === 'inet');
  const port = Number(inet?.port);
  if (!Number.isInteger(port) || port <= 0) {
    throw new Error(`QEMU reported no listening TCP port (${JSON.stringify(info['socket-address'])})`);
  }
  return port;
}
