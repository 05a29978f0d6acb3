// A TCP link between two endpoints on loopback that a test can cut: every connection accepted on its own port is
// piped to the target; cut() breaks every connection at once (both peers see the stream end, as when a link between
// two nodes drops) and refuses new ones until restore().
import net from 'node:net';

export class TcpLink {
  private readonly sockets = new Set<net.Socket>();
  private up = true;

  private constructor(
    private readonly server: net.Server,
    /** host:port to connect to instead of the target. */
    readonly endpoint: string,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to `target` (host:port). */
  static async open(target: string): Promise<TcpLink> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const link = new TcpLink(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
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
    inbound.pipe(outbound);
    outbound.pipe(inbound);
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
