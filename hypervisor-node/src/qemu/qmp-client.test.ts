// QmpClient against a scripted QMP peer on a unix socket (the real QEMU is exercised by the supervisor's
// integration test).
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QmpClient, QmpClosedError, QmpCommandError, QmpTimeoutError, type QmpEvent } from './qmp-client.js';

const GREETING = {
  QMP: { version: { qemu: { major: 10, minor: 0, micro: 2 }, package: 'test' }, capabilities: ['oob'] },
};

interface Frame {
  execute?: string;
  arguments?: unknown;
  id?: string;
}

/** The server side of one QMP connection, driven by the test. */
class Peer {
  private buffer = '';
  private readonly received: Frame[] = [];
  private waiter: ((msg: Frame) => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, newline)) as Frame;
        this.buffer = this.buffer.slice(newline + 1);
        if (this.waiter) {
          const waiter = this.waiter;
          this.waiter = undefined;
          waiter(msg);
        } else {
          this.received.push(msg);
        }
      }
    });
  }

  next(): Promise<Frame> {
    const msg = this.received.shift();
    if (msg) return Promise.resolve(msg);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  send(...messages: object[]): void {
    this.socket.write(messages.map((m) => `${JSON.stringify(m)}\r\n`).join(''));
  }

  /** Answers the negotiation like QEMU does. */
  async negotiate(): Promise<void> {
    const msg = await this.next();
    expect(msg.execute).toBe('qmp_capabilities');
    this.send({ return: {}, id: msg.id });
  }
}

let dir: string;
let server: net.Server;
let socketPath: string;
let peers: Peer[];
let onPeer: (peer: Peer) => void;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tern-qmp-'));
  socketPath = path.join(dir, 'qmp.sock');
  peers = [];
  onPeer = (peer) => {
    peer.send(GREETING);
    void peer.negotiate();
  };
  server = net.createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    onPeer(peer);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterEach(async () => {
  for (const peer of peers) peer.socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function connected(): Promise<{ client: QmpClient; peer: Peer }> {
  const client = await QmpClient.connect(socketPath, { commandTimeoutMs: 2_000 });
  return { client, peer: peers[peers.length - 1] as Peer };
}

test('negotiates capabilities after the greeting and exposes the greeting', async () => {
  const { client } = await connected();
  expect(client.greeting.QMP.version.qemu).toEqual({ major: 10, minor: 0, micro: 2 });
  expect(client.closed).toBe(false);
  client.close();
  expect(client.closed).toBe(true);
});

test('enables out-of-band execution when QEMU offers it, and sends exec-oob commands', async () => {
  let negotiation: Frame | undefined;
  onPeer = (peer) => {
    peer.send(GREETING);
    void peer.next().then((msg) => {
      negotiation = msg;
      peer.send({ return: {}, id: msg.id });
    });
  };
  const { client, peer } = await connected();
  expect(negotiation).toMatchObject({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] } });
  expect(client.oob).toBe(true);
  const yank = client.executeOob('yank', { instances: [{ type: 'migration' }] });
  const frame = await peer.next();
  expect(frame).toMatchObject({ 'exec-oob': 'yank', arguments: { instances: [{ type: 'migration' }] } });
  expect(frame.execute).toBeUndefined();
  peer.send({ return: {}, id: frame.id });
  await expect(yank).resolves.toEqual({});
  client.close();
});

test('without an offer it negotiates nothing and refuses exec-oob', async () => {
  let negotiation: Frame | undefined;
  onPeer = (peer) => {
    peer.send({ QMP: { ...GREETING.QMP, capabilities: [] } });
    void peer.next().then((msg) => {
      negotiation = msg;
      peer.send({ return: {}, id: msg.id });
    });
  };
  const { client } = await connected();
  expect(negotiation?.arguments).toBeUndefined();
  expect(client.oob).toBe(false);
  await expect(client.executeOob('yank')).rejects.toThrow(/no out-of-band QMP/);
  client.close();
});

test('connect fails when negotiation is refused or the peer is not QMP', async () => {
  onPeer = (peer) => {
    peer.send(GREETING);
    void peer
      .next()
      .then((msg) => peer.send({ error: { class: 'CommandNotFound', desc: 'nope' }, id: msg.id }));
  };
  await expect(QmpClient.connect(socketPath)).rejects.toThrow(/negotiation .* failed/);
  onPeer = (peer) => peer.send({ hello: 'world' });
  await expect(QmpClient.connect(socketPath)).rejects.toThrow(/did not greet with QMP/);
  onPeer = () => undefined;
  await expect(QmpClient.connect(socketPath, { handshakeTimeoutMs: 50 })).rejects.toThrow(
    /no answer within 50 ms/,
  );
  await expect(QmpClient.connect(path.join(dir, 'missing.sock'))).rejects.toThrow(/ENOENT/);
});

