// The hub against a real unix socket standing in for QEMU's console chardev, and a fake runtime.
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestStatus } from '../model/guest.js';
import { ConsoleBusyError, ConsoleHub, ConsoleUnavailableError } from './hub.js';

class FakeRuntime extends EventEmitter {
  readonly guests = new Map<string, GuestStatus>();
  set(name: string, phase: GuestStatus['phase']): void {
    const status = { name, phase } as GuestStatus;
    this.guests.set(name, status);
    this.emit('status', status);
  }
  list(): GuestStatus[] {
    return [...this.guests.values()];
  }
  get(name: string): GuestStatus | undefined {
    return this.guests.get(name);
  }
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

let dir: string;
let server: net.Server;
let peer: net.Socket | undefined;
let received = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hub-'));
  received = '';
  peer = undefined;
  server = net.createServer((socket) => {
    peer = socket;
    socket.setEncoding('utf8').on('data', (d: string) => (received += d));
  });
  await new Promise<void>((resolve) => server.listen(join(dir, 'vm1.sock'), resolve));
});
afterEach(async () => {
  peer?.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test('connects to a running guest, fans its output out, forwards keys, one session at a time, ends on stop', async () => {
  const runtime = new FakeRuntime();
  runtime.set('vm1', 'Running');
  const hub = new ConsoleHub(runtime, (name) => join(dir, `${name}.sock`));
  hub.start();
  await until(() => peer !== undefined);

  let output = '';
  let ended: string | undefined;
  const session = hub.attach('vm1', { output: (d) => (output += d.toString()), end: (why) => (ended = why) });
  expect(() => hub.attach('vm1', { output: () => undefined, end: () => undefined })).toThrow(
    ConsoleBusyError,
  );
  peer!.write('login: ');
  await until(() => output === 'login: ');
  session.write(Buffer.from('root\n'));
  await until(() => received === 'root\n');

  runtime.set('vm1', 'Stopped');
  expect(ended).toBe('the guest stopped');
  expect(() => hub.attach('vm1', { output: () => undefined, end: () => undefined })).toThrow(
    ConsoleUnavailableError,
  );
  hub.close();
});

test('a detached session frees the console; an unknown guest is refused', async () => {
  const runtime = new FakeRuntime();
  runtime.set('vm1', 'Paused');
  const hub = new ConsoleHub(runtime, (name) => join(dir, `${name}.sock`));
  hub.start();
  const first = hub.attach('vm1', { output: () => undefined, end: () => undefined });
  first.detach();
  expect(() => hub.attach('vm1', { output: () => undefined, end: () => undefined })).not.toThrow();
  expect(() => hub.attach('nope', { output: () => undefined, end: () => undefined })).toThrow(/not found/);
  hub.close();
});
