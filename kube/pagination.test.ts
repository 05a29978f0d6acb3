import { GoneError, isGone, KubeApiError } from './errors.js';
import { listAllPages } from './pagination.js';
import type { KubeObject, ListPageOptions, ObjectList } from './types.js';

const obj = (name: string): KubeObject => ({ metadata: { name } });
const names = (list: ObjectList<KubeObject>) => list.items.map((o) => o.metadata.name);

/** A collection of `count` objects served in pages; `expire(request)` fails a request with 410 Gone. */
function pagedSource(
  count: number,
  expire: (request: number, page: ListPageOptions) => boolean = () => false,
) {
  const requests: ListPageOptions[] = [];
  let snapshot = 0;
  const fetch = async (page: ListPageOptions): Promise<ObjectList<KubeObject>> => {
    requests.push(page);
    if (expire(requests.length, page)) throw new GoneError(410, 'Expired', 'continue token too old');
    if (page.continue === undefined) snapshot++;
    const start = page.continue === undefined ? 0 : Number(page.continue.split(':')[1]);
    const end = Math.min(count, start + page.limit!);
    const items = Array.from({ length: end - start }, (_, i) => obj(`o${start + i}`));
    // Each snapshot has its own resourceVersion; later pages of it report the same one, like the apiserver.
    const list: ObjectList<KubeObject> = { items, resourceVersion: String(1000 + snapshot) };
    if (end < count) list.continue = `${snapshot}:${end}`;
    return list;
  };
  return { fetch, requests };
}

describe('listAllPages', () => {
  test('reads every page in order and keeps the first page resourceVersion', async () => {
    const source = pagedSource(1000);
    const list = await listAllPages(source.fetch, { pageSize: 300 });
    expect(list.items).toHaveLength(1000);
    expect(names(list).slice(0, 2)).toEqual(['o0', 'o1']);
    expect(names(list).at(-1)).toBe('o999');
    expect(list.resourceVersion).toBe('1001');
    expect(list.continue).toBeUndefined();
    expect(source.requests).toEqual([
      { limit: 300 },
      { limit: 300, continue: '1:300' },
      { limit: 300, continue: '1:600' },
      { limit: 300, continue: '1:900' },
    ]);
  });

  test('the default page size is 500; a source that ignores limit is one page', async () => {
    const source = pagedSource(1000);
    await listAllPages(source.fetch);
    expect(source.requests.map((r) => r.limit)).toEqual([500, 500]);
    const all = await listAllPages(async () => ({ items: [obj('a'), obj('b')], resourceVersion: '7' }));
    expect(all).toEqual({ items: [obj('a'), obj('b')], resourceVersion: '7' });
  });

  test('an expired continue token starts the list over, and only the whole snapshot is returned', async () => {
    const source = pagedSource(25, (request) => request === 2);
    const restarts: number[] = [];
    const list = await listAllPages(source.fetch, { pageSize: 10, onRestart: (_err, n) => restarts.push(n) });
    expect(names(list)).toEqual(Array.from({ length: 25 }, (_, i) => `o${i}`));
    expect(list.resourceVersion).toBe('1002');
    expect(restarts).toEqual([1]);
    expect(source.requests).toEqual([
      { limit: 10 },
      { limit: 10, continue: '1:10' },
      { limit: 10 },
      { limit: 10, continue: '2:10' },
      { limit: 10, continue: '2:20' },
    ]);
  });

  test("a 410 on the first page is not a continue expiry: it is the caller's", async () => {
    const source = pagedSource(5, (request) => request === 1);
    await expect(listAllPages(source.fetch, { pageSize: 2 })).rejects.toBeInstanceOf(GoneError);
    expect(source.requests).toHaveLength(1);
  });

  test('a token that keeps expiring gives up after maxRestarts with an error that is not a 410 GoneError', async () => {
    const source = pagedSource(5, (_request, page) => page.continue !== undefined);
    const err = await listAllPages(source.fetch, { pageSize: 2, maxRestarts: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(isGone(err)).toBe(false);
    expect((err as Error).message).toMatch(/expired 4 times/);
    expect(source.requests).toHaveLength(8);
  });

  test('other errors on a later page fail the list at once', async () => {
    let calls = 0;
    const fetch = async (page: ListPageOptions): Promise<ObjectList<KubeObject>> => {
      calls++;
      if (page.continue) throw new KubeApiError(500, 'InternalError', 'etcd unavailable');
      return { items: [obj('a')], resourceVersion: '1', continue: 'x' };
    };
    await expect(listAllPages(fetch, { pageSize: 1 })).rejects.toThrow('etcd unavailable');
    expect(calls).toBe(2);
  });
});
