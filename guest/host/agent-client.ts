// Host side of the tern guest agent's line protocol (see guest/README.md). The agent channel is QEMU's
// `-chardev socket,id=agent,path=<dir>/agent.sock,server=on,wait=off`; this client connects to it, records
// every heartbeat with a host timestamp, and sends commands.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { logDigest, type LogEnd, type TxRecord } from './txlog.js';

export interface Heartbeat {
  seq: number;
  /** performance.now() when the chunk holding the line arrived. */
  t: number;
  /** Date.now() equivalent of t (performance.timeOrigin + t), comparable across processes. */
  wallMs: number;
}

export interface ReadyInfo {
  pages: number;
  wss_mib: number;
  fill_ms: number;
  uptime_ms: number;
  dirty_pps: number;
  hb_ms: number;
  net: boolean;
}

export interface AgentStats {
  ready: boolean;
  wss_mib: number;
  pages: number;
  filled: number;
  writes: number;
  dirty_pps: number;
  hb_ms: number;
  hb_seq: number;
  hb_late: number;
  fill_ms: number;
  uptime_ms: number;
  agent_ms: number;
  verify_runs: number;
  verify_last_ms: number;
  out_dropped: number;
  tx: number;
  net: boolean;
}

export interface VerifyResult {
  ok: boolean;
  pages: number;
  writes: number;
  /** The agent's reply line without the leading `VERIFY `. */
  detail: string;
  /** First bad page, when the agent names one. */
  page?: number;
  expected?: number;
  got?: number;
}

export interface CorruptResult {
  page: number;
  stale: number;
  expected: number;
}

export interface GapStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ConnectOptions {
  /** Give up connecting after this long (the socket may not exist yet while QEMU starts). */
  timeoutMs?: number;
  retryMs?: number;
  /** Heartbeats kept in `heartbeats` (oldest dropped first); default 120000, 10 minutes at 5 ms. */
  keepHeartbeats?: number;
}

/** The agent's `TXLOG` reply: the transaction log as read from the disk at that moment. */
export interface TxLogSummary {
  dev: string;
  id: string;
  capacity: number;
  records: number;
  /** The last seq in the log (0 when empty); the log is seqs 1..last. */
  last: number;
  end: LogEnd | 'none';
  digest: string;
  /** Transactions acknowledged since the agent started. */
  acked: number;
  /** Records found on the disk when the agent started, and what ended them. */
  recovered: number;
  recoveredEnd: LogEnd;
  /** The guest's view of the device's write cache (`write_back` when flushes reach the disk). */
  writeCache: string;
}

export interface TxLogContents {
  summary: TxLogSummary;
  records: TxRecord[];
}

type Command = 'VERIFY' | 'STATS' | 'DIRTY' | 'CORRUPT' | 'TXLOG';
const COMMANDS: readonly string[] = ['VERIFY', 'STATS', 'DIRTY', 'CORRUPT', 'TXLOG'];
/** Records per `TXLOG <from> <count>` (the agent's limit). */
const TXLOG_PAGE = 32;

interface Pending {
  resolve: (reply: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Parses `key=value` tokens of a reply line; non-numeric values are skipped. */
export function parseFields(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tok of text.split(' ')) {
    const eq = tok.indexOf('=');
    if (eq <= 0) continue;
    const value = Number(tok.slice(eq + 1));
    if (Number.isFinite(value)) out[tok.slice(0, eq)] = value;
  }
  return out;
}

/** Parses `key=value` tokens of a reply line as strings. */
export function parseTokens(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tok of text.split(' ')) {
    const eq = tok.indexOf('=');
    if (eq > 0) out[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return out;
}

export function parseTxLogSummary(line: string): TxLogSummary {
  const t = parseTokens(line);
  const num = (key: string): number => {
    const value = Number(t[key]);
    if (!Number.isSafeInteger(value)) throw new Error(`TXLOG reply without ${key}: ${line}`);
    return value;
  };
  return {
    dev: t.dev ?? '',
    id: t.id ?? '',
    capacity: num('capacity'),
    records: num('records'),
    last: num('last'),
    end: (t.end ?? 'none') as TxLogSummary['end'],
    digest: t.digest ?? '',
    acked: num('acked'),
    recovered: num('recovered'),
    recoveredEnd: (t.recovered_end ?? 'blank') as LogEnd,
    writeCache: t.write_cache ?? 'unknown',
  };
}

/** Parses `TXLOG LIST from=<s> n=<k> end=<why> <seq>:<payload>...`. */
export function parseTxLogList(line: string): { records: TxRecord[]; end: string } {
  const records: TxRecord[] = [];
  for (const tok of line.split(' ').slice(2)) {
    const m = /^(\d+):(.*)$/.exec(tok);
    if (m) records.push({ seq: Number(m[1]), payload: m[2]! });
  }
  return { records, end: parseTokens(line).end ?? 'none' };
}

export function parseVerify(line: string): VerifyResult {
  const detail = line.replace(/^VERIFY /, '');
  const f = parseFields(detail);
  const result: VerifyResult = {
    ok: detail.startsWith('OK'),
    pages: f.pages ?? 0,
    writes: f.writes ?? 0,
    detail,
  };
  if (f.page !== undefined) result.page = f.page;
  if (f.expected !== undefined) result.expected = f.expected;
  if (f.got !== undefined) result.got = f.got;
  return result;
}

/** Gaps between consecutive heartbeats whose later beat arrived in [fromMs, toMs] (performance.now() ms). */
export function heartbeatGaps(beats: readonly Heartbeat[], fromMs = -Infinity, toMs = Infinity): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < beats.length; i++) {
    const prev = beats[i - 1]!;
    const cur = beats[i]!;
    if (cur.t >= fromMs && cur.t <= toMs) gaps.push(cur.t - prev.t);
  }
  return gaps;
}

