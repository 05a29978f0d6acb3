import { GoneError, KubeApiError } from '../../../kube/errors.js';
import type {
  KubeObject,
  ListPageOptions,
  ObjectList,
  WatchEvent,
  WatchHandle,
} from '../../../kube/types.js';
import { ManualClock } from './clock.js';
import { Informer, type ListWatchSource } from './informer.js';

function cm(name: string, resourceVersion: string, data = ''): KubeObject & { data: string } {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name, resourceVersion }, data };
}

interface OpenWatch {
  resourceVersion: string;
  emit(event: WatchEvent<KubeObject>): void;
  end(err?: Error): void;
}

/** A scripted list/watch: the test decides what each list returns and drives each watch stream. */
class FakeSource implements ListWatchSource<KubeObject> {
  readonly description = 'configmaps (fake)';
  /** One entry per list call: a whole list, or a page (with `continue` when more follow), or a failure. */
  lists: (ObjectList<KubeObject> | Error | Promise<ObjectList<KubeObject>>)[] = [];
  listCalls = 0;
  /** The page options of each list call. */
  pageRequests: (ListPageOptions | undefined)[] = [];
  watches: OpenWatch[] = [];
  private watchOpened: (() => void)[] = [];

  async list(page?: ListPageOptions): Promise<ObjectList<KubeObject>> {
    this.listCalls++;
    this.pageRequests.push(page);
    const next = this.lists.shift();
    if (!next) throw new Error('no list scripted');
    if (next instanceof Error) throw next;
    return next;
  }

  watch(resourceVersion: string, onEvent: (event: WatchEvent<KubeObject>) => void): WatchHandle {
    let settle!: (err?: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    this.watches.push({ resourceVersion, emit: onEvent, end: settle });
    for (const notify of this.watchOpened.splice(0)) notify();
    return { done, stop: () => settle() };
  }

  /** Resolves when the n-th watch (1-based) has been opened. */
  async watchNumber(n: number): Promise<OpenWatch> {
    while (this.watches.length < n) await new Promise<void>((resolve) => this.watchOpened.push(resolve));
    return this.watches[n - 1]!;
  }
}

function recorder(informer: Informer<KubeObject>) {
  const log: string[] = [];
  informer.addHandlers({
    onAdd: (o) => log.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    onUpdate: (old, o) =>
      log.push(`update ${o.metadata.name}@${old.metadata.resourceVersion}->${o.metadata.resourceVersion}`),
    onDelete: (o) => log.push(`delete ${o.metadata.name}@${o.metadata.resourceVersion}`),
  });
  return log;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('Informer', () => {
  test('lists, syncs, then applies watch events from the list resourceVersion on', async () => {
    const source = new FakeSource();
    source.lists.push({ items: [cm('a', '10')], resourceVersion: '11' });
    const informer = new Informer(source, { clock: new ManualClock() });
    const log = recorder(informer);
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.waitForSync();
    expect(informer.hasSynced()).toBe(true);
    const watch = await source.watchNumber(1);
    expect(watch.resourceVersion).toBe('11');
    watch.emit({ type: 'ADDED', object: cm('b', '12') });
    watch.emit({ type: 'MODIFIED', object: cm('a', '13', 'x') });
    watch.emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } });
    watch.emit({ type: 'DELETED', object: cm('b', '16') });
    expect(log).toEqual(['add a@10', 'add b@12', 'update a@10->13', 'delete b@16']);
    expect(informer.get('ns/a')).toMatchObject({ data: 'x' });
    expect(informer.get('ns/b')).toBeUndefined();
    expect(informer.lastSyncResourceVersion).toBe('16');
    await informer.stop();
  });

  test('410 Gone relists and the diff against the cache reports what the watch missed', async () => {
    const source = new FakeSource();
    source.lists.push({ items: [cm('a', '10'), cm('b', '10')], resourceVersion: '10' });
    // While disconnected: a was updated, b deleted, c created.
    source.lists.push({ items: [cm('a', '20'), cm('c', '21')], resourceVersion: '22' });
    const informer = new Informer(source, { clock: new ManualClock() });
    const log = recorder(informer);
    informer.start();
    (await source.watchNumber(1)).end(new GoneError(410, 'Expired', 'too old resource version: 10 (15)'));
    const second = await source.watchNumber(2);
    expect(source.listCalls).toBe(2);
    expect(informer.relists).toBe(2);
    expect(second.resourceVersion).toBe('22');
    expect(log).toEqual(['add a@10', 'add b@10', 'delete b@10', 'update a@10->20', 'add c@21']);
    expect(
      informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['a', 'c']);
    await informer.stop();
  });

