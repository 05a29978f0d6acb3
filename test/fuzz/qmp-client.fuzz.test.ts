// Property: a QMP peer that sends garbage (random bytes, truncated JSON, JSON of the wrong shape, replies with
// unknown or wrong-typed ids, errors whose fields are objects, events with garbage data, huge lines, a greeting or
// negotiation of the wrong shape, a socket closed at any point) never makes QmpClient throw out of its socket
// handlers (which would crash the daemon); connect() resolves or rejects with a plain Error (not a TypeError from
// the client's own code); every command settles, with its result or a QmpCommandError, QmpTimeoutError or
// QmpClosedError; events reach subscribers only as objects with a string `event`; and the client closes once.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { checkProperty } from './settings.js';
import {
  QmpClient,
  QmpClosedError,
  QmpCommandError,
  QmpTimeoutError,
} from '../../hypervisor-node/src/qemu/qmp-client.js';

const COMMAND_TIMEOUT_MS = 40;

/** Object keys that trip up code which treats parsed JSON as plain data. */
const TRICKY_KEYS = [
  'toString',
  'valueOf',
  '__proto__',
  'constructor',
  'class',
  'desc',
  'id',
  'event',
  'data',
  'return',
  'error',
];

/** JSON text: any JSON value, or an object with tricky keys (written as text so that __proto__ is a real key). */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ text: string }>((tie) => ({
  text: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
    fc
      .array(fc.tuple(fc.constantFrom(...TRICKY_KEYS), tie('text')), { maxLength: 3 })
      .map((pairs) => `{${pairs.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`),
  ),
})).text;

const GREETING = (capabilities: string) =>
  `{"QMP":{"version":{"qemu":{"major":10,"minor":0,"micro":2},"package":"fuzz"},"capabilities":${capabilities}}}\n`;

const greeting = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(GREETING('["oob"]'), GREETING('[]')) },
  { weight: 1, arbitrary: jsonText.map((caps) => GREETING(caps)) },
  { weight: 1, arbitrary: jsonText.map((text) => `${text}\n`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('{"QMP":', 'not json\n', '', '\n\n', GREETING('["oob"]').slice(0, -1)),
  },
);

/** The negotiation reply; `ID` is replaced by the client's id. */
const negotiation = fc.oneof(
  { weight: 6, arbitrary: fc.constant('{"return":{},"id":ID}\n') },
  { weight: 1, arbitrary: jsonText.map((text) => `${text}\n`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('{"error":{"class":"GenericError","desc":"no"},"id":ID}\n', '{"return":', ''),
  },
);

/**
 * One write of the peer after negotiation. `ID0`…`ID3` stand for the ids of the client's commands (an id the client
 * never used stays as it is).
 */
const action: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  // A reply: to a command in flight, to one that is not, with a wrong-typed id; a return or an error of any shape.
  {
    weight: 4,
    arbitrary: fc
      .record({
        id: fc.oneof(fc.constantFrom('ID0', 'ID1', 'ID2', 'ID3', '"c99"', '"negotiate"'), jsonText),
        body: fc.oneof(
          jsonText.map((value) => `"return":${value}`),
          jsonText.map((value) => `"error":${value}`),
          fc
            .record({ cls: jsonText, desc: jsonText })
            .map(({ cls, desc }) => `"error":{"class":${cls},"desc":${desc}}`),
        ),
        eol: fc.constantFrom('\n', '\r\n'),
      })
      .map(({ id, body, eol }) => `{"id":${id},${body}}${eol}`),
  },
  // An event with a known or unknown name and garbage data and timestamp.
  {
    weight: 3,
    arbitrary: fc
      .record({
        name: fc.oneof(
          fc.constantFrom('"SHUTDOWN"', '"STOP"', '"RESUME"', '"MIGRATION"', '"MIGRATION_PASS"'),
          jsonText,
        ),
        data: jsonText,
        timestamp: jsonText,
      })
      .map(({ name, data, timestamp }) => `{"event":${name},"data":${data},"timestamp":${timestamp}}\n`),
  },
  // Any JSON line, a truncated frame, random bytes, empty lines.
  { weight: 2, arbitrary: jsonText.map((text) => `${text}\n`) },
  {
    weight: 1,
    arbitrary: fc
      .nat({ max: 60 })
      .map((n) => `${'{"return":{"status":"running","running":true},"id":ID0}'.slice(0, n)}\n`),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom('\n', '\r\n', '   \n\n') },
  // A huge line: a valid event carrying a big string, or a long run without a newline.
  {
    weight: 1,
    arbitrary: fc
      .record({ size: fc.integer({ min: 1, max: 1 << 20 }), complete: fc.boolean() })
      .map(({ size, complete }) =>
        complete
          ? `{"event":"STOP","data":{"junk":"${'x'.repeat(size)}"}}\n`
          : `{"return":"${'y'.repeat(size)}`,
      ),
  },
);

