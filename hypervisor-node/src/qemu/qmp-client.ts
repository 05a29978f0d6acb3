// A QMP client over a unix socket: greeting, capability negotiation, commands matched to replies by id,
// asynchronous events for subscribers, per-command timeouts. QMP frames are one JSON object per line.
import { EventEmitter } from 'node:events';
import net from 'node:net';

export interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string };
    capabilities: string[];
  };
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** QEMU's RunState names (qapi/run-state.json). */
export type QmpRunState =
  | 'debug'
  | 'inmigrate'
  | 'internal-error'
  | 'io-error'
  | 'paused'
  | 'postmigrate'
  | 'prelaunch'
  | 'finish-migrate'
  | 'restore-vm'
  | 'running'
  | 'save-vm'
  | 'shutdown'
  | 'suspended'
  | 'watchdog'
  | 'guest-panicked'
  | 'colo';

export interface QmpStatusInfo {
  running: boolean;
  status: QmpRunState;
}

export interface QmpVersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

/** QEMU's MigrationStatus (query-migrate `status`, MIGRATION events), not the Migration object's status. */
export type QmpMigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover-setup'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'colo'
  | 'pre-switchover'
  | 'device'
  | 'wait-unplug';

export interface MigrationRamStats {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  normal: number;
  'normal-bytes': number;
  'dirty-pages-rate': number;
  mbps: number;
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'multifd-bytes': number;
  'pages-per-second': number;
  'precopy-bytes'?: number;
  'downtime-bytes'?: number;
  'postcopy-bytes'?: number;
}

/** query-migrate's MigrationInfo; every field is optional because QEMU fills them by state. */
export interface QmpMigrationInfo {
  status?: QmpMigrationStatus;
  ram?: MigrationRamStats;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
  'dirty-limit-throttle-time-per-round'?: number;
  'dirty-limit-ring-full-time'?: number;
  /** Where an incoming migration listens (the real port when it was asked to listen on port 0). */
  'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
}

/** migrate-set-parameters arguments we use; QEMU accepts more (pass them through the index signature). */
export interface MigrationParameters {
  'max-bandwidth'?: number;
  'downtime-limit'?: number;
  'avail-switchover-bandwidth'?: number;
  'multifd-channels'?: number;
  'cpu-throttle-initial'?: number;
  'cpu-throttle-increment'?: number;
  'max-postcopy-bandwidth'?: number;
  [name: string]: unknown;
}

export interface MigrationCapabilityStatus {
  capability: string;
  state: boolean;
}

export class QmpCommandError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpCommandError';
  }
}

export class QmpTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`QMP ${command} got no reply within ${timeoutMs} ms`);
    this.name = 'QmpTimeoutError';
  }
}

export class QmpClosedError extends Error {
  constructor(detail: string) {
    super(`QMP connection closed: ${detail}`);
    this.name = 'QmpClosedError';
  }
}

