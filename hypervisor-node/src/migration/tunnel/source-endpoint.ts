import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_MAX_IN_FLIGHT_BYTES,
  emptyStats,
  spliceChannel,
  type ChannelResult,
  type ChannelStats,
  type SplicedChannel,
} from './channel.js';

export interface SourceEndpointOptions {
  /** Unix socket the source QEMU migrates into: `migrate {"uri": "unix:<socketPath>"}`. Must not exist yet. */
  socketPath: string;
  /** Opens the link to the target daemon for the channel QEMU opened as number `channelIndex` (0 = main). */
  connect: (channelIndex: number) => Promise<Duplex>;
  /** 1 + multifd-channels; a connection beyond this count is refused. */
  channels: number;
  /** Bound of the tunnel's buffer per direction of a channel. */
  maxInFlightBytes?: number;
}

export interface TunnelEndpoint {
  /** Per-channel byte counters and the largest backlog seen, in channel order. */
  stats(): ChannelStats[];
  /** Settles once every channel QEMU opened is closed; carries each channel's result. */
  readonly done: Promise<ChannelResult[]>;
  /** Cancels the migration's data plane: every channel and listener is closed, the socket file removed. */
  close(reason?: Error): Promise<void>;
}

/**
 * Listens on a unix socket for the source QEMU's migration connections and carries each one over its own link
 * to the target daemon. Links are opened one after another in accept order, so the target sees channel 0 (the
 * main channel, which QEMU always opens first) before any multifd channel. The endpoint settles when all
 * `channels` connections have come and gone, or on the first failure, which tears down every channel.
 */
export async function openSourceEndpoint(options: SourceEndpointOptions): Promise<TunnelEndpoint> {
  const limit = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
  const channels: SplicedChannel[] = [];
  const pending = new Set<Socket>();
  const results: Promise<ChannelResult>[] = [];
  let accepted = 0;
  let linkChain: Promise<unknown> = Promise.resolve();
  let closing: Error | undefined;
  let settle!: () => void;
  const allAccepted = new Promise<void>((resolve) => (settle = resolve));

  const abortAll = (reason: Error): void => {
    closing ??= reason;
    for (const socket of pending) socket.destroy();
    for (const channel of channels) channel.abort(reason);
    settle();
  };

  const carry = async (socket: Socket, index: number): Promise<ChannelResult> => {
    pending.add(socket);
    const link = linkChain.then(() => options.connect(index));
    linkChain = link.catch(() => undefined);
    let linked: Duplex;
    try {
      linked = await link;
    } catch (error) {
      const failure = new Error(
        `channel ${index}: cannot open the link to the target: ${(error as Error).message}`,
      );
      abortAll(failure);
      return { stats: emptyStats(index), error: failure };
    } finally {
      pending.delete(socket);
    }
    if (closing || socket.destroyed) {
      linked.destroy();
      socket.destroy();
      return {
        stats: emptyStats(index),
        error: closing ?? new Error(`channel ${index}: QEMU left before the link was up`),
      };
    }
    const channel = spliceChannel(index, socket, linked, 'source', limit);
    channels.push(channel);
    const result = await channel.done;
    if (result.error) abortAll(result.error);
    return result;
  };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const index = accepted++;
    if (closing || index >= options.channels) {
      socket.destroy();
      return;
    }
    results.push(carry(socket, index));
    if (accepted === options.channels) settle();
  });
  await listenUnix(server, options.socketPath);
  server.on('error', (error) =>
    abortAll(new Error(`migration socket ${options.socketPath}: ${error.message}`)),
  );

  const done = allAccepted
    .then(async () => {
      // Once every channel is accepted (or the migration failed) nobody may connect any more.
      await closeServer(server);
      return Promise.all(results);
    })
    .finally(() => rmSync(options.socketPath, { force: true }));

  return {
    stats: () => channels.map((channel) => channel.stats).sort((a, b) => a.index - b.index),
    done,
    close: async (reason = new Error('tunnel closed')) => {
      abortAll(reason);
      await done;
    },
  };
}

function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
