import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient, gapStats, maxGap, parseVerify, type Heartbeat } from './agent-client.js';
import { logDigest } from './txlog.js';

// A scripted agent: records the lines the client sends and lets the test write raw bytes back.
class ScriptedAgent {
  readonly received: string[] = [];
  private peer: net.Socket | undefined;
  private readonly server: net.Server;
  private onLine: ((line: string) => void) | undefined;

  constructor(readonly socketPath: string) {
    this.server = net.createServer((s) => {
      this.peer = s;
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.received.push(line);
          this.onLine?.(line);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }

  /** Answers every received command line with reply(line) (undefined = stay silent). */
  answer(reply: (line: string) => string | undefined): void {
    this.onLine = (line) => {
      const out = reply(line);
      if (out !== undefined) this.send(out);
    };
  }

  send(raw: string): void {
    this.peer!.write(raw);
  }

  async connected(): Promise<void> {
    while (!this.peer) await sleep(5);
  }

  close(): Promise<void> {
    this.peer?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const STATS_JSON = (ready: boolean): string =>
  JSON.stringify({ ready, wss_mib: 4, pages: 1024, filled: ready ? 1024 : 10, writes: 1024, hb_seq: 7 });

describe('AgentClient against a scripted agent', () => {
  let dir: string;
  let agent: ScriptedAgent;
  let client: AgentClient | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-agent-client-'));
    agent = new ScriptedAgent(path.join(dir, 'agent.sock'));
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    await agent.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('retries until the socket exists, then records heartbeats split across chunks', async () => {
    const connecting = AgentClient.connect(agent.socketPath, { timeoutMs: 5_000, retryMs: 10 });
    await sleep(100);
    await agent.listen();
    client = await connecting;
    await agent.connected();

    agent.send('HB 1\nHB 2\nH');
    await sleep(30);
    agent.send('B 3\n12\nHB x\n');
    await sleep(30);

    expect(client.heartbeats.map((h) => h.seq)).toEqual([1, 2, 3]);
    expect(client.heartbeats[2]!.t).toBeGreaterThan(client.heartbeats[1]!.t);
    expect(client.heartbeats[0]!.wallMs).toBeGreaterThan(Date.now() - 10_000);
    expect(client.unparsed).toEqual(['12', 'HB x']);
  });

  it('keeps only the newest heartbeats', async () => {
    await agent.listen();
    client = await AgentClient.connect(agent.socketPath, { keepHeartbeats: 10 });
    await agent.connected();
    agent.send(Array.from({ length: 25 }, (_, i) => `HB ${i}\n`).join(''));
    await sleep(30);
    expect(client.heartbeats.length).toBeLessThanOrEqual(11);
    expect(client.heartbeats[client.heartbeats.length - 1]!.seq).toBe(24);
  });

  it('reads the transaction log page by page and checks the pages against the digest', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ seq: i + 1, payload: `c.${i}` }));
    const summary = (digest: string): string =>
      `TXLOG OK dev=/dev/vda id=00000000000000ab slot=4096 capacity=100 records=40 last=40 end=blank ` +
      `digest=${digest} acked=40 recovered=0 recovered_end=blank write_cache=write_back\n`;
    let digest = logDigest(records);
    agent.answer((line) => {
      if (line === 'TXLOG') return summary(digest);
      const [, from, count] = line.split(' ').map(Number);
      const page = records.slice(from! - 1, from! - 1 + count!);
      return `TXLOG LIST from=${from} n=${page.length} end=none ${page.map((r) => `${r.seq}:${r.payload}`).join(' ')}\n`;
    });
    await agent.listen();
    client = await AgentClient.connect(agent.socketPath);
    await agent.connected();
    const read = await client.readTxLog();
    expect(read.records).toEqual(records);
    expect(read.summary).toMatchObject({
      id: '00000000000000ab',
      last: 40,
      end: 'blank',
      writeCache: 'write_back',
    });
    expect(agent.received.filter((l) => l.startsWith('TXLOG '))).toEqual(['TXLOG 1 32', 'TXLOG 33 8']);

    digest = logDigest(records.slice(1));
    await expect(client.readTxLog()).rejects.toThrow(
      /listing of seqs 1\.\.40 has digest [0-9a-f]{16}, the summary/,
    );
  });

  it('fails with a clear error when the socket never appears', async () => {
    await expect(AgentClient.connect(agent.socketPath, { timeoutMs: 100, retryMs: 10 })).rejects.toThrow(
      /cannot connect to agent socket/,
    );
  });

  it('waitReady resolves on READY', async () => {
    await agent.listen();
    client = await AgentClient.connect(agent.socketPath);
    await agent.connected();
    const waiting = client.waitReady(2_000, 1_000);
    agent.send(
      'READY {"pages":1024,"wss_mib":4,"fill_ms":12,"uptime_ms":900,"dirty_pps":0,"hb_ms":5,"net":false}\n',
    );
    const info = await waiting;
    expect(info).toMatchObject({ pages: 1024, fill_ms: 12 });
    expect(client.ready?.uptime_ms).toBe(900);
  });

  it('waitReady learns readiness from STATS when READY was sent before it connected', async () => {
    await agent.listen();
    let polls = 0;
    agent.answer((line) => (line === 'STATS' ? `STATS ${STATS_JSON(++polls >= 2)}\n` : undefined));
    client = await AgentClient.connect(agent.socketPath);
    const info = await client.waitReady(3_000, 50);
    expect(info).toMatchObject({ ready: true, pages: 1024 });
    expect(polls).toBe(2);
  });

  it('waitReady times out when the agent never becomes ready', async () => {
    await agent.listen();
    agent.answer((line) => (line === 'STATS' ? `STATS ${STATS_JSON(false)}\n` : undefined));
    client = await AgentClient.connect(agent.socketPath);
    await expect(client.waitReady(200, 50)).rejects.toThrow(/not ready after 200 ms/);
  });

  it('routes replies by command even when they come back out of order', async () => {
    await agent.listen();
    client = await AgentClient.connect(agent.socketPath);
    await agent.connected();

    const verifying = client.verify(2_000);
    const stats = client.stats(2_000);
    await sleep(30);
    expect(agent.received).toEqual(['VERIFY', 'STATS']);
    agent.send(`HB 5\nSTATS ${STATS_JSON(true)}\n`);
    await expect(stats).resolves.toMatchObject({ ready: true, hb_seq: 7 });
    agent.send('VERIFY FAIL page=17 expected=4 got=3 word=1 bad_pages=1 pages=1024 writes=5000 ms=30\n');
    await expect(verifying).resolves.toEqual({
      ok: false,
      pages: 1024,
      writes: 5000,
      page: 17,
      expected: 4,
      got: 3,
      detail: 'FAIL page=17 expected=4 got=3 word=1 bad_pages=1 pages=1024 writes=5000 ms=30',
    });
  });

  it('sends DIRTY and CORRUPT and parses their replies; ERR rejects', async () => {
    await agent.listen();
    agent.answer((line) => {
      if (line.startsWith('DIRTY ')) return `DIRTY OK pps=${line.split(' ')[1]}\n`;
      if (line === 'CORRUPT 99999') return 'ERR CORRUPT usage: CORRUPT <page 0..1023>\n';
      if (line.startsWith('CORRUPT ')) return `CORRUPT OK page=${line.split(' ')[1]} stale=2 expected=3\n`;
      return undefined;
    });
    client = await AgentClient.connect(agent.socketPath);
    await expect(client.setDirtyRate(20000)).resolves.toBe(20000);
    await expect(client.corrupt(12)).resolves.toEqual({ page: 12, stale: 2, expected: 3 });
    await expect(client.corrupt(99999)).rejects.toThrow(/ERR CORRUPT usage/);
    await expect(client.setDirtyRate(-1)).rejects.toThrow(/invalid dirty rate/);
    expect(agent.received).toEqual(['DIRTY 20000', 'CORRUPT 12', 'CORRUPT 99999']);
  });

  it('times out a silent request and rejects pending ones when the connection closes', async () => {
    await agent.listen();
    client = await AgentClient.connect(agent.socketPath);
    await agent.connected();
    await expect(client.stats(50)).rejects.toThrow(/did not answer STATS within 50 ms/);
    const verifying = client.verify(5_000);
    await sleep(20);
    await agent.close();
    await expect(verifying).rejects.toThrow(/connection closed/);
    expect(client.closed).toBe(true);
    await expect(client.stats()).rejects.toThrow(/connection closed/);
  });
});

describe('heartbeat gap helpers', () => {
  const beats = (times: number[]): Heartbeat[] => times.map((t, i) => ({ seq: i, t, wallMs: t }));

  it('computes max and percentiles over the window of the later beat', () => {
    const hb = beats([0, 5, 10, 15, 60, 65, 70]);
    expect(maxGap(hb)).toBe(45);
    expect(maxGap(hb, 0, 15)).toBe(5);
    expect(maxGap(hb, 60, 60)).toBe(45);
    expect(gapStats(hb)).toEqual({ count: 6, p50: 5, p99: 45, max: 45 });
    expect(gapStats([])).toEqual({ count: 0, p50: 0, p99: 0, max: 0 });
  });

  it('parses VERIFY OK', () => {
    expect(parseVerify('VERIFY OK pages=65536 writes=123 ms=800')).toEqual({
      ok: true,
      pages: 65536,
      writes: 123,
      detail: 'OK pages=65536 writes=123 ms=800',
    });
  });
});
