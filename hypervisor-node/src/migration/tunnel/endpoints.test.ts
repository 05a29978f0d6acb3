import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { openSourceEndpoint } from './source-endpoint.js';
import { openTargetEndpoint, type TargetEndpoint } from './target-endpoint.js';
import { pattern, readAll, socketDir, socketPair } from './test-sockets.js';
import { dialLink, listenForLinks, type LinkListener, type LinkTls } from './tls-link.js';
import { MigrationTokenRegistry, newMigrationToken } from './token.js';

const testdata = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`testdata/${name}`, import.meta.url)), 'utf8');
const tlsOf = (leaf: string, ca = 'cluster-ca'): LinkTls => ({
  ca: testdata(`${ca}.crt`),
  cert: testdata(`${leaf}.crt`),
  key: testdata(`${leaf}.key`),
});

/** A stand-in for the target QEMU's incoming socket: records connections in accept order. */
async function fakeIncomingQemu(path: string): Promise<{ server: Server; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, accepted };
}

const connectUnix = (path: string): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });

describe('source and target endpoints over TLS links', () => {
  const dir = socketDir();
  const tokens = new MigrationTokenRegistry();
  const targets = new Map<string, TargetEndpoint>();
  const refusals: string[] = [];
  let listener: LinkListener;
  let n = 0;

  beforeAll(async () => {
    listener = await listenForLinks({
      host: '127.0.0.1',
      port: 0,
      tls: tlsOf('node-b'),
      admit: tokens.admit.bind(tokens),
      // accept() rejects when the tunnel is torn down first; the endpoint's results report that.
      onLink: (link, admission) =>
        void targets
          .get(admission.migrationId)!
          .accept(link, admission.channelIndex)
          .catch(() => undefined),
      onRefused: (reason) => refusals.push(reason),
    });
  });
  afterAll(async () => {
    await listener.close();
    dir.remove();
  });

  /** One migration's tunnel: the source endpoint (where QEMU migrates into) and the fake target QEMU. */
  async function tunnel(channels: number) {
    const id = `m${n++}`;
    const token = newMigrationToken();
    tokens.grant(id, token, channels, Date.now() + 60_000);
    const qemu = await fakeIncomingQemu(dir.path(`${id}-in`));
    const target = openTargetEndpoint({ qemuSocketPath: dir.path(`${id}-in`), channels });
    targets.set(id, target);
    const socketPath = dir.path(`${id}-out`);
    const source = await openSourceEndpoint({
      socketPath,
      channels,
      connect: (channelIndex) =>
        dialLink({ host: '127.0.0.1', port: listener.port, tls: tlsOf('node-a'), token, channelIndex }),
    });
    return { token, qemu, source, target, socketPath };
  }

  it('carries every QEMU connection in order over its own link, both ways, then removes the socket file', async () => {
    const { qemu, source, target, socketPath } = await tunnel(3);
    const sent = [0, 1, 2].map((i) =>
      Buffer.concat([Buffer.from(`channel ${i}\n`), pattern((i + 1) << 20, i)]),
    );
    const replies: Promise<Buffer>[] = [];
    for (const data of sent) {
      const qemuConnection = await connectUnix(socketPath); // QEMU opens the main channel first, then multifd
      replies.push(readAll(qemuConnection));
      qemuConnection.end(data);
    }
    await waitFor(() => qemu.accepted.length === 3);
    const received = await Promise.all(qemu.accepted.map((socket) => readAll(socket)));
    received.forEach((data, i) => expect(data.equals(sent[i]!)).toBe(true));
    qemu.accepted.forEach((socket, i) => socket.end(`reply ${i}`)); // the return path
    expect((await Promise.all(replies)).map(String)).toEqual(['reply 0', 'reply 1', 'reply 2']);

    const [sourceResults, targetResults] = await Promise.all([source.done, target.done]);
    expect([...sourceResults, ...targetResults].every((r) => r.error === undefined)).toBe(true);
    expect(source.stats().map((s) => [s.index, s.toTarget.bytes, s.toSource.bytes])).toEqual(
      sent.map((data, i) => [i, data.length, `reply ${i}`.length]),
    );
    expect(target.stats().map((s) => s.toTarget.bytes)).toEqual(sent.map((data) => data.length));
    expect(existsSync(socketPath)).toBe(false);
    qemu.server.close();
  });

  it('connects links to the target QEMU in channel order whatever order they arrive in', async () => {
    const qemu = await fakeIncomingQemu(dir.path('order-in'));
    const target = openTargetEndpoint({ qemuSocketPath: dir.path('order-in'), channels: 2 });
    const [link1, far1] = await socketPair(dir.path('order-l1'));
    const [link0, far0] = await socketPair(dir.path('order-l0'));
    far1.write('multifd');
    far0.write('main');
    const second = target.accept(link1, 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(qemu.accepted).toHaveLength(0); // channel 1 waits for channel 0
    await Promise.all([target.accept(link0, 0), second]);
    const first = await new Promise<Buffer>((resolve) => qemu.accepted[0]!.once('data', resolve));
    expect(first.toString()).toBe('main');
    await expect(target.accept(link0, 0)).rejects.toThrow(/channel 0 is not expected/);
    await target.close();
    qemu.server.close();
  });

  it('refuses unknown and replayed tokens and peers from another CA', async () => {
    const { token, source, target, qemu } = await tunnel(1);
    const dial = (t: string, tls = tlsOf('node-a')) =>
      dialLink({ host: '127.0.0.1', port: listener.port, tls, token: t, channelIndex: 0 });
    await expect(dial(newMigrationToken())).rejects.toThrow(/refused by the target/);
    const admitted = await dial(token);
    await expect(dial(token)).rejects.toThrow(/refused by the target/);
    // A client certificate from another CA (the client itself trusts the cluster CA, so the server decides).
    await expect(dial(token, tlsOf('intruder'))).rejects.toThrow();
    await waitFor(() => refusals.some((r) => r.startsWith('TLS: ')));
    expect(refusals).toEqual(expect.arrayContaining(['unknown token', 'channel 0 already used']));
    admitted.destroy();
    await Promise.all([source.close(), target.close()]);
    qemu.server.close();
  });

  it('tears every connection down on close() and removes the socket file', async () => {
    const { qemu, source, target, socketPath } = await tunnel(2);
    const main = await connectUnix(socketPath);
    main.write('partial state');
    await waitFor(() => qemu.accepted.length === 1);
    const sourceSeesEnd = readAll(main);
    const targetSeesEnd = readAll(qemu.accepted[0]!);
    await source.close(new Error('migration cancelled'));
    await Promise.all([sourceSeesEnd, targetSeesEnd]);
    expect((await source.done)[0]!.error?.message).toBe('migration cancelled');
    expect(existsSync(socketPath)).toBe(false);
    await expect(connectUnix(socketPath)).rejects.toThrow();
    await target.close();
    qemu.server.close();
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
