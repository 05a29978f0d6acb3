import net from 'node:net';
import { startDurableClient } from './durable-client.js';

/** A scripted service: `answer` decides the reply to each TX line (undefined: drop the connection; null: say
 * nothing). */
async function service(answer: (payload: string, n: number) => string | undefined | null): Promise<{
  port: number;
  received: string[];
  close: () => Promise<void>;
}> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        received.push(line);
        const reply = answer(line.replace(/^TX /, ''), received.length);
        if (reply === undefined) s.destroy();
        else if (reply !== null) s.write(`${reply}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received,
    close: async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('startDurableClient', () => {
  it('records acknowledgements, and transactions without a reply as unknown, until its bound', async () => {
    let seq = 0;
    // The 3rd request gets an error reply, the 5th loses its connection; the rest are acknowledged.
    const svc = await service((_, n) => (n === 3 ? 'ERR TX busy' : n === 5 ? undefined : `OK ${++seq}`));
    try {
      const client = startDurableClient({
        name: 't',
        endpoint: () => ({ host: '127.0.0.1', port: svc.port }),
        transactions: 7,
        retryMs: 1,
      });
      const log = await client.done;
      expect(svc.received).toEqual(['t.0', 't.1', 't.2', 't.3', 't.4', 't.5', 't.6'].map((p) => `TX ${p}`));
      expect(log.acks.map(({ seq, payload }) => ({ seq, payload }))).toEqual([
        { seq: 1, payload: 't.0' },
        { seq: 2, payload: 't.1' },
        { seq: 3, payload: 't.3' },
        { seq: 4, payload: 't.5' },
        { seq: 5, payload: 't.6' },
      ]);
      expect(log.unknown).toEqual(['t.2', 't.4']);
      expect(log.sent).toBe(7);
      expect(log.errors.map((e) => e.message)).toEqual(['reply to TX t.2: ERR TX busy', 'connection closed']);
    } finally {
      await svc.close();
    }
  });

  it('gives up on a request after its timeout and stops when asked', async () => {
    const svc = await service((_, n) => (n === 1 ? 'OK 1' : null));
    try {
      const client = startDurableClient({
        name: 's',
        endpoint: () => ({ host: '127.0.0.1', port: svc.port }),
        durationMs: 60_000,
        requestTimeoutMs: 200,
      });
      while (client.log.sent < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      const log = await client.stop();
      expect(log.acks.map((a) => a.payload)).toEqual(['s.0']);
      // Each unanswered transaction's outcome is unknown, the one in flight at stop() included.
      expect(log.unknown.slice(0, 2)).toEqual(['s.1', 's.2']);
      expect(log.unknown.length).toBe(log.sent - 1);
      expect(log.errors[0]?.message).toBe('no reply to TX s.1 within 200 ms');
    } finally {
      await svc.close();
    }
  });

  it('needs a bound and a payload-safe name', () => {
    const endpoint = () => ({ host: '127.0.0.1', port: 1 });
    expect(() => startDurableClient({ name: 'a', endpoint })).toThrow('needs a bound');
    expect(() => startDurableClient({ name: 'a b', endpoint, transactions: 1 })).toThrow(
      'invalid client name',
    );
  });
});
