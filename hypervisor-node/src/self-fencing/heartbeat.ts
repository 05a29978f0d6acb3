// The daemon's side of self-fencing (docs/architecture.md "Node failure"): after each successful Lease renewal it
// writes the heartbeat file its fence watchdog (watchdog.ts) reads, with the time the renewal REQUEST STARTED, so
// that the watchdog's deadline never falls later than the operator's (the operator starts counting when it sees
// the renewal, which is after the request started). Times are CLOCK_BOOTTIME (/proc/uptime), shared with the
// watchdog, immune to clock steps and counting through a suspend.
//
// The rules that keep "the watchdog kills no later than the operator may restart the guest elsewhere" true across
// daemon restarts and configuration changes:
// - The heartbeat moves forward only after a renewal succeeded, never at start-up: a daemon that restarts in a loop
//   without reaching the apiserver must not keep its guests alive. (The one exception is a node's first heartbeat,
//   written as its first fencing renewal starts: no operator holds a fence time of this node before that renewal.)
// - The fence time the operator uses comes with the renewal itself (an annotation on the Lease), and the file's
//   fence time grows only after such a renewal; it shrinks at once, at start-up, before any renewal.
// - Fencing off (0) takes effect with the first renewal that says so: until then the watchdog a previous daemon
//   started keeps guarding, since the operator may still hold that daemon's fence time.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ensureWatchdog, fencingPaths, type FencingPaths } from './watchdog.js';

export interface Heartbeat {
  bootId: string;
  /** Centiseconds of CLOCK_BOOTTIME when the renewal request started. */
  renewedAtCs: number;
  /** Centiseconds; 0: fencing off. */
  fenceAfterCs: number;
}

/** CLOCK_BOOTTIME in centiseconds, as the watchdog reads it. */
export async function bootClockCs(): Promise<number> {
  const [uptime] = (await readFile('/proc/uptime', 'utf8')).split(' ');
  const [whole, fraction = '0'] = uptime!.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0').slice(0, 2));
}

export async function currentBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

export function formatHeartbeat(heartbeat: Heartbeat): string {
  return `${heartbeat.bootId} ${heartbeat.renewedAtCs} ${heartbeat.fenceAfterCs}\n`;
}

export function parseHeartbeat(text: string): Heartbeat | undefined {
  const match = /^(\S+) (\d+) (\d+)\n?$/.exec(text);
  if (!match) return undefined;
  return { bootId: match[1]!, renewedAtCs: Number(match[2]), fenceAfterCs: Number(match[3]) };
}

export interface SelfFencingOptions {
  stateRoot: string;
  /** 0: off. */
  fenceAfterSeconds: number;
  /** The guests' cgroup roots: the watchdog runs in <root>/.fencing under each. */
  cgroupRoots?: readonly string[];
  logger: Logger;
}

export class SelfFencing {
  private readonly paths: FencingPaths;
  private bootId = '';

  constructor(private readonly options: SelfFencingOptions) {
    this.paths = fencingPaths(options.stateRoot);
  }

  /** The value of FENCE_AFTER_ANNOTATION on this daemon's renewals. */
  get fenceAfterSeconds(): number {
    return this.options.fenceAfterSeconds;
  }

  /**
   * At start-up, before any renewal: a shorter fence time than the heartbeat file's applies at once, and the
   * watchdog of a previous daemon keeps (or, if it died, starts again) guarding the guests it guarded.
   */
  async prepare(): Promise<void> {
    this.bootId = await currentBootId();
    const current = await this.read();
    if (current === undefined) return;
    const fenceAfterCs = this.options.fenceAfterSeconds * 100;
    if (current.bootId === this.bootId && fenceAfterCs > 0 && fenceAfterCs < current.fenceAfterCs) {
      await this.write({ ...current, fenceAfterCs });
      this.options.logger.info(
        { fenceAfterSeconds: this.options.fenceAfterSeconds },
        'fence time shortened before the first renewal',
      );
    }
    if (current.fenceAfterCs === 0) return;
    await this.watch();
    if (this.options.fenceAfterSeconds === 0)
      this.options.logger.warn(
        { fenceAfterSeconds: current.fenceAfterCs / 100 },
        'fencing is turned off, but the watchdog keeps guarding the guests until a Lease renewal publishes that',
      );
  }

  /**
   * Called as a renewal request starts; returns its start time. On a node whose fencing starts now (no heartbeat
   * file yet: a first start, or an upgrade from a daemon without fencing) the file and the watchdog are set up
   * before the first renewal that publishes a fence time, dated from this request.
   */
  async renewalStarting(): Promise<number> {
    const startedAt = await bootClockCs();
    if (this.options.fenceAfterSeconds > 0 && (await this.read()) === undefined) {
      await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
      await this.write(this.heartbeatAt(startedAt));
      await this.watch();
    }
    return startedAt;
  }

  /** Called after a renewal that started at `startedAt` succeeded. */
  async renewed(startedAt: number): Promise<void> {
    const current = await this.read();
    if (this.options.fenceAfterSeconds === 0 && current === undefined) return;
    // Never move the heartbeat back (a slower renewal that started earlier cannot finish later: renewals are
    // sequential, but a restart of the daemon could interleave with the previous one's last write).
    if (current && current.bootId === this.bootId && current.renewedAtCs > startedAt) return;
    await this.write(this.heartbeatAt(startedAt));
    // A watchdog that died (OOM-killed, killed by hand) is started again with the next renewal.
    if (this.options.fenceAfterSeconds > 0) await this.watch();
  }

  private heartbeatAt(renewedAtCs: number): Heartbeat {
    return { bootId: this.bootId, renewedAtCs, fenceAfterCs: this.options.fenceAfterSeconds * 100 };
  }

  private async watch(): Promise<void> {
    await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
    await ensureWatchdog(this.options.stateRoot, this.options.cgroupRoots);
  }

  private async read(): Promise<Heartbeat | undefined> {
    try {
      return parseHeartbeat(await readFile(this.paths.heartbeat, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** Atomic: the watchdog never reads a half-written line. */
  private async write(heartbeat: Heartbeat): Promise<void> {
    await mkdir(this.paths.dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.paths.heartbeat}.tmp`;
    await writeFile(temporary, formatHeartbeat(heartbeat));
    await rename(temporary, this.paths.heartbeat);
  }
}
