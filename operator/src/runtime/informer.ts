// List+watch of one resource into a local cache (client-go's reflector + indexer, minus the indexes).
// - a relist (at start, and after 410 Gone) diffs the cache: vanished objects get onDelete, and every listed
//   object gets onAdd or onUpdate, so a relist is also a full resync of every key;
// - a relist reads the collection in pages (kube/pagination.ts) but applies it as one snapshot, at the first
//   page's resourceVersion, once the last page is in; a continue token that expires mid-list restarts the list;
// - a watch that ends is resumed from the last resourceVersion; a failing list or watch retries with backoff;
// - handlers only ever see objects in resourceVersion order, from one loop.
import type { Logger } from 'pino';
import type { KubeClient } from '../../../kube/client.js';
import { isGone } from '../../../kube/errors.js';
import { objectKey } from '../../../kube/objects.js';
import { DEFAULT_LIST_PAGE_SIZE, listAllPages } from '../../../kube/pagination.js';
import type {
  KubeObject,
  ListOptions,
  ListPageOptions,
  ObjectKey,
  ObjectList,
  ResourceType,
  WatchEvent,
  WatchHandle,
} from '../../../kube/types.js';
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';
import { sleep, systemClock, type Clock } from './clock.js';

/** Where an informer gets its objects from; listWatch() binds it to the API, unit tests can fake it. */
export interface ListWatchSource<T extends KubeObject> {
  readonly description: string;
  /** One page when `page.limit` is set (a source may ignore it and return everything); everything otherwise. */
  list(page?: ListPageOptions): Promise<ObjectList<T>>;
  watch(resourceVersion: string, onEvent: (event: WatchEvent<T>) => void): WatchHandle;
}

export function listWatch<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  options: ListOptions & { timeoutSeconds?: number } = {},
): ListWatchSource<T> {
  const scope = options.namespace ? ` in ${options.namespace}` : '';
  const selector = options.labelSelector ? ` (${options.labelSelector})` : '';
  return {
    description: `${type.plural}${type.group ? `.${type.group}` : ''}${scope}${selector}`,
    list: (page) =>
      client.list<T>(type, {
        namespace: options.namespace,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        ...page,
      }),
    watch: (resourceVersion, onEvent) => {
      // Like client-go, spread watch restarts over time: the server ends each watch after 5–10 minutes.
      const timeoutSeconds = options.timeoutSeconds ?? Math.round(300 * (1 + Math.random()));
      return client.watch<T>(type, { ...options, resourceVersion, timeoutSeconds }, onEvent);
    },
  };
}

export interface InformerHandlers<T extends KubeObject> {
  onAdd?(object: T): void;
  onUpdate?(oldObject: T, newObject: T): void;
  onDelete?(object: T): void;
}

export interface InformerOptions {
  clock?: Clock;
  logger?: Logger;
  /** Delay between failed list/watch attempts. */
  backoff?: BackoffOptions;
  /** A watch that closes sooner than this without delivering anything counts as a failure (no hot reconnect loop). */
  minWatchMs?: number;
  /** Items per list request of a relist; default 500. */
  listPageSize?: number;
}

const RETRY = 'retry';

export class Informer<T extends KubeObject> {
  private readonly source: ListWatchSource<T>;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly backoff: ExponentialBackoff<string>;
  private readonly minWatchMs: number;
  private readonly listPageSize: number;
  private readonly cache = new Map<ObjectKey, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly syncWaiters: (() => void)[] = [];
  private resourceVersion = '';
  private synced = false;
  private running: Promise<void> | undefined;
  private stopAbortController = new AbortController();
  private watch: WatchHandle | undefined;
  private relistCount = 0;

  constructor(source: ListWatchSource<T>, options: InformerOptions = {}) {
    this.source = source;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger?.child({ informer: source.description });
    this.backoff = new ExponentialBackoff({ baseMs: 800, maxMs: 30_000, ...options.backoff });
    this.minWatchMs = options.minWatchMs ?? 1_000;
    this.listPageSize = options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE;
  }