test('matches replies to commands by id, in any order', async () => {
  const { client, peer } = await connected();
  const status = client.queryStatus();
  const version = client.queryVersion();
  const first = await peer.next();
  const second = await peer.next();
  expect([first.execute, second.execute]).toEqual(['query-status', 'query-version']);
  expect(first.id).not.toBe(second.id);
  peer.send({ return: { qemu: { major: 10, minor: 0, micro: 2 }, package: '' }, id: second.id });
  peer.send({ return: { running: true, status: 'running' }, id: first.id });
  await expect(status).resolves.toEqual({ running: true, status: 'running' });
  await expect(version).resolves.toMatchObject({ qemu: { major: 10 } });
  client.close();
});

test('delivers events interleaved with replies, in order, to every subscriber', async () => {
  const { client, peer } = await connected();
  const seen: string[] = [];
  client.on('event', (event: QmpEvent) => seen.push(event.event));
  const stopped = client.waitForEvent('STOP', 1_000);
  const status = client.execute('stop');
  const cmd = await peer.next();
  const ts = { seconds: 1, microseconds: 2 };
  peer.send({ event: 'STOP', timestamp: ts }, { return: {}, id: cmd.id }, { event: 'RESUME', timestamp: ts });
  await expect(status).resolves.toEqual({});
  await expect(stopped).resolves.toEqual({ event: 'STOP', timestamp: ts });
  const migration = client.waitForEvent('MIGRATION', 1_000, (e) => e.data?.status === 'completed');
  peer.send({ event: 'MIGRATION', data: { status: 'active' }, timestamp: ts });
  peer.send({ event: 'MIGRATION', data: { status: 'completed' }, timestamp: ts });
  await expect(migration).resolves.toMatchObject({ data: { status: 'completed' } });
  expect(seen).toEqual(['STOP', 'RESUME', 'MIGRATION', 'MIGRATION']);
  await expect(client.waitForEvent('NEVER', 30)).rejects.toThrow('no QMP NEVER event within 30 ms');
  client.close();
});

test('an event sent right after the negotiation reply reaches a subscriber added after connect()', async () => {
  onPeer = (peer) => {
    peer.send(GREETING);
    void peer
      .next()
      .then((msg) =>
        peer.send(
          { return: {}, id: msg.id },
          { event: 'RESUME', timestamp: { seconds: 0, microseconds: 0 } },
        ),
      );
  };
  const { client } = await connected();
  await expect(client.waitForEvent('RESUME', 1_000)).resolves.toMatchObject({ event: 'RESUME' });
  client.close();
});

test('an error reply rejects with QmpCommandError carrying class and description', async () => {
  const { client, peer } = await connected();
  const result = client.execute('migrate-set-parameters', { 'downtime-limit': -1 });
  const cmd = await peer.next();
  expect(cmd).toEqual({ execute: 'migrate-set-parameters', arguments: { 'downtime-limit': -1 }, id: cmd.id });
  peer.send({ error: { class: 'GenericError', desc: 'Parameter downtime-limit out of range' }, id: cmd.id });
  const err = await result.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(QmpCommandError);
  expect(err).toMatchObject({ command: 'migrate-set-parameters', errorClass: 'GenericError' });
  expect(String(err)).toContain('Parameter downtime-limit out of range');
  client.close();
});

test('a command times out alone; its late reply is ignored and the session goes on', async () => {
  const { client, peer } = await connected();
  const slow = client.execute('query-migrate', undefined, { timeoutMs: 50 });
  const slowCmd = await peer.next();
  await expect(slow).rejects.toBeInstanceOf(QmpTimeoutError);
  await expect(slow).rejects.toThrow('QMP query-migrate got no reply within 50 ms');
  peer.send({ return: { status: 'active' }, id: slowCmd.id });
  const next = client.queryMigrate();
  const nextCmd = await peer.next();
  peer.send({ return: { status: 'completed' }, id: nextCmd.id });
  await expect(next).resolves.toEqual({ status: 'completed' });
  client.close();
});

test('the peer closing mid-command rejects everything pending and later commands', async () => {
  const { client, peer } = await connected();
  const closed = new Promise<Error | undefined>((resolve) => client.on('close', resolve));
  const a = client.execute('query-status');
  const b = client.execute('query-migrate');
  await peer.next();
  await peer.next();
  peer.socket.end();
  await expect(a).rejects.toBeInstanceOf(QmpClosedError);
  await expect(b).rejects.toThrow(/query-migrate was in flight/);
  expect(await closed).toBeInstanceOf(QmpClosedError);
  expect(client.closed).toBe(true);
  await expect(client.execute('cont')).rejects.toBeInstanceOf(QmpClosedError);
  await expect(client.waitForEvent('STOP', 1_000)).rejects.toBeInstanceOf(QmpClosedError);
});

