// The first frame a resumed guest sends (QEMU's self-announce, or the guest's own traffic), as its node sees it:
// the tap's received-packets counter (frames QEMU wrote into the tap, i.e. sent by the guest's NIC), read about
// every millisecond for a bounded window. Node has no packet socket with kernel timestamps, and a capture process
// would have to be running before the resume; a counter read costs a few microseconds. The frame came between the
// last read that saw the old count and the first that saw it grow: that interval is the reading's resolution (about
// a millisecond, more when the daemon's event loop is late).
import { closeSync, openSync, readSync } from 'node:fs';
import { wallClockUs } from '../../../proto/index.js';

export type FirstFrame =
  /** atUs: the first read that saw the counter grow; resolutionUs: since the read before it. */
  | { atUs: number; resolutionUs: number }
  /** Why there is none. */
  | { note: string };

export interface FirstFrameWatch {
  readonly result: Promise<FirstFrame>;
  /** The taps' frame count when the watch began (0 without a tap). */
  readonly baseline: number;
  /** Ends the watch early (the result says so). */
  cancel(): void;
}

/** How long a watch reads the counters after the resume, and how often. */
export const FIRST_FRAME_WINDOW_MS = 2_000;
const READ_INTERVAL_MS = 1;

const counterPath = (ifname: string): string => `/sys/class/net/${ifname}/statistics/rx_packets`;

/**
 * Reads the taps' counters now (the baseline: call it right before the guest resumes) and then until one grows or
 * the window ends. Without a tap (user-mode networking, no NIC) the result says so at once.
 */
export function watchFirstFrame(
  ifnames: readonly string[],
  windowMs = FIRST_FRAME_WINDOW_MS,
  read: (fd: number) => number = readCounter,
): FirstFrameWatch {
  if (ifnames.length === 0) {
    return {
      result: Promise.resolve({ note: 'the guest has no tap (user-mode networking or no NIC)' }),
      baseline: 0,
      cancel: () => undefined,
    };
  }
  let fds: number[];
  try {
    fds = ifnames.map((ifname) => openSync(counterPath(ifname), 'r'));
  } catch (error) {
    return {
      result: Promise.resolve({ note: `the tap's counters cannot be read: ${(error as Error).message}` }),
      baseline: 0,
      cancel: () => undefined,
    };
  }
  const total = (): number => fds.reduce((sum, fd) => sum + read(fd), 0);
  const baseline = total();
  let lastReadUs = wallClockUs();
  const endsAtUs = lastReadUs + windowMs * 1000;
  let timer: NodeJS.Timeout | undefined;
  let settle!: (frame: FirstFrame) => void;
  const result = new Promise<FirstFrame>((resolve) => (settle = resolve));
  const end = (frame: FirstFrame): void => {
    clearTimeout(timer);
    for (const fd of fds.splice(0)) closeSync(fd);
    settle(frame);
  };
  const poll = (): void => {
    let count: number;
    try {
      count = total();
    } catch (error) {
      return end({ note: `the tap's counters cannot be read: ${(error as Error).message}` });
    }
    const nowUs = wallClockUs();
    if (count > baseline) return end({ atUs: nowUs, resolutionUs: nowUs - lastReadUs });
    lastReadUs = nowUs;
    if (nowUs >= endsAtUs)
      return end({ note: `no frame from the guest within ${windowMs} ms of its resume` });
    timer = setTimeout(poll, READ_INTERVAL_MS);
  };
  timer = setTimeout(poll, 0);
  return {
    result,
    baseline,
    cancel: () => {
      if (fds.length > 0) end({ note: 'the watch was cancelled' });
    },
  };
}

const buffer = Buffer.alloc(32);

function readCounter(fd: number): number {
  const length = readSync(fd, buffer, 0, buffer.length, 0);
  return Number(buffer.toString('ascii', 0, length).trim());
}