const qmpCase = fc.record({
  greeting,
  negotiation,
  commands: fc.integer({ min: 0, max: 4 }),
  actions: fc.array(action, { maxLength: 8 }),
  /** Writes each action separately, or the whole script at once (frames sharing and spanning chunks). */
  chunked: fc.boolean(),
  /** How the session ends: the peer closes, the peer resets, or the client closes. */
  end: fc.constantFrom('peer-end', 'peer-destroy', 'client-close'),
});
type QmpCase = typeof qmpCase extends fc.Arbitrary<infer T> ? T : never;

let dir: string;
let socketPath: string;
let server: net.Server;
let onConnection: (socket: net.Socket) => void;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tern-fuzz-qmp-'));
  socketPath = path.join(dir, 'qmp.sock');
  server = net.createServer((socket) => onConnection(socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** The client's frames as the peer reads them (the client always writes valid JSON lines). */
function clientFrames(socket: net.Socket): () => Promise<{ id?: unknown } | undefined> {
  let buffer = '';
  const frames: { id?: unknown }[] = [];
  let waiter: (() => void) | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      frames.push(JSON.parse(buffer.slice(0, newline)) as { id?: unknown });
      buffer = buffer.slice(newline + 1);
    }
    waiter?.();
  });
  socket.on('error', () => undefined);
  // The next frame, or undefined when none comes soon.
  return async () => {
    if (frames.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      waiter = undefined;
    }
    return frames.shift();
  };
}

const write = (socket: net.Socket, data: string | Uint8Array): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });

/** The scripted peer of one case. */
async function runPeer(socket: net.Socket, c: QmpCase): Promise<void> {
  const next = clientFrames(socket);
  await write(socket, c.greeting);
  const negotiate = await next();
  if (negotiate !== undefined)
    await write(socket, c.negotiation.replaceAll('ID', JSON.stringify(negotiate.id)));
  const ids: unknown[] = [];
  for (let i = 0; i < c.commands; i++) {
    const frame = await next();
    if (frame === undefined) break;
    ids.push(frame.id);
  }
  const resolveIds = (text: string) =>
    text.replace(/ID(\d)/g, (_, i: string) => JSON.stringify(ids[Number(i)] ?? `unused${i}`));
  const script = c.actions.map((a) => (typeof a === 'string' ? resolveIds(a) : a));
  if (c.chunked) {
    for (const part of script) {
      await write(socket, part);
      await new Promise((resolve) => setImmediate(resolve));
    }
  } else {
    await write(
      socket,
      Buffer.concat(script.map((part) => (typeof part === 'string' ? Buffer.from(part) : part))),
    );
  }
  if (c.end === 'peer-end') socket.end();
  else if (c.end === 'peer-destroy') socket.destroy();
}

const isTyped = (error: unknown): boolean =>
  error instanceof QmpCommandError || error instanceof QmpTimeoutError || error instanceof QmpClosedError;

async function runCase(c: QmpCase): Promise<void> {
  let peerDone: Promise<void> = Promise.resolve();
  onConnection = (socket) => {
    peerDone = runPeer(socket, c).catch(() => undefined);
  };
  let client: QmpClient;
  try {
    client = await QmpClient.connect(socketPath, {
      handshakeTimeoutMs: 200,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
  } catch (error) {
    // A refused handshake is a plain Error naming what went wrong, never a bug of the client's own code.
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toBe('');
    await peerDone;
    return;
  }
  let closes = 0;
  client.on('close', () => closes++);
  client.on('event', (event) => {
    expect(typeof event).toBe('object');
    expect(event).not.toBeNull();
    expect(typeof event.event).toBe('string');
  });
  const results = await Promise.allSettled(
    Array.from({ length: c.commands }, (_, i) => client.execute(`fuzz-${i}`)),
  );
  for (const result of results) {
    if (result.status === 'rejected' && !isTyped(result.reason)) throw result.reason;
  }
  await peerDone;
  client.close();
  expect(client.closed).toBe(true);
  await expect(client.execute('after-close')).rejects.toBeInstanceOf(QmpClosedError);
  await new Promise((resolve) => setImmediate(resolve));
  expect(closes).toBe(1);
}

describe('fuzz: QmpClient against a QMP peer sending garbage', () => {
  it('never throws out of its socket handlers; commands settle with typed errors; closes once', async () => {
    await checkProperty('qmp-garbage-peer', fc.asyncProperty(qmpCase, runCase), {
      runs: 150,
      timeoutMs: 5_000,
    });
  });
});
