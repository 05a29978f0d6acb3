// A TCP link between two endpoints on loopback that a test can cut: every connection accepted on its own port is
// piped to the target; cut() breaks every connection at once (both peers see the stream end, as when a link between
// two nodes drops) and refuses new ones until restore(). With `bytesPerSec` it is also a slow link: each direction
// carries at most that many bytes a second, all its connections together (a sender is paused until its bytes
// would have crossed such a link).
import net from 'node:net';

/** One direction of a rate-limited link: when the link is free again. */
class Pace {
  private freeAtMs = 0;

  constructor(private readonly bytesPerSec: number) {}

  /** Books `bytes` on the link; returns how long the sender must wait before sending more. */
  book(bytes: number): number {
    const now = Date.now();
    this.freeAtMs = Math.max(now, this.freeAtMs) + (bytes * 1000) / this.bytesPerSec;
    return this.freeAtMs - now;
  }
}

export class TcpLink {
  private readonly sockets = new Set<net.Socket>();
  private up = true;
  private readonly paces: { out: Pace; back: Pace } | undefined;

  private constructor(
    private readonly server: net.Server,
    /** host:port to connect to instead of the target. */
    readonly endpoint: string,
    bytesPerSec: number | undefined,
  ) {
    if (bytesPerSec !== undefined) this.paces = { out: new Pace(bytesPerSec), back: new Pace(bytesPerSec) };
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to `target` (host:port), at most `bytesPerSec` each way. */
  static async open(target: string, options: { bytesPerSec?: number } = {}): Promise<TcpLink> {
    if (options.bytesPerSec !== undefined && !(options.bytesPerSec > 0))
      throw new Error(`bytesPerSec must be positive, not ${options.bytesPerSec}`);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const link = new TcpLink(
      server,
      `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
      options.bytesPerSec,
    );
    const at = target.lastIndexOf(':');
    const to = { host: target.slice(0, at), port: Number(target.slice(at + 1)) };
    server.on('connection', (inbound) => link.forward(inbound, to));
    return link;
  }

  private forward(inbound: net.Socket, to: { host: string; port: number }): void {
    if (!this.up) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect(to);
    for (const socket of [inbound, outbound]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    if (this.paces === undefined) {
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      return;
    }
    paced(inbound, outbound, this.paces.out);
    paced(outbound, inbound, this.paces.back);
  }

  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Copies `from` to `to`, pausing `from` for as long as its bytes take on the paced link. */
function paced(from: net.Socket, to: net.Socket, pace: Pace): void {
  from.on('data', (chunk: Buffer) => {
    to.write(chunk);
    const waitMs = pace.book(chunk.length);
    if (waitMs <= 0) return;
    from.pause();
    setTimeout(() => from.resume(), waitMs);
  });
  from.on('end', () => to.end());
}