  test('a relist is a full resync: unchanged objects are reported as updates too', async () => {
    const source = new FakeSource();
    source.lists.push({ items: [cm('a', '10')], resourceVersion: '10' });
    source.lists.push({ items: [cm('a', '10')], resourceVersion: '10' });
    const informer = new Informer(source, { clock: new ManualClock() });
    const log = recorder(informer);
    informer.start();
    (await source.watchNumber(1)).end(new GoneError(410, 'Expired', 'gone'));
    await source.watchNumber(2);
    expect(log).toEqual(['add a@10', 'update a@10->10']);
    await informer.stop();
  });

  test('a failed watch resumes from the last resourceVersion after backoff, without relisting', async () => {
    const clock = new ManualClock();
    const source = new FakeSource();
    source.lists.push({ items: [], resourceVersion: '5' });
    const informer = new Informer(source, { clock, backoff: { baseMs: 100, maxMs: 1_000 } });
    informer.start();
    const first = await source.watchNumber(1);
    first.emit({ type: 'ADDED', object: cm('a', '6') });
    first.end(new KubeApiError(500, 'InternalError', 'etcd unavailable'));
    await flush();
    expect(source.watches).toHaveLength(1);
    clock.advance(99);
    await flush();
    expect(source.watches).toHaveLength(1);
    clock.advance(1);
    const second = await source.watchNumber(2);
    expect(second.resourceVersion).toBe('6');
    expect(source.listCalls).toBe(1);
    await informer.stop();
  });

  test('a failing list is retried with growing backoff; a watch that ends cleanly after events reconnects at once', async () => {
    const clock = new ManualClock();
    const source = new FakeSource();
    source.lists.push(new Error('connection refused'), new Error('connection refused'), {
      items: [],
      resourceVersion: '1',
    });
    const informer = new Informer(source, { clock, backoff: { baseMs: 100, maxMs: 1_000 } });
    informer.start();
    await flush();
    expect(source.listCalls).toBe(1);
    clock.advance(100);
    await flush();
    expect(source.listCalls).toBe(2);
    clock.advance(100);
    await flush();
    expect(source.listCalls).toBe(2); // second delay is 200 ms
    clock.advance(100);
    await informer.waitForSync();
    expect(source.listCalls).toBe(3);
    const first = await source.watchNumber(1);
    first.emit({ type: 'ADDED', object: cm('a', '2') });
    first.end(); // server-side timeout
    const second = await source.watchNumber(2);
    expect(second.resourceVersion).toBe('2');
    second.end(); // closes at once with nothing delivered: back off instead of spinning
    await flush();
    expect(source.watches).toHaveLength(2);
    clock.advance(100);
    await source.watchNumber(3);
    await informer.stop();
  });

  test('handlers added after sync are told about cached objects; a throwing handler does not stop the others', async () => {
    const source = new FakeSource();
    source.lists.push({ items: [cm('a', '1')], resourceVersion: '1' });
    const informer = new Informer(source, { clock: new ManualClock() });
    informer.addHandlers({
      onAdd: () => {
        throw new Error('bad handler');
      },
    });
    informer.start();
    await informer.waitForSync();
    const late = recorder(informer);
    (await source.watchNumber(1)).emit({ type: 'ADDED', object: cm('b', '2') });
    expect(late).toEqual(['add a@1', 'add b@2']);
    await informer.stop();
  });

