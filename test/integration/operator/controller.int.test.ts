// The controller core against a real kube-apiserver + etcd (test/harness/control-plane.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_GROUP, API_VERSION_NAME, crdName, KINDS, NAMESPACED, PLURALS } from '../../../crds/index.js';
import type { Condition } from '../../../crds/index.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { AlreadyExistsError, ConflictError, GoneError, NotFoundError } from '../../../kube/errors.js';
import { EventRecorder, type CoreEvent } from '../../../kube/events.js';
import { addFinalizer, removeFinalizer } from '../../../kube/objects.js';
import { customResource, Events, Leases, Namespaces } from '../../../kube/resources.js';
import { ConfigMaps } from '../../fixtures/config-maps.js';
import { RestKubeClient } from '../../../kube/rest-client.js';
import type {
  KubeObject,
  ListPageOptions,
  ObjectList,
  WatchEvent,
  WatchHandle,
} from '../../../kube/types.js';
import { setCondition } from '../../../kube/conditions.js';
import { Informer, listWatch, type ListWatchSource } from '../../../operator/src/runtime/informer.js';
import type { Lease } from '../../../operator/src/runtime/leader.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');

let cp: ControlPlane;
let client: RestKubeClient;

async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function createNamespace(name: string): Promise<void> {
  await client.create(Namespaces, { metadata: { name } });
}

