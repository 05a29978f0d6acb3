// A client of the guest agent's durable transactions (`TX <payload>` → `OK <seq>` once the record is on the
// guest's disk, guest/README.md). One request in flight; it records every acknowledgement, and every transaction
// whose outcome it cannot know (no reply: connection lost, timeout, an error reply), for `checkDurability`
// (./txlog.ts). It reconnects after an error, asking `endpoint` again, so a test can point it at the target of a
// migration. Bounded: it stops by itself after `transactions` attempts or `durationMs`, whichever comes first.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Ack, ClientRecord } from './txlog.js';

export interface DurableClientOptions {
  /** Payload prefix: the client sends `<name>.0`, `<name>.1`, ... ([A-Za-z0-9_-]). */
  name: string;
  /** Where the service is; asked at every (re)connection. */
  endpoint: () => { host: string; port: number };
  /** Stop after this many transactions were sent. */
  transactions?: number;
  /** Stop after this long. */
  durationMs?: number;
  requestTimeoutMs?: number;
  /** Pause after an error before reconnecting. */
  retryMs?: number;
}

export interface TimedAck extends Ack {
  /** performance.now() when the acknowledgement arrived. */
  atMs: number;
}

export interface DurableClientLog extends ClientRecord {
  acks: TimedAck[];
  unknown: string[];
  /** Errors (connection failures, timeouts, error replies) with their time. */
  errors: { atMs: number; message: string }[];
  sent: number;
}

export interface DurableClient {
  log: DurableClientLog;
  /** Resolves when the client stopped by itself (its bound) or after stop(). */
  done: Promise<DurableClientLog>;
  stop(): Promise<DurableClientLog>;
}

export function startDurableClient(opts: DurableClientOptions): DurableClient {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.name)) throw new Error(`invalid client name ${opts.name}`);
  if (opts.transactions === undefined && opts.durationMs === undefined) {
    throw new Error('a durable client needs a bound: transactions or durationMs');
  }
  const requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;
  const log: DurableClientLog = { name: opts.name, acks: [], unknown: [], errors: [], sent: 0 };
  const stopAt = performance.now() + (opts.durationMs ?? Infinity);
  let running = true;
  let socket: Socket | undefined;
  /** Ends the current wait early: a reply, an error, stop(). */
  let wake: (() => void) | undefined;
  const wait = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const more = (): boolean =>
    running && log.sent < (opts.transactions ?? Infinity) && performance.now() < stopAt;
  const fail = (message: string): void => {
    if (running) log.errors.push({ atMs: performance.now(), message });
  };

  const session = async (): Promise<void> => {
    const { host, port } = opts.endpoint();
    const s = connect({ host, port });
    socket = s;
    s.setNoDelay(true);
    s.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    let buffer = '';
    const lines: string[] = [];
    let failure: Error | undefined;
    s.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        lines.push(buffer.slice(0, newline).trim());
        buffer = buffer.slice(newline + 1);
      }
      wake?.();
    });
    s.on('error', (error) => {
      failure = error;
      wake?.();
    });
    s.on('close', () => {
      failure ??= new Error('connection closed');
      wake?.();
    });
    while (more()) {
      const payload = `${opts.name}.${log.sent}`;
      log.sent++;
      s.write(`TX ${payload}\n`);
      const deadline = Math.min(performance.now() + requestTimeoutMs, stopAt + requestTimeoutMs);
      while (lines.length === 0 && failure === undefined && running) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        await wait(left);
      }
      const reply = lines.shift();
      const m = reply === undefined ? null : /^OK (\d+)$/.exec(reply);
      if (m) {
        log.acks.push({ seq: Number(m[1]), payload, atMs: performance.now() });
        continue;
      }
      log.unknown.push(payload);
      if (reply !== undefined) {
        fail(`reply to TX ${payload}: ${reply}`);
        await wait(opts.retryMs ?? 50);
        continue;
      }
      throw (
        failure ?? new Error(running ? `no reply to TX ${payload} within ${requestTimeoutMs} ms` : 'stopped')
      );
    }
  };

  const done = (async () => {
    while (more()) {
      try {
        await session();
      } catch (error) {
        fail((error as Error).message);
        if (more()) await wait(opts.retryMs ?? 50);
      } finally {
        socket?.destroy();
      }
    }
    return log;
  })();

  return {
    log,
    done,
    async stop() {
      running = false;
      wake?.();
      socket?.destroy();
      return done;
    },
  };
}