export interface QmpClientOptions {
  /** Default per-command timeout. */
  commandTimeoutMs?: number;
  /** How long connect() waits for the greeting and the capabilities reply. */
  handshakeTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface QmpClientEvents {
  event: [QmpEvent];
  close: [Error | undefined];
}

/**
 * One negotiated QMP session. Emits 'event' for every asynchronous QMP event and 'close' once, with the error
 * that closed it (undefined after close()). After close every pending and later command rejects with
 * QmpClosedError.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly greeting: QmpGreeting;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private closedBy: Error | undefined;
  private isClosed = false;
  private readonly commandTimeoutMs: number;

  private constructor(
    private readonly socket: net.Socket,
    private readonly lines: LineReader,
    greeting: QmpGreeting,
    options: QmpClientOptions,
    /** Out-of-band execution was negotiated. */
    readonly oob: boolean,
  ) {
    super();
    this.greeting = greeting;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    lines.attach(
      (msg) => this.dispatch(msg),
      (err) => this.shutdown(err),
    );
  }

  /**
   * Connects, reads the greeting and negotiates capabilities: out-of-band execution when QEMU offers it (every
   * command carries an id, so replies may come in any order), for the commands that must get through while
   * QEMU's main loop is blocked (executeOob).
   */
  static async connect(socketPath: string, options: QmpClientOptions = {}): Promise<QmpClient> {
    const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const socket = net.createConnection(socketPath);
    const lines = new LineReader(socket);
    try {
      const greeting = await withTimeout(lines.next(), handshakeTimeoutMs, `QMP greeting from ${socketPath}`);
      if (!isRecord(greeting) || !isRecord(greeting.QMP)) {
        throw new Error(`${socketPath} did not greet with QMP: ${JSON.stringify(greeting)}`);
      }
      const capabilities = greeting.QMP.capabilities;
      const oob = Array.isArray(capabilities) && capabilities.includes('oob');
      const negotiate = oob
        ? { execute: 'qmp_capabilities', arguments: { enable: ['oob'] }, id: 'negotiate' }
        : { execute: 'qmp_capabilities', id: 'negotiate' };
      socket.write(`${JSON.stringify(negotiate)}\n`);
      // Events cannot arrive before negotiation completes, so the next message is the reply.
      const reply = await withTimeout(lines.next(), handshakeTimeoutMs, `QMP negotiation on ${socketPath}`);
      if (!isRecord(reply) || !('return' in reply)) {
        throw new Error(`QMP negotiation on ${socketPath} failed: ${JSON.stringify(reply)}`);
      }
      return new QmpClient(socket, lines, greeting as unknown as QmpGreeting, options, oob);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Runs a QMP command; resolves with its `return` value, rejects with QmpCommandError/QmpTimeoutError/QmpClosedError. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    return this.send('execute', command, args, options.timeoutMs);
  }

  /**
   * Runs an out-of-band command (e.g. `yank`): QEMU's monitor thread answers it even while the main loop waits on
   * the big lock. Rejects at once when out-of-band execution was not negotiated.
   */
  executeOob<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (!this.oob) return Promise.reject(new Error(`QEMU offers no out-of-band QMP for ${command}`));
    return this.send('exec-oob', command, args, timeoutMs);
  }

  private send<T>(
    verb: 'execute' | 'exec-oob',
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs = this.commandTimeoutMs,
  ): Promise<T> {
    if (this.isClosed) return Promise.reject(new QmpClosedError(this.closedBy?.message ?? 'closed'));
    const id = `c${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      const frame = args === undefined ? { [verb]: command, id } : { [verb]: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(frame)}\n`);
    });
  }

  /** Resolves with the next event named `name` that satisfies `match`; rejects on timeout or close. */
  waitForEvent(
    name: string,
    timeoutMs: number,
    match: (event: QmpEvent) => boolean = () => true,
  ): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (event: QmpEvent): void => {
        if (event.event !== name || !match(event)) return;
        cleanup();
        resolve(event);
      };
      const onClose = (err: Error | undefined): void => {
        cleanup();
        reject(new QmpClosedError(`while waiting for ${name}: ${err?.message ?? 'closed'}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no QMP ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      if (this.isClosed) return onClose(this.closedBy);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  close(): void {
    this.shutdown(undefined);
  }

  queryStatus(): Promise<QmpStatusInfo> {
    return this.execute<QmpStatusInfo>('query-status');
  }

  queryVersion(): Promise<QmpVersionInfo> {
    return this.execute<QmpVersionInfo>('query-version');
  }

  queryMigrate(): Promise<QmpMigrationInfo> {
    return this.execute<QmpMigrationInfo>('query-migrate');
  }

  async migrateSetCapabilities(capabilities: Record<string, boolean>): Promise<void> {
    const list = Object.entries(capabilities).map(([capability, state]) => ({ capability, state }));
    await this.execute('migrate-set-capabilities', { capabilities: list });
  }

  queryMigrateCapabilities(): Promise<MigrationCapabilityStatus[]> {
    return this.execute<MigrationCapabilityStatus[]>('query-migrate-capabilities');
  }

  async migrateSetParameters(parameters: MigrationParameters): Promise<void> {
    await this.execute('migrate-set-parameters', parameters);
  }

  queryMigrateParameters(): Promise<MigrationParameters> {
    return this.execute<MigrationParameters>('query-migrate-parameters');
  }

  async stop(): Promise<void> {
    await this.execute('stop');
  }

  async cont(): Promise<void> {
    await this.execute('cont');
  }

  async systemPowerdown(): Promise<void> {
    await this.execute('system_powerdown');
  }

  /** Asks QEMU to exit; QEMU may close the socket before or right after its reply, both count as success. */
  async quit(): Promise<void> {
    try {
      await this.execute('quit');
    } catch (err) {
      if (!(err instanceof QmpClosedError)) throw err;
    }
  }

  private dispatch(msg: unknown): void {
    if (!isRecord(msg)) return;
    if (typeof msg.event === 'string') {
      this.emit('event', msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    // A reply without a known id belongs to a command that already timed out.
    if (id === undefined || pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ('return' in msg) {
      pending.resolve(msg.return);
    } else {
      const error = isRecord(msg.error) ? msg.error : {};
      pending.reject(
        new QmpCommandError(pending.command, errorText(error.class, 'Unknown'), errorText(error.desc, '')),
      );
    }
  }

  private shutdown(err: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closedBy = err;
    this.socket.destroy();
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(
        new QmpClosedError(`${pending.command} was in flight: ${err?.message ?? 'closed by client'}`),
      );
    }
    this.pending.clear();
    this.emit('close', err);
  }
}

/** Splits a socket's byte stream into JSON messages, one per line; a frame may span or share chunks. */
class LineReader {
  private buffer = '';
  private readonly queue: unknown[] = [];
  private waiter: { resolve: (msg: unknown) => void; reject: (err: Error) => void } | undefined;
  private consumer: { onMessage: (msg: unknown) => void; onEnd: (err: Error) => void } | undefined;
  private ended: Error | undefined;

  constructor(socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.push(chunk));
    socket.on('error', (err) => this.end(err));
    socket.on('close', () => this.end(new QmpClosedError('peer closed the socket')));
  }

  /** The next message, for the handshake before a consumer is attached. */
  next(): Promise<unknown> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * Hands every further message to the consumer. Messages that arrived with the handshake are delivered on
   * the next macrotask, so whoever awaited connect() can subscribe first.
   */
  attach(onMessage: (msg: unknown) => void, onEnd: (err: Error) => void): void {
    setImmediate(() => {
      this.consumer = { onMessage, onEnd };
      for (const msg of this.queue.splice(0)) onMessage(msg);
      if (this.ended !== undefined) onEnd(this.ended);
    });
  }

  private push(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while (this.ended === undefined && (newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line.length === 0) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        this.end(new Error(`QMP peer sent invalid JSON: ${line.slice(0, 200)}`));
        return;
      }
      this.deliver(msg);
    }
  }

  private deliver(msg: unknown): void {
    if (this.waiter !== undefined) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve(msg);
    } else if (this.consumer !== undefined) {
      this.consumer.onMessage(msg);
    } else {
      this.queue.push(msg);
    }
  }

  private end(err: Error): void {
    if (this.ended !== undefined) return;
    this.ended = err;
    this.waiter?.reject(err);
    this.waiter = undefined;
    this.consumer?.onEnd(err);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A field of a QMP error as text. Not String(): a peer's `{"toString": 1}` would make it throw inside the socket's
 * data handler, which crashes the daemon.
 */
function errorText(value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
