// A closed-loop client of the test guest's transaction service (`INC key` → new value): one request in flight,
// every completion timestamped on the host. It reconnects after an error, so it shows what a real client of a
// migrating guest sees: the pause of the switchover, and no failed transaction outside it.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TransactionLog {
  /** performance.now() of every completed transaction. */
  completions: number[];
  /** Errors (and reconnects) with their time. */
  errors: { atMs: number; message: string }[];
  /** The last counter value the guest returned; it must only ever grow by one. */
  lastValue: number;
  /** Replies that were not the previous value + 1: a lost or repeated transaction. */
  outOfOrder: number;
}

export interface TransactionClient {
  log: TransactionLog;
  stop(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 5_000;

export function startTransactionClient(host: string, port: number, key: string): TransactionClient {
  const log: TransactionLog = { completions: [], errors: [], lastValue: 0, outOfOrder: 0 };
  let running = true;
  let socket: Socket | undefined;

  const session = async (): Promise<void> => {
    socket = connect({ host, port });
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => socket!.once('connect', resolve).once('error', reject));
    let buffer = '';
    const lines: string[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        lines.push(buffer.slice(0, newline).trim());
        buffer = buffer.slice(newline + 1);
      }
      wake?.();
    });
    socket.on('error', (error) => {
      failure = error;
      wake?.();
    });
    socket.on('close', () => {
      failure ??= new Error('connection closed');
      wake?.();
    });
    while (running) {
      socket.write(`INC ${key}\n`);
      const deadline = performance.now() + REQUEST_TIMEOUT_MS;
      while (lines.length === 0 && failure === undefined) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no reply within ${REQUEST_TIMEOUT_MS} ms`);
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(left)]);
      }
      if (failure !== undefined) throw failure;
      const value = Number(lines.shift());
      log.completions.push(performance.now());
      if (log.lastValue !== 0 && value !== log.lastValue + 1) log.outOfOrder++;
      log.lastValue = value;
    }
  };

  const loop = (async () => {
    while (running) {
      try {
        await session();
      } catch (error) {
        if (running) log.errors.push({ atMs: performance.now(), message: (error as Error).message });
        await sleep(50);
      } finally {
        socket?.destroy();
      }
    }
  })();

  return {
    log,
    async stop() {
      running = false;
      socket?.destroy();
      await loop;
    },
  };
}

/** The longest time between two consecutive completed transactions whose pause overlaps [fromMs, toMs]. */
export function longestGap(completions: number[], fromMs = -Infinity, toMs = Infinity): number {
  let gap = 0;
  for (let i = 1; i < completions.length; i++) {
    if (completions[i]! < fromMs || completions[i - 1]! > toMs) continue;
    gap = Math.max(gap, completions[i]! - completions[i - 1]!);
  }
  return gap;
}

/** Transactions per second in consecutive buckets of `bucketMs`, from `startMs` to `endMs`. */
export function throughputSeries(
  completions: number[],
  startMs: number,
  endMs: number,
  bucketMs: number,
): number[] {
  const buckets = new Array<number>(Math.max(1, Math.ceil((endMs - startMs) / bucketMs))).fill(0);
  for (const t of completions) {
    const i = Math.floor((t - startMs) / bucketMs);
    if (i >= 0 && i < buckets.length) buckets[i]!++;
  }
  return buckets.map((count) => (count * 1000) / bucketMs);
}
