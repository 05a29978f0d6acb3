// One migration's event history on this daemon, replayed to every WatchMigration stream before its live events.
// Phase changes, decisions and target events are kept in full (a handful per migration); of the progress samples
// only the latest is kept, and each watcher receives them at its own bounded rate.
import type { MigrationEvent } from '../../../proto/index.js';

export type Watcher = (event: MigrationEvent) => void;

export class EventLog {
  private readonly history: MigrationEvent[] = [];
  private latestProgress: MigrationEvent | undefined;
  private readonly watchers = new Set<{ send: Watcher; end: () => void }>();
  private ended = false;

  constructor(private readonly migrationId: string) {}

  get isEnded(): boolean {
    return this.ended;
  }

  /** Records and broadcasts an event; `last` ends every watch after it. Ignored once the log ended. */
  append(event: Omit<MigrationEvent, 'migrationId' | 'atUnixMs'>, atMs = Date.now(), last = false): void {
    if (this.ended) return;
    const full: MigrationEvent = { migrationId: this.migrationId, atUnixMs: atMs, ...event };
    if (event.progress !== undefined) this.latestProgress = full;
    else this.history.push(full);
    for (const watcher of this.watchers) watcher.send(full);
    if (last) this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const watcher of [...this.watchers]) watcher.end();
    this.watchers.clear();
  }

  /**
   * Replays the history (the latest progress first, then the recorded events in order) and subscribes. Progress
   * events reach `send` at most once per `progressIntervalMs`, and none is lost for good: the newest one held back
   * goes out when the interval is over, or at once before the next other event (a phase change, the outcome) or
   * the end, so the last progress a watcher sees is the migration's last sample. Returns the unsubscribe function.
   */
  watch(send: Watcher, end: () => void, progressIntervalMs: number): () => void {
    const progress = new ProgressPacer(send, progressIntervalMs);
    const throttled: Watcher = (event) => {
      if (event.progress !== undefined) return progress.offer(event);
      progress.flush();
      send(event);
    };
    const ending = (): void => {
      progress.flush();
      end();
    };
    const replay = this.latestProgress ? [this.latestProgress, ...this.history] : [...this.history];
    for (const event of replay) throttled(event);
    if (this.ended) {
      ending();
      return () => undefined;
    }
    const entry = { send: throttled, end: ending };
    this.watchers.add(entry);
    return () => {
      progress.drop();
      this.watchers.delete(entry);
    };
  }
}

/**
 * Passes progress events on at most once per interval. One that comes too soon is held (a newer one replaces it)
 * and sent when the interval is over, or earlier by flush(): a leading-edge-only throttle would drop the last
 * samples of a migration that ends within an interval of its previous sample (a local disk's copy over at once
 * read "0 bytes copied" in the Migration's final status).
 */
class ProgressPacer {
  private lastSentAtMs = -Infinity;
  private held: MigrationEvent | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: Watcher,
    private readonly intervalMs: number,
  ) {}

  offer(event: MigrationEvent): void {
    const waitMs = this.intervalMs - (Date.now() - this.lastSentAtMs);
    if (waitMs <= 0 && this.held === undefined) return this.pass(event);
    this.held = event;
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, waitMs));
  }

  /** Sends the held event now, if any. */
  flush(): void {
    const held = this.held;
    this.drop();
    if (held !== undefined) this.pass(held);
  }

  /** Forgets the held event (the watcher is gone). */
  drop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = undefined;
  }

  private pass(event: MigrationEvent): void {
    this.lastSentAtMs = Date.now();
    this.send(event);
  }
}