test('quit succeeds whether QEMU replies before closing or just closes', async () => {
  const { client, peer } = await connected();
  const quit = client.quit();
  await peer.next();
  peer.socket.end();
  await expect(quit).resolves.toBeUndefined();
});

test('frames split across chunks and several frames in one chunk', async () => {
  const { client, peer } = await connected();
  const events: QmpEvent[] = [];
  client.on('event', (e) => events.push(e));
  const one = client.execute('query-status');
  const two = client.execute('query-version');
  const ids = [(await peer.next()).id, (await peer.next()).id];
  const frame = `${JSON.stringify({ return: { running: false, status: 'paused' }, id: ids[0] })}\r\n`;
  for (const piece of [frame.slice(0, 5), frame.slice(5, 20), frame.slice(20)]) {
    peer.socket.write(piece);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await expect(one).resolves.toEqual({ running: false, status: 'paused' });
  const ts = { seconds: 3, microseconds: 4 };
  peer.socket.write(
    `${JSON.stringify({ event: 'STOP', timestamp: ts })}\r\n${JSON.stringify({ return: 'v', id: ids[1] })}\r\n{"event":"RES`,
  );
  await expect(two).resolves.toBe('v');
  peer.socket.write(`UME","timestamp":${JSON.stringify(ts)}}\r\n`);
  await client.waitForEvent('RESUME', 1_000);
  expect(events.map((e) => e.event)).toEqual(['STOP', 'RESUME']);
  client.close();
});

test('invalid JSON from the peer closes the session with an error', async () => {
  const { client, peer } = await connected();
  const closed = new Promise<Error | undefined>((resolve) => client.on('close', resolve));
  const pending = client.execute('query-status');
  await peer.next();
  peer.socket.write('{not json}\n');
  await expect(pending).rejects.toThrow(/invalid JSON/);
  expect(String(await closed)).toMatch(/invalid JSON: \{not json\}/);
});

test('typed helpers send the QMP commands and arguments QEMU expects', async () => {
  const { client, peer } = await connected();
  const calls: [Promise<unknown>, object][] = [
    [
      client.migrateSetCapabilities({ events: true, 'return-path': false }),
      {
        execute: 'migrate-set-capabilities',
        arguments: {
          capabilities: [
            { capability: 'events', state: true },
            { capability: 'return-path', state: false },
          ],
        },
      },
    ],
    [
      client.migrateSetParameters({ 'max-bandwidth': 0, 'downtime-limit': 50 }),
      {
        execute: 'migrate-set-parameters',
        arguments: { 'max-bandwidth': 0, 'downtime-limit': 50 },
      },
    ],
    [client.stop(), { execute: 'stop' }],
    [client.cont(), { execute: 'cont' }],
    [client.systemPowerdown(), { execute: 'system_powerdown' }],
    [client.queryMigrateCapabilities(), { execute: 'query-migrate-capabilities' }],
    [client.queryMigrateParameters(), { execute: 'query-migrate-parameters' }],
  ];
  for (const [result, expected] of calls) {
    const cmd = await peer.next();
    const { id, ...rest } = cmd;
    expect(rest).toEqual(expected);
    peer.send({ return: {}, id });
    await result;
  }
  client.close();
});

// Found by test/fuzz/qmp-client.fuzz.test.ts: String() on an error field `{"toString": 1}` threw inside the socket's data
// handler (an uncaught exception in the daemon) and left the command pending for good.
test('an error reply whose class and desc are objects rejects the command with a QmpCommandError', async () => {
  const { client, peer } = await connected();
  const result = client.execute('stop');
  const cmd = await peer.next();
  peer.socket.write(
    `{"id":${JSON.stringify(cmd.id)},"error":{"class":{"toString":1},"desc":{"valueOf":{}}}}\n`,
  );
  const error = (await result.catch((e: unknown) => e)) as QmpCommandError;
  expect(error).toBeInstanceOf(QmpCommandError);
  expect(error.errorClass).toBe('{"toString":1}');
  expect(error.desc).toBe('{"valueOf":{}}');
  client.close();
});

// Found by test/fuzz/qmp-client.fuzz.test.ts: capabilities that are not a list made connect() fail with a TypeError of the
// client's own code.
test('a greeting whose capabilities are not a list negotiates without out-of-band execution', async () => {
  onPeer = (peer) => {
    peer.send({ QMP: { ...GREETING.QMP, capabilities: {} } });
    void peer.negotiate();
  };
  const { client } = await connected();
  expect(client.oob).toBe(false);
  client.close();
});
