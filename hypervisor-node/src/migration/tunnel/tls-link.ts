import {
  connect as tlsConnect,
  createServer,
  type ConnectionOptions,
  type PeerCertificate,
  type TLSSocket,
} from 'node:tls';
import type { AddressInfo } from 'node:net';
import { decodeToken, TOKEN_BYTES, type Admission } from './token.js';

/**
 * A link is one mutual-TLS connection per QEMU migration connection, opened by the source daemon to the target
 * daemon's link listener. Before any migration byte the dialer sends a preamble and waits for the verdict:
 *
 *   preamble: "TRNL" | version (1 byte) | token (32 bytes) | channel index (uint16 BE)
 *   verdict:  0x01 = admitted; anything else (or a close) = refused
 */
const MAGIC = Buffer.from('TRNL');
const VERSION = 1;
const PREAMBLE_BYTES = MAGIC.length + 1 + TOKEN_BYTES + 2;
const ADMITTED = 0x01;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** PEM material of this daemon: its node certificate (server and client auth) and the cluster CA. */
export interface LinkTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

export type AdmittedLink = Extract<Admission, { admitted: true }>;

export interface LinkListenerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: LinkTls;
  /** Decides on a link's token and channel (e.g. `registry.admit.bind(registry)`); must burn what it admits. */
  admit: (token: Buffer, channelIndex: number) => Admission;
  /** Receives each admitted link, paused (nothing read past the preamble is lost), ready to carry migration bytes. */
  onLink: (link: TLSSocket, admission: AdmittedLink) => void;
  /** Extra check of the verified client certificate (e.g. that it names a hypervisor node). */
  authorizePeer?: (cert: PeerCertificate) => boolean;
  /** Called for every refused or failed link attempt (for logs and metrics). */
  onRefused?: (reason: string) => void;
  handshakeTimeoutMs?: number;
}

export interface LinkListener {
  readonly port: number;
  close(): Promise<void>;
}

function tuneForMigration(socket: TLSSocket): void {
  // The return path carries small acknowledgements whose delay counts toward the guest's downtime.
  socket.setNoDelay(true);
}

/** The target daemon's listener for migration links: mutual TLS, then the token preamble. */
export function listenForLinks(options: LinkListenerOptions): Promise<LinkListener> {
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const refuse = (socket: TLSSocket, reason: string): void => {
    options.onRefused?.(reason);
    socket.destroy();
  };
  const server = createServer(
    {
      ...options.tls,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      allowHalfOpen: true,
      handshakeTimeout: timeoutMs,
    },
    (socket) => {
      tuneForMigration(socket);
      if (options.authorizePeer && !options.authorizePeer(socket.getPeerCertificate())) {
        return refuse(socket, 'peer certificate not authorised for migration links');
      }
      const timer = setTimeout(() => refuse(socket, 'no link preamble in time'), timeoutMs);
      readPreamble(socket).then(
        (preamble) => {
          clearTimeout(timer);
          const verdict = parsePreamble(preamble, options.admit);
          if (!verdict.admitted) return refuse(socket, verdict.reason);
          socket.write(Buffer.of(ADMITTED));
          options.onLink(socket, verdict);
        },
        (error: Error) => {
          clearTimeout(timer);
          refuse(socket, `link preamble: ${error.message}`);
        },
      );
    },
  );
  server.on('tlsClientError', (error) => options.onRefused?.(`TLS: ${error.message}`));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function parsePreamble(preamble: Buffer, admit: LinkListenerOptions['admit']): Admission {
  if (!preamble.subarray(0, MAGIC.length).equals(MAGIC) || preamble[MAGIC.length] !== VERSION) {
    return { admitted: false, reason: 'not a tern migration link' };
  }
  const token = preamble.subarray(MAGIC.length + 1, MAGIC.length + 1 + TOKEN_BYTES);
  return admit(token, preamble.readUInt16BE(PREAMBLE_BYTES - 2));
}

/** Reads exactly `PREAMBLE_BYTES` and pauses the socket, leaving anything after them unread in it. */
function readPreamble(socket: TLSSocket): Promise<Buffer> {
  return readExactly(socket, PREAMBLE_BYTES);
}

function readExactly(socket: TLSSocket, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', reject);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('closed early'));
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < size) return;
      cleanup();
      socket.pause();
      const all = Buffer.concat(chunks);
      if (all.length > size) socket.unshift(all.subarray(size));
      resolve(all.subarray(0, size));
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', reject);
  });
}

export interface DialLinkOptions {
  host: string;
  port: number;
  tls: LinkTls;
  /** Name the target's certificate must carry (by default the host name or IP address dialled). */
  servername?: string;
  /** The migration's one-time token (text form, as handed out by the operator). */
  token: string;
  channelIndex: number;
  timeoutMs?: number;
}

/** The source daemon's side: opens one link and resolves, paused, once the target admitted it. */
export function dialLink(options: DialLinkOptions): Promise<TLSSocket> {
  const token = decodeToken(options.token);
  if (!token) return Promise.reject(new Error('migration token is malformed'));
  if (!Number.isInteger(options.channelIndex) || options.channelIndex < 0 || options.channelIndex > 0xffff) {
    return Promise.reject(new Error(`channel index ${options.channelIndex} out of range`));
  }
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  MAGIC.copy(preamble, 0);
  preamble[MAGIC.length] = VERSION;
  token.copy(preamble, MAGIC.length + 1);
  preamble.writeUInt16BE(options.channelIndex, PREAMBLE_BYTES - 2);

  return new Promise((resolve, reject) => {
    // allowHalfOpen is a documented tls.connect option that @types/node does not list.
    const connectOptions: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: options.host,
      port: options.port,
      ...options.tls,
      ...(options.servername ? { servername: options.servername } : {}),
      minVersion: 'TLSv1.3',
      allowHalfOpen: true,
    };
    const socket = tlsConnect(connectOptions);
    const timer = setTimeout(
      () => fail(new Error('link handshake timed out')),
      options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new Error(`link ${options.host}:${options.port} channel ${options.channelIndex}: ${error.message}`),
      );
    };
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      tuneForMigration(socket);
      socket.write(preamble);
      readExactly(socket, 1).then(
        (verdict) => {
          if (verdict[0] !== ADMITTED) return fail(new Error('refused by the target'));
          clearTimeout(timer);
          socket.off('error', fail);
          resolve(socket);
        },
        () => fail(new Error('refused by the target')),
      );
    });
  });
}