/** Retries a create while the apiserver does not serve a just-created CRD yet (404). */
async function createWhenServed<T>(create: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await create();
    } catch (err) {
      if (!(err instanceof NotFoundError) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const event = (namespace: string, name: string, message: string): CoreEvent => ({
  metadata: { namespace, name },
  involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name: 'subject', namespace },
  reason: 'Test',
  message,
  type: 'Normal',
  count: 1,
  firstTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  lastTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  source: { component: 'test' },
  reportingComponent: 'test',
  reportingInstance: 'test',
});

/**
 * Compacts etcd up to the current revision, as the apiserver does every 5 minutes. Events bypass the apiserver's
 * watch cache (its default size for events is 0), so a watch of Events from an older revision reaches etcd and
 * gets 410. The harness does not expose etcd, so its URL is read from this control plane's kube-apiserver.
 */
async function compactEtcd(): Promise<void> {
  const apiserver = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    })
    .find((args) => args[0]?.endsWith('kube-apiserver') && args.some((arg) => arg.includes(cp.dir)));
  const etcd = apiserver?.find((arg) => arg.startsWith('--etcd-servers='))?.split('=')[1];
  if (!etcd) throw new Error(`no kube-apiserver process found for ${cp.dir}`);
  const revision = (await client.list(Namespaces)).resourceVersion;
  const response = await fetch(`${etcd}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
  });
  if (!response.ok) throw new Error(`etcd compaction: ${response.status} ${await response.text()}`);
}

const configMap = (namespace: string, name: string, data: Record<string, string> = {}): ConfigMap => ({
  metadata: { namespace, name },
  data,
});

beforeAll(async () => {
  cp = await startControlPlane({ name: 'controller-core' });
  client = RestKubeClient.fromKubeconfig(cp.kubeconfigPath);
}, 90_000);

afterAll(async () => {
  client?.close();
  await cp?.stop();
});

describe('KubeClient on a real apiserver', () => {
  const ns = 'client';
  beforeAll(() => createNamespace(ns));

  test('get/list/create/delete and typed errors', async () => {
    const created = await client.create(ConfigMaps, configMap(ns, 'one', { a: '1' }));
    expect(created.metadata.uid).toBeTruthy();
    await expect(client.create(ConfigMaps, configMap(ns, 'one'))).rejects.toBeInstanceOf(AlreadyExistsError);
    const got = await client.get<ConfigMap>(ConfigMaps, 'one', ns);
    expect(got.data).toEqual({ a: '1' });
    const list = await client.list<ConfigMap>(ConfigMaps, { namespace: ns });
    expect(list.items.map((i) => [i.kind, i.metadata.name])).toContainEqual(['ConfigMap', 'one']);
    expect(Number(list.resourceVersion)).toBeGreaterThan(0);
    await client.delete(ConfigMaps, 'one', ns);
    await expect(client.get(ConfigMaps, 'one', ns)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.delete(ConfigMaps, 'one', ns)).rejects.toBeInstanceOf(NotFoundError);
  });

  test('server-side apply records the field manager and force takes fields owned by another manager', async () => {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'applied', namespace: ns },
      data: { a: '1' },
    };
    const created = await client.patch<ConfigMap>(
      ConfigMaps,
      'applied',
      ns,
      { type: 'apply', body },
      { fieldManager: 'tern-test' },
    );
    expect(created.data).toEqual({ a: '1' });
    const managers = (created.metadata as { managedFields?: { manager: string; operation: string }[] })
      .managedFields;
    expect(managers).toContainEqual(expect.objectContaining({ manager: 'tern-test', operation: 'Apply' }));
    const takeover = { ...body, data: { a: '2' } };
    await expect(
      client.patch(ConfigMaps, 'applied', ns, { type: 'apply', body: takeover }, { fieldManager: 'other' }),
    ).rejects.toBeInstanceOf(ConflictError);
    const forced = await client.patch<ConfigMap>(
      ConfigMaps,
      'applied',
      ns,
      { type: 'apply', body: takeover, force: true },
      { fieldManager: 'other' },
    );
    expect(forced.data).toEqual({ a: '2' });
  });

  test('compare-and-swap: merge and JSON patches with a stale resourceVersion fail with ConflictError', async () => {
    const v1 = await client.create(ConfigMaps, configMap(ns, 'cas', { n: '1' }));
    const v2 = await client.patch<ConfigMap>(
      ConfigMaps,
      'cas',
      ns,
      { type: 'merge', body: { data: { n: '2' } } },
      {
        resourceVersion: v1.metadata.resourceVersion,
      },
    );
    expect(v2.data).toEqual({ n: '2' });
    const stale = v1.metadata.resourceVersion;
    await expect(
      client.patch(
        ConfigMaps,
        'cas',
        ns,
        { type: 'merge', body: { data: { n: 'lost' } } },
        { resourceVersion: stale },
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(
      client.patch(
        ConfigMaps,
        'cas',
        ns,
        { type: 'json', operations: [{ op: 'replace', path: '/data/n', value: 'lost' }] },
        {
          resourceVersion: stale,
        },
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(client.replace(ConfigMaps, { ...v1, data: { n: 'lost' } })).rejects.toBeInstanceOf(
      ConflictError,
    );
    const v3 = await client.patch<ConfigMap>(
      ConfigMaps,
      'cas',
      ns,
      { type: 'json', operations: [{ op: 'replace', path: '/data/n', value: '3' }] },
      { resourceVersion: v2.metadata.resourceVersion },
    );
    expect(v3.data).toEqual({ n: '3' });
    expect((await client.get<ConfigMap>(ConfigMaps, 'cas', ns)).data).toEqual({ n: '3' });
  });

  test('finalizers are added and removed by compare-and-swap and hold a deleted object', async () => {
    let cm = await client.create(ConfigMaps, configMap(ns, 'fin'));
    cm = await addFinalizer(client, ConfigMaps, cm, 'tern.dev/test');
    cm = await addFinalizer(client, ConfigMaps, cm, 'tern.dev/other');
    expect(await addFinalizer(client, ConfigMaps, cm, 'tern.dev/test')).toBe(cm); // no write when present
    expect(cm.metadata.finalizers).toEqual(['tern.dev/test', 'tern.dev/other']);
    await client.delete(ConfigMaps, 'fin', ns);
    cm = await client.get(ConfigMaps, 'fin', ns);
    expect(cm.metadata.deletionTimestamp).toBeTruthy();
    const stale = { ...cm, metadata: { ...cm.metadata, resourceVersion: '1' } };
    await expect(removeFinalizer(client, ConfigMaps, stale, 'tern.dev/test')).rejects.toBeInstanceOf(
      ConflictError,
    );
    cm = await removeFinalizer(client, ConfigMaps, cm, 'tern.dev/test');
    expect(cm.metadata.finalizers).toEqual(['tern.dev/other']);
    await removeFinalizer(client, ConfigMaps, cm, 'tern.dev/other');
    await expect(client.get(ConfigMaps, 'fin', ns)).rejects.toBeInstanceOf(NotFoundError);
  });

  test('owner references: the apiserver stores the controller reference', async () => {
    const owner = await client.create(ConfigMaps, configMap(ns, 'owner'));
    const dependent = configMap(ns, 'dependent');
    dependent.metadata.ownerReferences = [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'owner',
        uid: owner.metadata.uid!,
        controller: true,
        blockOwnerDeletion: true,
      },
    ];
    const stored = await client.create(ConfigMaps, dependent);
    expect(stored.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'owner',
        uid: owner.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  test('status goes through the status subresource only', async () => {
    const widgets = customResource('test.tern.dev', 'v1', 'Widget', 'widgets', true);
    await client.create(
      customResource(
        'apiextensions.k8s.io',
        'v1',
        'CustomResourceDefinition',
        'customresourcedefinitions',
        false,
      ),
      {
        metadata: { name: 'widgets.test.tern.dev' },
        spec: {
          group: 'test.tern.dev',
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
          scope: 'Namespaced',
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: { type: 'object', properties: { size: { type: 'integer' } } },
                    status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                  },
                },
              },
            },
          ],
        },
      } as KubeObject,
    );
    type Widget = KubeObject & {
      spec: { size: number };
      status?: { conditions?: Condition[]; observedGeneration?: number };
    };
    const created = await createWhenServed(() =>
      client.create<Widget>(widgets, { metadata: { namespace: ns, name: 'w' }, spec: { size: 1 } }),
    );
    // A status change on the main resource is ignored...
    await client.patch(widgets, 'w', ns, { type: 'merge', body: { status: { observedGeneration: 99 } } });
    expect((await client.get<Widget>(widgets, 'w', ns)).status).toBeUndefined();
    // ...and a spec change through /status too.
    const conditions = setCondition(undefined, {
      type: 'Ready',
      status: 'True',
      reason: 'Tested',
      message: 'ok',
      observedGeneration: created.metadata.generation,
    });
    const patched = await client.patch<Widget>(
      widgets,
      'w',
      ns,
      {
        type: 'merge',
        body: { spec: { size: 7 }, status: { conditions, observedGeneration: created.metadata.generation } },
      },
      { subresource: 'status' },
    );
    expect(patched.spec.size).toBe(1);
    expect(patched.status?.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'True',
      reason: 'Tested',
    });
    // replaceStatus is a compare-and-swap too.
    await expect(
      client.replaceStatus<Widget>(widgets, { ...created, status: { observedGeneration: 5 } }),
    ).rejects.toBeInstanceOf(ConflictError);
    const replaced = await client.replaceStatus<Widget>(widgets, {
      ...patched,
      status: { observedGeneration: 6 },
    });
    expect(replaced.status).toEqual({ observedGeneration: 6 });
  }, 30_000);

  test('the event recorder creates one Event per reason/message and counts repeats', async () => {
    const subject = await client.create(ConfigMaps, configMap(ns, 'evented'));
    const recorder = new EventRecorder(client, { component: 'tern-operator', instance: 'test-0' });
    await recorder.record(
      { ...subject, apiVersion: 'v1', kind: 'ConfigMap' },
      'Normal',
      'Scheduled',
      'placed on node-a',
    );
    await recorder.record(
      { ...subject, apiVersion: 'v1', kind: 'ConfigMap' },
      'Normal',
      'Scheduled',
      'placed on node-a',
    );
    await recorder.record(
      { ...subject, apiVersion: 'v1', kind: 'ConfigMap' },
      'Warning',
      'Failed',
      'no capacity',
    );
    const events = (await client.list<CoreEvent>(Events, { namespace: ns })).items.filter(
      (e) => e.involvedObject.uid === subject.metadata.uid,
    );
    expect(events.map((e) => [e.type, e.reason, e.message, e.count]).sort()).toEqual([
      ['Normal', 'Scheduled', 'placed on node-a', 2],
      ['Warning', 'Failed', 'no capacity', 1],
    ]);
    expect(events[0]!.involvedObject).toMatchObject({ kind: 'ConfigMap', name: 'evented', namespace: ns });
    expect(events[0]!.source.component).toBe('tern-operator');
  });

  test('the event recorder bounds a hostile message (megabytes, escapes, binary) to one printable line of 1 KiB', async () => {
    const subject = await client.create(ConfigMaps, configMap(ns, 'hostile'));
    const recorder = new EventRecorder(client, { component: 'tern-operator', instance: 'test-0' });
    const console = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7919) % 256)).toString('utf8');
    await recorder.record(
      { ...subject, apiVersion: 'v1', kind: 'ConfigMap' },
      'Warning',
      'GuestRestarted',
      `guest failed (\x1b[31mpanic\x1b[0m\n${console}\n\u20ac\u20ac); restarting it`,
    );
    const [stored] = (await client.list<CoreEvent>(Events, { namespace: ns })).items.filter(
      (e) => e.involvedObject.uid === subject.metadata.uid,
    );
    expect(Buffer.byteLength(stored!.message)).toBeLessThanOrEqual(1024);
    expect(stored!.message).toMatch(
      /^guest failed \(panic \u23ce .*\u2026\[\d+ bytes cut\]\u2026 .*\); restarting it$/su,
    );
    // eslint-disable-next-line no-control-regex
    expect(stored!.message).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });

  test('list: limit + continue reads one page at a time; without limit, the client reads listPageSize pages', async () => {
    const paged = 'client-paged';
    await createNamespace(paged);
    const names = Array.from({ length: 25 }, (_, i) => `cm-${String(i).padStart(2, '0')}`);
    for (const name of names) await client.create(ConfigMaps, configMap(paged, name));
    const first = await client.list<ConfigMap>(ConfigMaps, { namespace: paged, limit: 10 });
    const second = await client.list<ConfigMap>(ConfigMaps, {
      namespace: paged,
      limit: 10,
      continue: first.continue,
    });
    const third = await client.list<ConfigMap>(ConfigMaps, {
      namespace: paged,
      limit: 10,
      continue: second.continue,
    });
    expect([first, second, third].map((page) => [page.items.length, Boolean(page.continue)])).toEqual([
      [10, true],
      [10, true],
      [5, false],
    ]);
    // The continuations are served from the first page's snapshot.
    expect([second.resourceVersion, third.resourceVersion]).toEqual([
      first.resourceVersion,
      first.resourceVersion,
    ]);
    expect([...first.items, ...second.items, ...third.items].map((o) => [o.kind, o.metadata.name])).toEqual(
      names.map((name) => ['ConfigMap', name]),
    );

    const small = RestKubeClient.fromKubeconfig(cp.kubeconfigPath, { listPageSize: 10 });
    // Count the requests behind list() (listPage is the client's one-page request).
    const requests: ListPageOptions[] = [];
    const internals = small as unknown as {
      listPage(type: unknown, options: ListPageOptions): Promise<ObjectList<ConfigMap>>;
    };
    const listPage = internals.listPage.bind(small);
    internals.listPage = (type, options) => (requests.push(options), listPage(type, options));
    try {
      const all = await small.list<ConfigMap>(ConfigMaps, { namespace: paged });
      expect(all.items.map((o) => o.metadata.name)).toEqual(names);
      expect(all.continue).toBeUndefined();
      expect(requests.map((r) => [r.limit, Boolean(r.continue)])).toEqual([
        [10, false],
        [10, true],
        [10, true],
      ]);
    } finally {
      small.close();
    }
  });

  test('a continue token from before an etcd compaction ends with GoneError', async () => {
    const expired = 'client-expired';
    await createNamespace(expired);
    for (const name of ['e1', 'e2', 'e3']) await client.create(Events, event(expired, name, 'v0'));
    const first = await client.list<CoreEvent>(Events, { namespace: expired, limit: 1 });
    expect(first.continue).toBeTruthy();
    await client.create(Events, event(expired, 'after-1', 'v0'));
    await client.create(Events, event(expired, 'after-2', 'v0'));
    await compactEtcd();
    await expect(
      client.list(Events, { namespace: expired, limit: 1, continue: first.continue }),
    ).rejects.toBeInstanceOf(GoneError);
  }, 20_000);

  test('a watch from a resourceVersion etcd has compacted away ends with GoneError', async () => {
    const before = await client.list(Events, { namespace: ns });
    // Watching from R asks for revisions R+1 on; a compaction at the current revision removes R+1 only if
    // at least two writes happened since R.
    await client.create(Events, event(ns, 'after-list-1', 'v0'));
    await client.create(Events, event(ns, 'after-list-2', 'v0'));
    await compactEtcd();
    const seen: WatchEvent<CoreEvent>[] = [];
    const handle = client.watch<CoreEvent>(
      Events,
      { namespace: ns, resourceVersion: before.resourceVersion },
      (e) => seen.push(e),
    );
    await expect(handle.done).rejects.toBeInstanceOf(GoneError);
    expect(seen).toEqual([]);
  }, 20_000);
});

describe('Informer on a real apiserver', () => {
  const ns = 'informer';
  beforeAll(() => createNamespace(ns));

  function record(informer: Informer<ConfigMap>): string[] {
    const log: string[] = [];
    informer.addHandlers({
      onAdd: (o) => log.push(`add ${o.metadata.name} ${JSON.stringify(o.data ?? {})}`),
      onUpdate: (_old, o) => log.push(`update ${o.metadata.name} ${JSON.stringify(o.data ?? {})}`),
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    });
    return log;
  }

  test('sees creates, updates and deletes', async () => {
    await client.create(ConfigMaps, configMap(ns, 'before', { v: '0' }));
    const informer = new Informer<ConfigMap>(listWatch(client, ConfigMaps, { namespace: ns }));
    const log = record(informer);
    informer.start();
    await informer.waitForSync();
    expect(informer.get(`${ns}/before`)?.data).toEqual({ v: '0' });
    const started = Date.now();
    await client.create(ConfigMaps, configMap(ns, 'live', { v: '1' }));
    await eventually('add seen', 5_000, () => log.includes('add live {"v":"1"}'));
    const addLatencyMs = Date.now() - started;
    await client.patch(ConfigMaps, 'live', ns, { type: 'merge', body: { data: { v: '2' } } });
    await eventually('update seen', 5_000, () => log.includes('update live {"v":"2"}'));
    await client.delete(ConfigMaps, 'live', ns);
    await eventually('delete seen', 5_000, () => log.includes('delete live'));
    expect(log).toEqual([
      'add before {"v":"0"}',
      'add live {"v":"1"}',
      'update live {"v":"2"}',
      'delete live',
    ]);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['before']);
    console.log(`informer: create → add handler in ${addLatencyMs} ms`);
    await informer.stop();
  });

  test('lists a collection larger than one page in pages, as one snapshot, then watches', async () => {
    const paged = 'informer-paged';
    await createNamespace(paged);
    const names = Array.from({ length: 25 }, (_, i) => `cm-${String(i).padStart(2, '0')}`);
    for (const name of names) await client.create(ConfigMaps, configMap(paged, name, { v: '0' }));
    const real = listWatch<ConfigMap>(client, ConfigMaps, { namespace: paged });
    const pages: (ListPageOptions | undefined)[] = [];
    const source: ListWatchSource<ConfigMap> = {
      description: real.description,
      list: (page) => (pages.push(page), real.list(page)),
      watch: (resourceVersion, onEvent) => real.watch(resourceVersion, onEvent),
    };
    const informer = new Informer<ConfigMap>(source, { listPageSize: 10 });
    const log = record(informer);
    informer.start();
    await informer.waitForSync();
    expect(pages.map((p) => [p?.limit, Boolean(p?.continue)])).toEqual([
      [10, false],
      [10, true],
      [10, true],
    ]);
    expect(log).toEqual(names.map((name) => `add ${name} {"v":"0"}`));
    expect(informer.relists).toBe(1);
    await client.create(ConfigMaps, configMap(paged, 'late', { v: '1' }));
    await eventually('watch after a paged list', 5_000, () => log.includes('add late {"v":"1"}'));
    expect(informer.list()).toHaveLength(26);
    await informer.stop();
  });

  test('a continue token that etcd compacted away mid-list (410 Gone) → the relist starts over', async () => {
    const expired = 'informer-expired';
    await createNamespace(expired);
    for (const name of ['e1', 'e2', 'e3', 'e4', 'e5'])
      await client.create(Events, event(expired, name, 'v0'));
    const real = listWatch<CoreEvent>(client, Events, { namespace: expired });
    const pages: (ListPageOptions | undefined)[] = [];
    let compacted = false;
    const source: ListWatchSource<CoreEvent> = {
      description: 'events, compacted after the first page',
      list: async (page) => {
        pages.push(page);
        const result = await real.list(page);
        if (!compacted) {
          // Between the first page and the second, the cluster changes and etcd compacts past the snapshot.
          compacted = true;
          await client.create(Events, event(expired, 'late-1', 'v0'));
          await client.create(Events, event(expired, 'late-2', 'v0'));
          await compactEtcd();
        }
        return result;
      },
      watch: (resourceVersion, onEvent) => real.watch(resourceVersion, onEvent),
    };
    const informer = new Informer<CoreEvent>(source, { listPageSize: 2 });
    const log: string[] = [];
    informer.addHandlers({ onAdd: (o) => log.push(`add ${o.metadata.name}`) });
    informer.start();
    await informer.waitForSync();
    // Page 1, its continuation (410), then the whole list again: 7 events in pages of 2.
    expect(pages.map((p) => [p?.limit, Boolean(p?.continue)])).toEqual([
      [2, false],
      [2, true],
      [2, false],
      [2, true],
      [2, true],
      [2, true],
    ]);
    expect(log.sort()).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'late-1', 'late-2'].map((n) => `add ${n}`));
    expect(informer.relists).toBe(1);
    await informer.stop();
  }, 30_000);

  test('410 Gone after etcd compacted past the informer → relist converges on what it missed', async () => {
    const gone = 'informer-gone';
    await createNamespace(gone);
    for (const name of ['keep', 'change', 'remove']) await client.create(Events, event(gone, name, 'v0'));
    const real = listWatch<CoreEvent>(client, Events, { namespace: gone });
    // The first watch is held back until the test lets it go, as if the informer had lost its connection
    // right after listing; meanwhile the cluster changes and etcd compacts past the listed resourceVersion.
    let releaseFirstWatch!: () => void;
    const firstWatchReleased = new Promise<void>((resolve) => (releaseFirstWatch = resolve));
    const watchedFrom: string[] = [];
    const source: ListWatchSource<CoreEvent> = {
      description: 'events, first watch delayed',
      list: () => real.list(),
      watch: (resourceVersion, onEvent) => {
        watchedFrom.push(resourceVersion);
        if (watchedFrom.length > 1) return real.watch(resourceVersion, onEvent);
        let inner: WatchHandle | undefined;
        let stopped = false;
        const done = firstWatchReleased.then(() => {
          if (stopped) return;
          inner = real.watch(resourceVersion, onEvent);
          return inner.done;
        });
        return { done, stop: () => ((stopped = true), inner?.stop()) };
      },
    };
    const informer = new Informer<CoreEvent>(source);
    const log: string[] = [];
    informer.addHandlers({
      onAdd: (o) => log.push(`add ${o.metadata.name} ${o.message}`),
      onUpdate: (_old, o) => log.push(`update ${o.metadata.name} ${o.message}`),
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    });
    informer.start();
    await informer.waitForSync();
    const listedAt = informer.lastSyncResourceVersion;
    await client.patch(Events, 'change', gone, { type: 'merge', body: { message: 'v1' } });
    await client.delete(Events, 'remove', gone);
    await client.create(Events, event(gone, 'new', 'v0'));
    await compactEtcd();
    releaseFirstWatch();
    await eventually(
      'relisted and converged',
      10_000,
      () => informer.relists === 2 && watchedFrom.length === 2,
    );
    expect(watchedFrom[0]).toBe(listedAt);
    expect(Number(watchedFrom[1])).toBeGreaterThan(Number(listedAt));
    expect(
      informer
        .list()
        .map((o) => `${o.metadata.name} ${o.message}`)
        .sort(),
    ).toEqual(['change v1', 'keep v0', 'new v0']);
    expect(log).toEqual([
      'add change v0',
      'add keep v0',
      'add remove v0',
      'delete remove',
      'update change v1',
      'update keep v0', // a relist resyncs unchanged objects too
      'add new v0',
    ]);
    // The watch that follows the relist delivers again.
    await client.patch(Events, 'keep', gone, { type: 'merge', body: { message: 'after' } });
    await eventually('watch after relist', 5_000, () => log.includes('update keep after'));
    await informer.stop();
  }, 30_000);
});

describe("the project's CRDs on a real apiserver", () => {
  const ns = 'crd';
  beforeAll(() => createNamespace(ns));

  test('an informer on VirtualMachines sees kubectl apply, a status write through /status, and kubectl delete', async () => {
    const crdFile = join(repoRoot, 'crds', 'generated', `${API_GROUP}_${PLURALS.VirtualMachine}.yaml`);
    expect(await cp.kubectl(['apply', '-f', crdFile])).toMatchObject({ code: 0, stderr: '' });
    const established = await cp.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      `crd/${crdName('VirtualMachine')}`,
    ]);
    expect(established.code).toBe(0);
    const virtualMachines = customResource(
      API_GROUP,
      API_VERSION_NAME,
      KINDS.VirtualMachine,
      PLURALS.VirtualMachine,
      NAMESPACED.VirtualMachine,
    );
    type Vm = KubeObject & {
      spec: { running?: boolean };
      status?: { conditions?: Condition[]; observedGeneration?: number };
    };
    const informer = new Informer<Vm>(listWatch(client, virtualMachines, { namespace: ns }));
    const log: string[] = [];
    informer.addHandlers({
      onAdd: (o) => log.push(`add ${o.metadata.name} generation ${o.metadata.generation}`),
      onUpdate: (_old, o) =>
        log.push(
          `update ${o.metadata.name} generation ${o.metadata.generation} ready ${o.status?.conditions?.[0]?.status}`,
        ),
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    });
    informer.start();
    await informer.waitForSync();
    const applied = await cp.kubectl([
      'apply',
      '-n',
      ns,
      '-f',
      join(repoRoot, 'examples', 'virtualmachine.yaml'),
    ]);
    expect(applied).toMatchObject({ code: 0, stderr: '' });
    await eventually('add seen', 5_000, () => log.includes('add vm01 generation 1'));
    const vm = informer.get(`${ns}/vm01`)!;
    expect(vm.spec.running).toBe(true);
    const conditions = setCondition(vm.status?.conditions, {
      type: 'Ready',
      status: 'False',
      reason: 'Scheduling',
      message: 'no node yet',
      observedGeneration: vm.metadata.generation,
    });
    await client.patch(
      virtualMachines,
      'vm01',
      ns,
      { type: 'merge', body: { status: { conditions, observedGeneration: vm.metadata.generation } } },
      { subresource: 'status', resourceVersion: vm.metadata.resourceVersion },
    );
    await eventually('status update seen', 5_000, () => log.includes('update vm01 generation 1 ready False'));
    const deleted = await cp.kubectl(['delete', '-n', ns, 'virtualmachine', 'vm01']);
    expect(deleted.code).toBe(0);
    await eventually('delete seen', 5_000, () => log.includes('delete vm01'));
    expect(log).toEqual(['add vm01 generation 1', 'update vm01 generation 1 ready False', 'delete vm01']);
    await informer.stop();
  }, 60_000);
});

describe('leader election with two operator processes', () => {
  const ns = 'leader';
  const children: ChildProcess[] = [];
  beforeAll(() => createNamespace(ns));
  afterAll(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  interface Line {
    event: string;
    key?: string;
    identity: string;
    at?: number;
    lost?: boolean;
  }

  function candidate(identity: string) {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the child
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, '../../fixtures/leader-candidate.ts'), cp.kubeconfigPath, identity, ns],
      { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    const lines: Line[] = [];
    let stderr = '';
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete) if (line.startsWith('{')) lines.push(JSON.parse(line) as Line);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return {
      child,
      lines,
      exited,
      stderr: () => stderr,
      reconciled: () => lines.filter((l) => l.event === 'reconciled'),
    };
  }

  const holder = async () => (await client.get<Lease>(Leases, 'leader-test', ns)).spec?.holderIdentity;

  test('only the leader reconciles; SIGKILL of the leader → the standby takes over within the lease time; SIGTERM releases', async () => {
    await client.create(ConfigMaps, configMap(ns, 'work-1'));
    const a = candidate('a');
    await eventually('a leads and reconciles', 30_000, () => {
      if (a.child.exitCode !== null) throw new Error(`candidate a exited: ${a.stderr()}`);
      return a.reconciled().length > 0;
    });
    const b = candidate('b');
    await eventually('b is up', 30_000, () => b.lines.some((l) => l.event === 'started'));
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // b has synced and campaigned several times
    expect(await holder()).toBe('a');
    await client.create(ConfigMaps, configMap(ns, 'work-2'));
    await eventually('a reconciles work-2', 5_000, () =>
      a.reconciled().some((l) => l.key === `${ns}/work-2`),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(b.reconciled()).toEqual([]);

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    await eventually('b takes over', 10_000, () => b.reconciled().length > 0);
    const takeoverMs = b.reconciled()[0]!.at! - killedAt;
    console.log(
      `leader election: SIGKILL of the leader → standby reconciling after ${takeoverMs} ms (lease 3 s, retry 0.5 s)`,
    );
    expect(takeoverMs).toBeLessThan(3_000 + 1_500);
    expect(await holder()).toBe('b');
    // b resyncs everything it had cached: both objects.
    await eventually('b reconciled all', 5_000, () => b.reconciled().length >= 2);
    expect(
      b
        .reconciled()
        .map((l) => l.key)
        .sort(),
    ).toEqual([`${ns}/work-1`, `${ns}/work-2`]);

    const c = candidate('c');
    await eventually('c is up', 30_000, () => c.lines.some((l) => l.event === 'started'));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(c.reconciled()).toEqual([]);
    b.child.kill('SIGTERM');
    const terminatedAt = Date.now();
    expect(await b.exited).toBe(0);
    await eventually('c takes over', 10_000, () => c.reconciled().length > 0);
    const handoverMs = c.reconciled()[0]!.at! - terminatedAt;
    console.log(
      `leader election: SIGTERM of the leader (lease released) → standby reconciling after ${handoverMs} ms`,
    );
    expect(handoverMs).toBeLessThan(2_000); // released: no wait for the lease to expire
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    expect(await holder()).toBe('');
  }, 120_000);
});
