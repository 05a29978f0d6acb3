import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_MAX_IN_FLIGHT_BYTES,
  emptyStats,
  spliceChannel,
  type ChannelResult,
  type SplicedChannel,
} from './channel.js';
import type { TunnelEndpoint } from './source-endpoint.js';

export interface TargetEndpointOptions {
  /** Unix socket the target QEMU listens on after `migrate-incoming {"uri": "unix:<path>"}`. */
  qemuSocketPath: string;
  /** 1 + multifd-channels, as on the source. */
  channels: number;
  maxInFlightBytes?: number;
}

export interface TargetEndpoint extends TunnelEndpoint {
  /**
   * Connects an admitted link for channel `channelIndex` to the target QEMU; resolves once that connection is
   * up. Connections reach QEMU in channel order whatever order the links arrive in: the main channel must be
   * the first QEMU accepts (QEMU before 8.0 takes the first connection as the main channel).
   */
  accept(link: Duplex, channelIndex: number): Promise<void>;
}

interface Gate {
  promise: Promise<void>;
  open: () => void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** The target daemon's side of one migration's data plane. */
export function openTargetEndpoint(options: TargetEndpointOptions): TargetEndpoint {
  const limit = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
  const channels: SplicedChannel[] = [];
  const waiting = new Set<Duplex>();
  const results: Promise<ChannelResult>[] = [];
  // connected[i] opens once channel i's QEMU connection is established (or the endpoint is torn down).
  const connected = Array.from({ length: options.channels }, gate);
  const seen = new Set<number>();
  let closing: Error | undefined;
  const allAccepted = gate();

  const abortAll = (reason: Error): void => {
    closing ??= reason;
    for (const link of waiting) link.destroy();
    for (const channel of channels) channel.abort(reason);
    for (const g of connected) g.open();
    allAccepted.open();
  };

  const connectInOrder = async (link: Duplex, index: number): Promise<SplicedChannel> => {
    waiting.add(link);
    try {
      if (index > 0) await connected[index - 1]!.promise;
      if (closing) throw closing;
      const socket = await connectUnix(options.qemuSocketPath);
      if (closing) {
        socket.destroy();
        throw closing;
      }
      const channel = spliceChannel(index, socket, link, 'target', limit);
      channels.push(channel);
      connected[index]!.open();
      return channel;
    } catch (error) {
      link.destroy();
      const failure =
        closing ?? new Error(`channel ${index}: cannot reach the target QEMU: ${(error as Error).message}`);
      abortAll(failure);
      throw failure;
    } finally {
      waiting.delete(link);
    }
  };

  const done = allAccepted.promise.then(() => Promise.all(results));

  return {
    accept: (link, channelIndex) => {
      if (closing || seen.has(channelIndex) || !(channelIndex >= 0 && channelIndex < options.channels)) {
        link.destroy();
        return Promise.reject(closing ?? new Error(`channel ${channelIndex} is not expected`));
      }
      seen.add(channelIndex);
      const channel = connectInOrder(link, channelIndex);
      results.push(
        channel.then(
          async (c) => {
            const result = await c.done;
            if (result.error) abortAll(result.error);
            return result;
          },
          (error: Error) => ({ stats: emptyStats(channelIndex), error }),
        ),
      );
      if (seen.size === options.channels) allAccepted.open();
      return channel.then(() => undefined);
    },
    stats: () => channels.map((channel) => channel.stats).sort((a, b) => a.index - b.index),
    done,
    close: async (reason = new Error('tunnel closed')) => {
      abortAll(reason);
      await done;
    },
  };
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