export function maxGap(beats: readonly Heartbeat[], fromMs?: number, toMs?: number): number {
  return heartbeatGaps(beats, fromMs, toMs).reduce((a, b) => Math.max(a, b), 0);
}

export function gapStats(beats: readonly Heartbeat[], fromMs?: number, toMs?: number): GapStats {
  const gaps = heartbeatGaps(beats, fromMs, toMs).sort((a, b) => a - b);
  const at = (q: number): number => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] ?? 0;
  return { count: gaps.length, p50: at(0.5), p99: at(0.99), max: gaps[gaps.length - 1] ?? 0 };
}

/**
 * One connection to one QEMU's agent socket. After a live migration, connect a new client to the target's
 * socket; heartbeats of both can be concatenated to measure the guest-perceived pause.
 * Events: 'heartbeat' (Heartbeat), 'ready' (ReadyInfo), 'close'.
 */
export class AgentClient extends EventEmitter {
  readonly heartbeats: Heartbeat[] = [];
  /** Lines that are neither heartbeats nor replies (e.g. half a line cut by a migration or a reconnect). */
  readonly unparsed: string[] = [];
  ready: ReadyInfo | undefined;
  closed = false;
  private buf = '';
  private readonly pending = new Map<Command, Pending[]>();

  private constructor(
    private readonly socket: net.Socket,
    private readonly keepHeartbeats: number,
  ) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk, performance.now()));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      for (const queue of this.pending.values()) {
        for (const p of queue.splice(0)) {
          clearTimeout(p.timer);
          p.reject(new Error('agent connection closed'));
        }
      }
      this.emit('close');
    });
  }

  /** Connects to the agent socket, retrying while it does not exist or refuses (QEMU still starting). */
  static async connect(path: string, opts: ConnectOptions = {}): Promise<AgentClient> {
    const deadline = performance.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(path);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        return new AgentClient(socket, opts.keepHeartbeats ?? 120_000);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || performance.now() >= deadline) {
          throw new Error(`cannot connect to agent socket ${path}: ${(err as Error).message}`);
        }
        await sleep(opts.retryMs ?? 20);
      }
    }
  }

  /**
   * Resolves with the READY payload. READY is sent once; a client that connected later learns readiness
   * from STATS, polled every pollMs.
   */
  async waitReady(timeoutMs = 60_000, pollMs = 500): Promise<ReadyInfo | AgentStats> {
    if (this.ready) return this.ready;
    const deadline = performance.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, value?: ReadyInfo | AgentStats): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.off('ready', onReady);
        if (err) reject(err);
        else resolve(value!);
      };
      const onReady = (info: ReadyInfo): void => finish(undefined, info);
      const poll = (): void => {
        if (done) return;
        if (performance.now() >= deadline || this.closed) {
          finish(new Error(`agent not ready after ${timeoutMs} ms`));
          return;
        }
        this.stats(pollMs)
          .then((s) => (s.ready ? finish(undefined, s) : undefined))
          .catch(() => undefined)
          .finally(() => {
            if (!done) timer = setTimeout(poll, pollMs);
          });
      };
      let timer = setTimeout(poll, pollMs);
      this.on('ready', onReady);
    });
  }

  async verify(timeoutMs = 60_000): Promise<VerifyResult> {
    return parseVerify(await this.request('VERIFY', 'VERIFY', timeoutMs));
  }

  async stats(timeoutMs = 5_000): Promise<AgentStats> {
    const line = await this.request('STATS', 'STATS', timeoutMs);
    return JSON.parse(line.slice('STATS '.length)) as AgentStats;
  }

  /** Changes the agent's dirty rate (pages per second, 0 = idle); resolves with the rate the agent applied. */
  async setDirtyRate(pps: number, timeoutMs = 5_000): Promise<number> {
    if (!Number.isSafeInteger(pps) || pps < 0) throw new Error(`invalid dirty rate ${pps}`);
    const line = await this.request('DIRTY', `DIRTY ${pps}`, timeoutMs);
    return parseFields(line).pps ?? Number.NaN;
  }

  /** Debug: makes page `page` look exactly like a page lost by a migration (a complete, older version). */
  async corrupt(page: number, timeoutMs = 5_000): Promise<CorruptResult> {
    const f = parseFields(await this.request('CORRUPT', `CORRUPT ${page}`, timeoutMs));
    return { page: f.page ?? Number.NaN, stale: f.stale ?? Number.NaN, expected: f.expected ?? Number.NaN };
  }

  /** Reads the transaction log from the guest's disk: where it ends, how many records, their digest. */
  async txlog(timeoutMs = 60_000): Promise<TxLogSummary> {
    return parseTxLogSummary(await this.request('TXLOG', 'TXLOG', timeoutMs));
  }

  /** Up to `count` (at most 32) records from seq `from` on, read from the disk. */
  async txlogList(from: number, count = TXLOG_PAGE, timeoutMs = 10_000): Promise<TxRecord[]> {
    return parseTxLogList(await this.request('TXLOG', `TXLOG ${from} ${count}`, timeoutMs)).records;
  }

  /**
   * The whole log, while the guest keeps running: the summary, then seqs 1..last page by page. The log only
   * grows, so the pages must match the summary's digest; a mismatch means the disk changed under the reader.
   */
  async readTxLog(): Promise<TxLogContents> {
    const summary = await this.txlog();
    const records: TxRecord[] = [];
    while (records.length < summary.last) {
      const page = await this.txlogList(
        records.length + 1,
        Math.min(TXLOG_PAGE, summary.last - records.length),
      );
      if (page.length === 0)
        throw new Error(`TXLOG listing ended at seq ${records.length} of ${summary.last}`);
      records.push(...page);
    }
    const digest = logDigest(records);
    if (digest !== summary.digest) {
      throw new Error(
        `TXLOG listing of seqs 1..${summary.last} has digest ${digest}, the summary ${summary.digest}`,
      );
    }
    return { summary, records };
  }

  maxGap(fromMs?: number, toMs?: number): number {
    return maxGap(this.heartbeats, fromMs, toMs);
  }

  gapStats(fromMs?: number, toMs?: number): GapStats {
    return gapStats(this.heartbeats, fromMs, toMs);
  }

  close(): void {
    this.socket.destroy();
  }

  private request(kind: Command, line: string, timeoutMs: number): Promise<string> {
    if (this.closed) return Promise.reject(new Error('agent connection closed'));
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(kind) ?? [];
      this.pending.set(kind, queue);
      const entry: Pending = {
        resolve,
        reject,
        timer: setTimeout(() => {
          queue.splice(queue.indexOf(entry), 1);
          reject(new Error(`agent did not answer ${line} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      queue.push(entry);
      this.socket.write(`${line}\n`);
    });
  }

  private onData(chunk: string, t: number): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line, t);
    }
  }

  private onLine(line: string, t: number): void {
    const space = line.indexOf(' ');
    const word = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    if (word === 'HB' && /^\d+$/.test(rest)) {
      const hb: Heartbeat = { seq: Number(rest), t, wallMs: performance.timeOrigin + t };
      this.heartbeats.push(hb);
      // Trim in batches so a long-lived client does not shift the array on every beat.
      if (this.heartbeats.length > this.keepHeartbeats * 1.1) {
        this.heartbeats.splice(0, this.heartbeats.length - this.keepHeartbeats);
      }
      this.emit('heartbeat', hb);
    } else if (word === 'READY') {
      try {
        this.ready = JSON.parse(rest) as ReadyInfo;
        this.emit('ready', this.ready);
      } catch {
        this.unparsed.push(line);
      }
    } else if (COMMANDS.includes(word)) {
      this.answer(word as Command, line, undefined);
    } else if (word === 'ERR' && COMMANDS.includes(rest.split(' ')[0] ?? '')) {
      this.answer(rest.split(' ')[0] as Command, line, new Error(`agent: ${line}`));
    } else {
      this.unparsed.push(line);
    }
  }

  private answer(kind: Command, line: string, err: Error | undefined): void {
    const p = this.pending.get(kind)?.shift();
    if (!p) {
      this.unparsed.push(line);
      return;
    }
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(line);
  }
}