  test("a relist reads the collection in pages and applies it as one snapshot at the first page's resourceVersion", async () => {
    const source = new FakeSource();
    let releasePage2!: (page: ObjectList<KubeObject>) => void;
    source.lists.push(
      { items: [cm('a', '10'), cm('b', '11')], resourceVersion: '30', continue: 'c1' },
      new Promise((resolve) => (releasePage2 = resolve)),
      { items: [cm('e', '14')], resourceVersion: '30' },
    );
    const informer = new Informer(source, { clock: new ManualClock(), listPageSize: 2 });
    const log = recorder(informer);
    informer.start();
    await flush();
    // Half-listed: nothing is cached or reported yet.
    expect(source.listCalls).toBe(2);
    expect(log).toEqual([]);
    expect(informer.list()).toEqual([]);
    expect(informer.hasSynced()).toBe(false);
    releasePage2({ items: [cm('c', '12'), cm('d', '13')], resourceVersion: '30', continue: 'c2' });
    await informer.waitForSync();
    expect(source.pageRequests).toEqual([
      { limit: 2 },
      { limit: 2, continue: 'c1' },
      { limit: 2, continue: 'c2' },
    ]);
    expect(log).toEqual(['add a@10', 'add b@11', 'add c@12', 'add d@13', 'add e@14']);
    expect(informer.relists).toBe(1);
    expect(informer.lastSyncResourceVersion).toBe('30');
    expect((await source.watchNumber(1)).resourceVersion).toBe('30');
    await informer.stop();
  });

  test('a paged relist after 410 Gone diffs the whole new snapshot against the cache', async () => {
    const source = new FakeSource();
    source.lists.push({ items: [cm('a', '1'), cm('b', '2'), cm('c', '3')], resourceVersion: '3' });
    source.lists.push(
      { items: [cm('a', '1'), cm('c', '7')], resourceVersion: '9', continue: 'next' },
      { items: [cm('d', '8')], resourceVersion: '9' },
    );
    const informer = new Informer(source, { clock: new ManualClock(), listPageSize: 2 });
    const log = recorder(informer);
    informer.start();
    (await source.watchNumber(1)).end(new GoneError(410, 'Expired', 'too old resource version'));
    expect((await source.watchNumber(2)).resourceVersion).toBe('9');
    // b is on no page of the new snapshot: deleted; the deletion comes only once every page is in.
    expect(log).toEqual([
      'add a@1',
      'add b@2',
      'add c@3',
      'delete b@2',
      'update a@1->1',
      'update c@3->7',
      'add d@8',
    ]);
    expect(informer.relists).toBe(2);
    await informer.stop();
  });

  test('a continue token that expired mid-list (410 Gone) restarts the relist from the first page', async () => {
    const source = new FakeSource();
    source.lists.push(
      { items: [cm('a', '10'), cm('b', '11')], resourceVersion: '40', continue: 'c1' },
      new GoneError(
        410,
        'Expired',
        'The provided continue parameter is too old to display a consistent list',
      ),
      { items: [cm('a', '10'), cm('c', '45')], resourceVersion: '50', continue: 'c2' },
      { items: [cm('d', '46')], resourceVersion: '50' },
    );
    const informer = new Informer(source, { clock: new ManualClock(), listPageSize: 2 });
    const log = recorder(informer);
    informer.start();
    await informer.waitForSync();
    expect(source.pageRequests).toEqual([
      { limit: 2 },
      { limit: 2, continue: 'c1' },
      { limit: 2 },
      { limit: 2, continue: 'c2' },
    ]);
    // Only the snapshot that was listed whole counts: b (seen on the expired one's first page) never shows.
    expect(log).toEqual(['add a@10', 'add c@45', 'add d@46']);
    expect(informer.relists).toBe(1);
    expect((await source.watchNumber(1)).resourceVersion).toBe('50');
    await informer.stop();
  });

  test('a continue token that keeps expiring: the relist gives up after 5 restarts and retries after backoff', async () => {
    const clock = new ManualClock();
    const source = new FakeSource();
    for (let i = 0; i < 6; i++) {
      source.lists.push(
        { items: [cm('a', '1')], resourceVersion: String(100 + i), continue: 'more' },
        new GoneError(410, 'Expired', 'continue token too old'),
      );
    }
    source.lists.push({ items: [cm('a', '1'), cm('b', '2')], resourceVersion: '200' });
    const informer = new Informer(source, { clock, listPageSize: 1, backoff: { baseMs: 100, maxMs: 1_000 } });
    const log = recorder(informer);
    informer.start();
    await flush();
    expect(source.listCalls).toBe(12);
    expect(informer.hasSynced()).toBe(false);
    expect(log).toEqual([]);
    clock.advance(99);
    await flush();
    expect(source.listCalls).toBe(12);
    clock.advance(1);
    await informer.waitForSync();
    expect(source.listCalls).toBe(13);
    expect(log).toEqual(['add a@1', 'add b@2']);
    expect(informer.lastSyncResourceVersion).toBe('200');
    await informer.stop();
  });
});
