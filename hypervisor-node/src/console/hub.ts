// The daemon's side of guest consoles: one connection per live guest to its console socket (QEMU's chardev server
// for the first serial port), read all the time, so that a guest writing to its serial port is never held up by
// a slow or absent viewer, and fanned out to the one attached session. The connection is made when a guest's QEMU
// is up (Running or Paused, also after a daemon restart re-attached it), made again if it drops while QEMU runs,
// and closed when the guest stops; the session then ends with the reason.
import net from 'node:net';
import type { GuestStatus } from '../model/guest.js';

/** Where the attached session's bytes go. */
export interface ConsoleSession {
  /** Console output, in order. */
  output(data: Buffer): void;
  /** The guest stopped or was deleted: the session is over (`why` for the user). */
  end(why: string): void;
}

/** What the hub uses of the guest supervisor. */
export interface ConsoleRuntime {
  on(event: 'status', listener: (status: GuestStatus) => void): unknown;
  on(event: 'deleted', listener: (name: string) => void): unknown;
  list(): GuestStatus[];
  get(name: string): GuestStatus | undefined;
}

export class ConsoleBusyError extends Error {
  constructor(name: string) {
    super(`the console of guest ${JSON.stringify(name)} is already connected (one session at a time)`);
    this.name = 'ConsoleBusyError';
  }
}

export class ConsoleUnavailableError extends Error {}

/** How long to wait before connecting again after the console socket refused or dropped while QEMU runs. */
const RECONNECT_MS = 500;

const live = (status: GuestStatus | undefined): boolean =>
  status?.phase === 'Running' || status?.phase === 'Paused' || status?.phase === 'Stopping';

class GuestConsole {
  session?: ConsoleSession;
  private socket?: net.Socket;
  private retry?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly socketPath: string,
  ) {}

  connect(): void {
    if (this.closed || this.socket !== undefined || this.retry !== undefined) return;
    const socket = net.createConnection(this.socketPath);
    this.socket = socket;
    socket.on('data', (data: Buffer) => this.session?.output(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      if (this.closed) return;
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.connect();
      }, RECONNECT_MS);
      this.retry.unref();
    });
  }

  /** Keystrokes for the guest; dropped while the socket is (re)connecting. */
  write(data: Buffer): void {
    if (this.socket?.writable === true && this.socket.connecting === false) this.socket.write(data);
  }

  close(why: string): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.destroy();
    this.socket = undefined;
    const session = this.session;
    this.session = undefined;
    session?.end(why);
  }
}

export class ConsoleHub {
  private readonly consoles = new Map<string, GuestConsole>();

  constructor(
    private readonly runtime: ConsoleRuntime,
    private readonly socketPathOf: (name: string) => string,
  ) {}

  /** Follows the runtime's guests from now on, connecting to every live one. */
  start(): void {
    this.runtime.on('status', (status) => this.onStatus(status));
    this.runtime.on('deleted', (name) => this.stop(name, 'the guest was deleted'));
    for (const status of this.runtime.list()) this.onStatus(status);
  }

  /**
   * Attaches `session` to the guest's console. Throws ConsoleUnavailableError when the guest is unknown or not
   * running, ConsoleBusyError when another session is attached. Returns the writer and the detach function.
   */
  attach(name: string, session: ConsoleSession): { write(data: Buffer): void; detach(): void } {
    const status = this.runtime.get(name);
    if (status === undefined) throw new ConsoleUnavailableError(`guest ${JSON.stringify(name)} not found`);
    const guestConsole = this.consoles.get(name);
    if (!live(status) || guestConsole === undefined) {
      throw new ConsoleUnavailableError(
        `guest ${JSON.stringify(name)} is ${status.phase}, its console is closed`,
      );
    }
    if (guestConsole.session !== undefined) throw new ConsoleBusyError(name);
    guestConsole.session = session;
    return {
      write: (data) => {
        if (guestConsole.session === session) guestConsole.write(data);
      },
      detach: () => {
        if (guestConsole.session === session) guestConsole.session = undefined;
      },
    };
  }

  /** Closes every console connection (daemon shutdown); sessions end with `why`. */
  close(why = 'the node daemon is shutting down'): void {
    for (const name of [...this.consoles.keys()]) this.stop(name, why);
  }

  private onStatus(status: GuestStatus): void {
    if (live(status)) {
      let guestConsole = this.consoles.get(status.name);
      if (guestConsole === undefined) {
        guestConsole = new GuestConsole(status.name, this.socketPathOf(status.name));
        this.consoles.set(status.name, guestConsole);
      }
      guestConsole.connect();
    } else if (status.phase === 'Stopped' || status.phase === 'Failed') {
      this.stop(status.name, `the guest ${status.phase === 'Stopped' ? 'stopped' : 'failed'}`);
    }
  }

  private stop(name: string, why: string): void {
    const guestConsole = this.consoles.get(name);
    if (guestConsole === undefined) return;
    this.consoles.delete(name);
    guestConsole.close(why);
  }
}
