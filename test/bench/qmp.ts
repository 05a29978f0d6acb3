// A minimal QMP client for the benchmark (commands in order, events by name).
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export class Qmp {
  readonly #socket: Socket;
  readonly #pending: { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string }[] = [];
  readonly #waiters: { name: string; match: (e: QmpEvent) => boolean; resolve: (e: QmpEvent) => void }[] = [];
  readonly events: QmpEvent[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    createInterface({ input: socket }).on('line', (line) => this.#onLine(line));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const p of this.#pending.splice(0)) p.reject(new Error(`QMP closed during ${p.command}`));
    });
  }

  static async connect(path: string): Promise<Qmp> {
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const qmp = new Qmp(socket);
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  #onLine(line: string): void {
    const message = JSON.parse(line) as {
      QMP?: unknown;
      return?: unknown;
      error?: { desc: string };
    } & Partial<QmpEvent>;
    if (message.QMP) return; // greeting; the first command is queued behind it
    if (message.event) {
      const event = message as QmpEvent;
      this.events.push(event);
      for (const w of [...this.#waiters]) {
        if (w.name === event.event && w.match(event)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
      return;
    }
    const pending = this.#pending.shift();
    if (!pending) return;
    if (message.error) pending.reject(new Error(`${pending.command}: ${message.error.desc}`));
    else pending.resolve(message.return);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ resolve: resolve as (v: unknown) => void, reject, command });
      this.#socket.write(
        JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n',
      );
    });
  }

  /** The first event `name` (already received or still to come) for which `match` holds. */
  waitEvent(name: string, match: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    const seen = this.events.find((e) => e.event === name && match(e));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ name, match, resolve }));
  }

  close(): void {
    this.#socket.destroy();
  }
}
