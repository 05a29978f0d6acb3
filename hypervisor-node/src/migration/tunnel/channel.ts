import type { Duplex } from 'node:stream';

/** Bytes moved in one direction of a channel and the largest backlog the tunnel held for it. */
export interface DirectionStats {
  bytes: number;
  /** Bytes read from one side and not yet accepted by the other side's kernel socket buffer, at most. */
  maxInFlight: number;
}

export interface ChannelStats {
  /** 0 = QEMU's main channel (it carries the return path back), then the multifd channels in accept order. */
  index: number;
  toTarget: DirectionStats;
  toSource: DirectionStats;
}

export interface ChannelResult {
  stats: ChannelStats;
  /** Why the channel was torn down, when it did not end with both sides closing cleanly. */
  error?: Error;
}

export const emptyStats = (index: number): ChannelStats => ({
  index,
  toTarget: { bytes: 0, maxInFlight: 0 },
  toSource: { bytes: 0, maxInFlight: 0 },
});

/** Default bound of the tunnel's own buffer per direction of a channel (kernel socket buffers come on top). */
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 1 << 20;

/**
 * Copies src into dst holding at most `limit` bytes that dst has not yet handed to the kernel (plus the one
 * chunk being written). The count uses write callbacks, which fire when a chunk has left the stream's queue, so
 * it does not depend on the streams' highWaterMark settings. A QEMU writing into a stalled tunnel is stopped by
 * its own socket filling up, which is what keeps QEMU's bandwidth estimate honest.
 */
function pumpBounded(src: Duplex, dst: Duplex, stats: DirectionStats, limit: number): void {
  let inFlight = 0;
  let paused = false;
  const resumeBelow = limit / 2;
  const flushed = (size: number) => (error?: Error | null) => {
    if (error) return; // the error reaches the channel through the stream's 'error' event
    inFlight -= size;
    if (paused && inFlight <= resumeBelow) {
      paused = false;
      src.resume();
    }
  };
  src.on('data', (chunk: Buffer) => {
    stats.bytes += chunk.length;
    inFlight += chunk.length;
    if (inFlight > stats.maxInFlight) stats.maxInFlight = inFlight;
    dst.write(chunk, flushed(chunk.length));
    if (inFlight >= limit && !paused) {
      paused = true;
      src.pause();
    }
  });
  // End-of-stream is forwarded as a half-close: the other direction (QEMU's return path) keeps flowing.
  src.once('end', () => dst.end());
  src.resume(); // a socket accepted with pauseOnConnect stays paused until asked
}

/** Full-duplex copy between the QEMU-facing socket and the link to the peer daemon, with teardown. */
export interface SplicedChannel {
  readonly stats: ChannelStats;
  /** Settles when both streams are closed; never rejects. */
  readonly done: Promise<ChannelResult>;
  /** Tears the channel down at once (cancel); both streams are destroyed. */
  abort(reason: Error): void;
}

/** Time a channel gets to close completely after its first end of stream, before it is destroyed. */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;

/**
 * Splices `qemuSide` and `link` in both directions. A clean end on one side is forwarded as a half-close; an
 * error or an abrupt close on either side, abort(), or a channel still half-open `graceMs` after its first end
 * of stream destroys both, so no half-open socket is left behind. `maxInFlightBytes` bounds what the tunnel
 * buffers per direction.
 */
export function spliceChannel(
  index: number,
  qemuSide: Duplex,
  link: Duplex,
  role: 'source' | 'target',
  maxInFlightBytes = DEFAULT_MAX_IN_FLIGHT_BYTES,
  graceMs = DEFAULT_CLOSE_GRACE_MS,
): SplicedChannel {
  const stats: ChannelStats = {
    index,
    toTarget: { bytes: 0, maxInFlight: 0 },
    toSource: { bytes: 0, maxInFlight: 0 },
  };
  // On the source QEMU's bytes go to the target; on the target they come from it.
  const [outward, inward] =
    role === 'source' ? [stats.toTarget, stats.toSource] : [stats.toSource, stats.toTarget];
  let failure: Error | undefined;
  let graceTimer: NodeJS.Timeout | undefined;

  const fail = (error: Error): void => {
    failure ??= error;
    qemuSide.destroy();
    link.destroy();
  };
  const closedOf = (stream: Duplex, name: string): Promise<void> =>
    new Promise((resolve) => {
      if (stream.closed) return resolve();
      stream.once('error', (error: Error) => fail(new Error(`${name}: ${error.message}`, { cause: error })));
      // QEMU closes both directions together; after the first end of stream the channel gets a grace period to
      // finish (the return path's last message) before it is torn down: no half-open connection lingers.
      stream.once('end', () => {
        graceTimer ??= setTimeout(
          () => fail(new Error(`${name} ended; channel did not close in time`)),
          graceMs,
        );
      });
      stream.once('close', () => {
        // A stream that closes before its readable side ended was cut off.
        if (!stream.readableEnded && !failure) fail(new Error(`${name} closed before the end of its stream`));
        resolve();
      });
    });

  pumpBounded(qemuSide, link, outward, maxInFlightBytes);
  pumpBounded(link, qemuSide, inward, maxInFlightBytes);
  const done = Promise.all([
    closedOf(qemuSide, `channel ${index} QEMU socket`),
    closedOf(link, `channel ${index} link`),
  ]).then((): ChannelResult => {
    clearTimeout(graceTimer);
    return failure ? { stats, error: failure } : { stats };
  });
  return { stats, done, abort: fail };
}
