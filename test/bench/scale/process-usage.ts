// A process's resident set and CPU time from /proc, sampled at an interval for its peak (bench:scale: the
// operator's).
import { readFileSync } from 'node:fs';

/** Linux reports utime and stime in these ticks per second (USER_HZ) on every architecture. */
const USER_HZ = 100;

export interface ProcessUsage {
  rssBytes: number;
  /** The kernel's own peak resident set (VmHWM) since the process started. */
  rssHighWaterBytes: number;
  /** User + system CPU time since the process started. */
  cpuSeconds: number;
}

/** The process's usage now; throws when it is gone. */
export function processUsage(pid: number): ProcessUsage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  // The command name in parentheses may hold spaces: the fields are counted after its closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, i.e. 12 and 13 after the state (field 3).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: kib('VmRSS'), rssHighWaterBytes: kib('VmHWM'), cpuSeconds: ticks / USER_HZ };
}

/** Samples a process's resident set every `intervalMs` for its peak until stop(). */
export class UsageSampler {
  peakRssBytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 500,
  ) {
    this.sample();
    // A sample after the process exited is skipped; read() then throws.
    this.timer = setInterval(() => {
      try {
        this.sample();
      } catch {
        this.stop();
      }
    }, intervalMs);
  }

  /** The usage now, with the peak of the samples and the kernel's high-water mark folded in. */
  read(): ProcessUsage & { peakRssBytes: number } {
    const usage = this.sample();
    return { ...usage, peakRssBytes: Math.max(this.peakRssBytes, usage.rssHighWaterBytes) };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): ProcessUsage {
    const usage = processUsage(this.pid);
    this.peakRssBytes = Math.max(this.peakRssBytes, usage.rssBytes);
    return usage;
  }
}