  get description(): string {
    return this.source.description;
  }

  /** Handlers added after the first sync are first told about every cached object, as adds. */
  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    if (this.synced) for (const object of this.cache.values()) this.call(handlers, 'onAdd', object);
  }

  start(): void {
    if (this.running) return;
    this.stopAbortController = new AbortController();
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopAbortController.abort();
    this.watch?.stop();
    await this.running;
    this.running = undefined;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has been loaded into the cache. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(key: ObjectKey): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  /** How many times the informer listed (1 after the initial list; more after 410 Gone). */
  get relists(): number {
    return this.relistCount;
  }

  private async run(): Promise<void> {
    const signal = this.stopAbortController.signal;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist();
        if (signal.aborted) break;
        const started = this.clock.now();
        const delivered = await this.watchOnce();
        if (delivered || this.clock.now() - started >= this.minWatchMs) {
          this.backoff.forget(RETRY);
          continue;
        }
        await sleep(this.clock, this.backoff.next(RETRY), signal);
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          this.logger?.info({ resourceVersion: this.resourceVersion }, 'watch expired (410 Gone), relisting');
          this.resourceVersion = '';
          continue;
        }
        const delay = this.backoff.next(RETRY);
        this.logger?.warn({ err, retryInMs: delay }, 'list/watch failed');
        await sleep(this.clock, delay, signal);
      }
    }
  }

  private async relist(): Promise<void> {
    // All pages first: handlers see the new snapshot whole, never a half-listed collection.
    const signal = this.stopAbortController.signal;
    const list = await listAllPages(
      (page) => (signal.aborted ? Promise.reject(new Error('informer stopped')) : this.source.list(page)),
      {
        pageSize: this.listPageSize,
        onRestart: (err, restart) =>
          this.logger?.info({ err, restart }, 'list snapshot expired mid-list (410 Gone), listing again'),
      },
    );
    if (this.stopAbortController.signal.aborted) return;
    this.relistCount++;
    const listed = new Map(list.items.map((object) => [objectKey(object), object] as const));
    for (const [key, old] of this.cache) {
      if (!listed.has(key)) {
        this.cache.delete(key);
        this.notify('onDelete', old);
      }
    }
    for (const [key, object] of listed) {
      const old = this.cache.get(key);
      this.cache.set(key, object);
      if (old) this.notifyUpdate(old, object);
      else this.notify('onAdd', object);
    }
    this.resourceVersion = list.resourceVersion;
    this.backoff.forget(RETRY);
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  /** Watches until the stream ends; returns whether any event arrived. Rejects with the stream's error. */
  private async watchOnce(): Promise<boolean> {
    let delivered = false;
    this.watch = this.source.watch(this.resourceVersion, (event) => {
      delivered = true;
      this.apply(event);
    });
    try {
      await this.watch.done;
    } finally {
      this.watch = undefined;
    }
    return delivered;
  }

  private apply(event: WatchEvent<T>): void {
    if (this.stopAbortController.signal.aborted) return;
    const object = event.object;
    if (object.metadata.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const key = objectKey(object);
    const old = this.cache.get(key);
    if (event.type === 'DELETED') {
      this.cache.delete(key);
      this.notify('onDelete', object); // the event carries the final state
      return;
    }
    this.cache.set(key, object);
    if (old) this.notifyUpdate(old, object);
    else this.notify('onAdd', object);
  }

  private notify(kind: 'onAdd' | 'onDelete', object: T): void {
    for (const handlers of this.handlers) this.call(handlers, kind, object);
  }

  private notifyUpdate(old: T, object: T): void {
    for (const handlers of this.handlers) {
      try {
        handlers.onUpdate?.(old, object);
      } catch (err) {
        this.logger?.error({ err }, 'informer update handler threw');
      }
    }
  }

  private call(handlers: InformerHandlers<T>, kind: 'onAdd' | 'onDelete', object: T): void {
    try {
      handlers[kind]?.(object);
    } catch (err) {
      this.logger?.error({ err, handler: kind }, 'informer handler threw');
    }
  }
}
