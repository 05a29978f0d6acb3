import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** A temporary directory for unix sockets of one test file. */
export function socketDir(): { path: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tern-tunnel-'));
  return { path: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Both ends of a real unix socket connection (half-open allowed on both). */
export async function socketPair(path: string): Promise<[Socket, Socket, Server]> {
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect({ path, allowHalfOpen: true });
  await new Promise((resolve) => client.once('connect', resolve));
  const peer = await accepted;
  server.close();
  return [client, peer, server];
}

/** Everything a stream yields until it ends; unlike `for await`, leaves the writable side open. */
export function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Deterministic non-repeating test data. */
export function pattern(size: number, seed: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) data.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ seed) >>> 0, i);
  return data;
}

export const closed = (stream: {
  once: (event: 'close', fn: () => void) => unknown;
  closed: boolean;
}): Promise<void> =>
  stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', resolve));
