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
   * events reach `send` at most once per `progressIntervalMs`. Returns the unsubscribe function.
   */
  watch(send: Watcher, end: () => void, progressIntervalMs: number): () => void {
    let lastProgressAt = 0;
    const throttled: Watcher = (event) => {
      if (event.progress !== undefined) {
        const now = Date.now();
        if (now - lastProgressAt < progressIntervalMs) return;
        lastProgressAt = now;
      }
      send(event);
    };
    const replay = this.latestProgress ? [this.latestProgress, ...this.history] : [...this.history];
    for (const event of replay) throttled(event);
    if (this.ended) {
      end();
      return () => undefined;
    }
    const entry = { send: throttled, end };
    this.watchers.add(entry);
    return () => this.watchers.delete(entry);
  }
}
