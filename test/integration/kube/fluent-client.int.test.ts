// kubernetes-fluent-client (KFC) against a real kube-apiserver, operation by operation, as Tern's Kubernetes
// access needs them (docs/architecture.md, "Kubernetes access"). Tests named "serves" show an operation that
// works; tests named "gap" assert the behaviour that makes Tern keep its own code (kube/rest-client.ts,
// operator/src/runtime/informer.ts) for that operation. A gap test fails the day KFC gains the feature: then
// revisit the decision written down in docs/architecture.md.
//
// Requests are observed through undici's diagnostics channels (KFC sends everything through its own undici),
// so the tests can read the exact URLs KFC builds and count the connections it opens.
import { execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenericKind, K8s, RegisterKind, WatchEvent, kind } from 'kubernetes-fluent-client';
import { ConfigMaps } from '../../fixtures/config-maps.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { apiErrorFromStatus, ConflictError, type ApiStatus } from '../../../kube/errors.js';
import { customResource, Namespaces } from '../../../kube/resources.js';
import { RestKubeClient } from '../../../kube/rest-client.js';
import type { KubeObject } from '../../../kube/types.js';

const ns = 'fluent';
const group = 'fluent.tern.dev';

class Widget extends GenericKind {
  declare spec?: { size?: number };
  declare status?: { observedGeneration?: number; phase?: string };
}
RegisterKind(Widget, { group, version: 'v1', kind: 'Widget', plural: 'widgets' });
const Widgets = customResource(group, 'v1', 'Widget', 'widgets', true);

let cp: ControlPlane;
let client: RestKubeClient;
const savedKubeconfig = process.env.KUBECONFIG;

/** What KFC throws on a failed request: its fetch result, not an Error. */
interface FluentFailure {
  ok: false;
  status: number;
  statusText: string;
  data: ApiStatus & { details?: { causes?: { field?: string; message?: string; reason?: string }[] } };
}

async function failureOf(promise: Promise<unknown>): Promise<FluentFailure> {
  try {
    await promise;
  } catch (err) {
    return err as FluentFailure;
  }
  throw new Error('expected the request to fail');
}

/** The method and URL (path + query) of every undici request made while `run` runs, and the connections opened. */
async function observeRequests(
  run: () => Promise<unknown>,
): Promise<{ requests: { method: string; url: URL }[]; connections: number }> {
  const requests: { method: string; url: URL }[] = [];
  let connections = 0;
  const onRequest = (message: unknown): void => {
    const { request } = message as { request: { method: string; origin: string; path: string } };
    requests.push({ method: request.method, url: new URL(request.path, request.origin) });
  };
  const onConnect = (): void => void connections++;
  subscribe('undici:request:create', onRequest);
  subscribe('undici:client:connected', onConnect);
  try {
    await run();
  } finally {
    unsubscribe('undici:request:create', onRequest);
    unsubscribe('undici:client:connected', onConnect);
  }
  return { requests, connections };
}

/** Established TCP connections from this process to the apiserver's port. */
function openConnectionsToApiserver(): number {
  const port = new URL(cp.server).port;
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', 'dport', '=', `:${port}`], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((line) => line.includes(`pid=${process.pid},`)).length;
}

async function eventually<T>(what: string, check: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within 20 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'fluent-client' });
  // KFC takes no kubeconfig argument: every request loads the default chain, so $KUBECONFIG is the only way in.
  process.env.KUBECONFIG = cp.kubeconfigPath;
  client = RestKubeClient.fromKubeconfig(cp.kubeconfigPath);
  await client.create(Namespaces, { metadata: { name: ns } });
  await client.create(
    customResource(
      'apiextensions.k8s.io',
      'v1',
      'CustomResourceDefinition',
      'customresourcedefinitions',
      false,
    ),
    {
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
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
                  spec: { type: 'object', properties: { size: { type: 'integer', minimum: 0 } } },
                  status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                },
              },
            },
          },
        ],
      },
    } as KubeObject,
  );
  // The CRD is served a moment after it is created.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await client.list(Widgets, { namespace: ns });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}, 90_000);

afterAll(async () => {
  if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = savedKubeconfig;
  client?.close();
  await cp?.stop();
});

describe('reads', () => {
  test('serves: typed get and list with the client-certificate kubeconfig the local cluster and tests use', async () => {
    await K8s(kind.ConfigMap).Apply({ metadata: { name: 'read', namespace: ns }, data: { a: '1' } });
    const got = await K8s(kind.ConfigMap).InNamespace(ns).Get('read');
    expect(got.data).toEqual({ a: '1' });
    const list = await K8s(kind.ConfigMap).InNamespace(ns).Get();
    expect(list.items.map((item) => item.metadata?.name)).toContain('read');
    // Our list restores apiVersion/kind on items (the apiserver leaves them out); KFC hands them over as sent.
    expect(list.items.find((item) => item.metadata?.name === 'read')?.kind).toBeUndefined();
  });

  test('gap: a list is one request for the whole collection (no limit/continue paging)', async () => {
    const { requests } = await observeRequests(() => K8s(kind.ConfigMap).InNamespace(ns).Get());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.url.searchParams.has('limit')).toBe(false);
  });

  test('gap: every request opens a new connection (a new undici Agent each time) and leaves it open', async () => {
    const before = openConnectionsToApiserver();
    const { requests, connections } = await observeRequests(async () => {
      for (let i = 0; i < 5; i++) await K8s(kind.ConfigMap).InNamespace(ns).Get('read');
    });
    expect(requests).toHaveLength(5);
    // Five TLS handshakes for five requests, and five idle keep-alive sockets left behind (KFC's Agents keep
    // them for 600 s and are never closed): an operator reading through KFC would pile up connections.
    expect(connections).toBe(5);
    expect(openConnectionsToApiserver() - before).toBeGreaterThanOrEqual(5);
    // RestKubeClient keeps one keep-alive Agent for its lifetime.
    const ours = openConnectionsToApiserver();
    for (let i = 0; i < 5; i++) await client.get(ConfigMaps, 'read', ns);
    expect(openConnectionsToApiserver() - ours).toBeLessThanOrEqual(1);
  });

  test('gap: no kubeconfig or context per client: the process-wide default chain ($KUBECONFIG) is read per request', async () => {
    const broken = join(cp.dir, 'kubeconfig-elsewhere');
    writeFileSync(
      broken,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: nobody, user: {}}]',
        'contexts: [{name: gone, context: {cluster: gone, user: nobody}}]',
        'current-context: gone',
      ].join('\n'),
    );
    process.env.KUBECONFIG = broken;
    try {
      // The same K8s() call now goes to another server: KFC has nowhere to hold "this client's cluster",
      // so `kubectl tern --kubeconfig/--context` and the operator's --kubeconfig cannot be honoured.
      const failure = await failureOf(K8s(kind.ConfigMap).InNamespace(ns).Get('read'));
      expect(failure.ok).toBe(false);
    } finally {
      process.env.KUBECONFIG = cp.kubeconfigPath;
    }
    await expect(K8s(kind.ConfigMap).InNamespace(ns).Get('read')).resolves.toBeDefined();
    // Nor can a call be given its own configuration (this stops type-checking the day K8s() takes one).
    // @ts-expect-error K8s(model, filters) has no third parameter
    expect(() => K8s(kind.ConfigMap, {}, { kubeconfig: cp.kubeconfigPath })).not.toThrow();
  });
});

describe('error shapes', () => {
  test('serves (with a translation): failures are the fetch result carrying the metav1.Status as data', async () => {
    const notFound = await failureOf(K8s(kind.ConfigMap).InNamespace(ns).Get('absent'));
    expect(notFound).toMatchObject({ ok: false, status: 404, data: { reason: 'NotFound' } });
    // Not an Error: no stack, and `instanceof Error` checks (ours: isNotFound etc.) do not see it.
    expect(notFound).not.toBeInstanceOf(Error);

    await K8s(kind.ConfigMap).Create({ metadata: { name: 'taken', namespace: ns } });
    const taken = await failureOf(K8s(kind.ConfigMap).Create({ metadata: { name: 'taken', namespace: ns } }));
    expect(taken).toMatchObject({ status: 409, data: { reason: 'AlreadyExists' } });

    const invalid = await failureOf(
      K8s(Widget).Create({ metadata: { name: 'negative', namespace: ns }, spec: { size: -1 } }),
    );
    expect(invalid).toMatchObject({ status: 422, data: { reason: 'Invalid' } });
    expect(invalid.data.details?.causes?.[0]).toMatchObject({ field: 'spec.size' });

    // The Status is all kube/errors.ts needs to build our typed errors.
    expect(apiErrorFromStatus(taken.status, taken.data, taken.statusText).reason).toBe('AlreadyExists');
  });

  test('gap: Delete swallows 404 (our delete reports NotFound, which callers use) and takes no DeleteOptions', async () => {
    await expect(K8s(kind.ConfigMap).InNamespace(ns).Delete('never-existed')).resolves.toBeUndefined();
  });
});

describe('writes', () => {
  test('serves: server-side apply, with force taking fields another manager owns', async () => {
    await client.patch(
      ConfigMaps,
      'ssa',
      ns,
      {
        type: 'apply',
        body: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'ssa', namespace: ns },
          data: { a: '1' },
        },
      },
      { fieldManager: 'someone-else' },
    );
    const conflict = await failureOf(
      K8s(kind.ConfigMap).Apply({ metadata: { name: 'ssa', namespace: ns }, data: { a: '2' } }),
    );
    expect(conflict).toMatchObject({ status: 409, data: { reason: 'Conflict' } });
    const forced = await K8s(kind.ConfigMap).Apply(
      { metadata: { name: 'ssa', namespace: ns }, data: { a: '2' } },
      { force: true },
    );
    expect(forced.data).toEqual({ a: '2' });
  });

  test('gap: server-side apply always uses the field manager "pepr" (Tern applies as its own manager)', async () => {
    const { requests } = await observeRequests(() =>
      K8s(kind.ConfigMap).Apply({ metadata: { name: 'manager', namespace: ns }, data: { a: '1' } }),
    );
    expect(requests.map((r) => r.url.searchParams.get('fieldManager'))).toEqual(['pepr']);
    const stored = await client.get<KubeObject>(ConfigMaps, 'manager', ns);
    const managers = (stored.metadata as { managedFields?: { manager: string }[] }).managedFields;
    expect(managers?.map((m) => m.manager)).toEqual(['pepr']);
  });

  test('serves: a JSON patch with a resourceVersion precondition (the compare-and-swap our finalizer helpers use)', async () => {
    const created = await K8s(kind.ConfigMap).Create({
      metadata: { name: 'cas', namespace: ns },
      data: { n: '1' },
    });
    const rv = created.metadata!.resourceVersion!;
    const at = (resourceVersion: string, value: string) =>
      K8s(kind.ConfigMap, { name: 'cas', namespace: ns }).Patch([
        { op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion },
        { op: 'replace', path: '/data/n', value },
      ]);
    const v2 = await at(rv, '2');
    expect(v2.data).toEqual({ n: '2' });
    const stale = await failureOf(at(rv, 'lost'));
    expect(stale).toMatchObject({ status: 409, data: { reason: 'Conflict' } });
    expect(apiErrorFromStatus(stale.status, stale.data, stale.statusText)).toBeInstanceOf(ConflictError);
  });

  test('gap: PatchStatus is a merge patch of `status` alone: no resourceVersion precondition, so a stale writer wins', async () => {
    const created = await K8s(Widget).Create({ metadata: { name: 'st', namespace: ns }, spec: { size: 1 } });
    await K8s(Widget).PatchStatus({ metadata: { name: 'st', namespace: ns }, status: { phase: 'First' } });
    // A writer that read the object before that write sends its resourceVersion along; KFC drops the metadata
    // (the body is reduced to { status }), so the apiserver cannot refuse the stale write with 409 as it does
    // for our replaceStatus (PUT /status with the resourceVersion read), which the status writers rely on.
    const { requests } = await observeRequests(() =>
      K8s(Widget).PatchStatus({
        metadata: { name: 'st', namespace: ns, resourceVersion: created.metadata!.resourceVersion },
        status: { phase: 'Stale' },
      }),
    );
    expect(requests.map((r) => [r.method, r.url.pathname])).toEqual([
      ['PATCH', `/apis/${group}/v1/namespaces/${ns}/widgets/st/status`],
    ]);
    const stored = await client.get<Widget & KubeObject>(Widgets, 'st', ns);
    expect(stored.status?.phase).toBe('Stale');
  });

  test('gap: no JSON patch of the status subresource: Patch() goes to the object, where status is ignored', async () => {
    await K8s(Widget).Create({ metadata: { name: 'jp', namespace: ns }, spec: { size: 1 } });
    const patched = await K8s(Widget, { name: 'jp', namespace: ns }).Patch([
      { op: 'add', path: '/status', value: { phase: 'Patched' } },
    ]);
    expect(patched.status).toBeUndefined();
  });

  test("gap: no PUT, so neither replace nor replaceStatus (the status writers' compare-and-swap)", () => {
    const verbs = Object.keys(K8s(Widget)).sort();
    expect(verbs).toEqual(
      [
        'Apply',
        'Create',
        'Delete',
        'Evict',
        'Finalize',
        'Get',
        'InNamespace',
        'Logs',
        'Patch',
        'PatchStatus',
        'Proxy',
        'Raw',
        'Scale',
        'Watch',
        'WithField',
        'WithLabel',
      ].sort(),
    );
  });
});

describe('watch', () => {
  test('serves: the Watcher lists, then delivers adds, updates and deletes', async () => {
    const seen: string[] = [];
    const watcher = K8s(kind.ConfigMap, { namespace: ns, labels: { watch: 'basic' } }).Watch(
      (object, phase) => {
        seen.push(`${phase} ${object.metadata?.name}`);
      },
    );
    await watcher.start();
    try {
      await K8s(kind.ConfigMap).Apply({
        metadata: { name: 'w1', namespace: ns, labels: { watch: 'basic' } },
      });
      await eventually('ADDED w1', () => seen.includes('ADDED w1'));
      await K8s(kind.ConfigMap).Apply({
        metadata: { name: 'w1', namespace: ns, labels: { watch: 'basic' } },
        data: { a: '1' },
      });
      await eventually('MODIFIED w1', () => seen.includes('MODIFIED w1'));
      await K8s(kind.ConfigMap).InNamespace(ns).Delete('w1');
      await eventually('DELETED w1', () => seen.includes('DELETED w1'));
    } finally {
      watcher.close();
    }
  });

  test('gap: no watch from a given resourceVersion and no bookmarks: each (re)connect lists again', async () => {
    // Our informer resumes a watch from the last resourceVersion it saw (ListWatchSource.watch(rv)) and asks for
    // bookmarks so that a quiet collection's resourceVersion stays fresh; KFC's Watcher takes neither (WatchCfg
    // has no resourceVersion) and starts every connection with a LIST. A 1 s silence limit makes it reconnect.
    await K8s(kind.ConfigMap).Apply({ metadata: { name: 'before', namespace: ns, labels: { watch: 'rv' } } });
    const seen: string[] = [];
    let listed = 0;
    const { requests } = await observeRequests(async () => {
      const watcher = K8s(kind.ConfigMap, { namespace: ns, labels: { watch: 'rv' } }).Watch(
        (object, phase) => void seen.push(`${phase} ${object.metadata?.name}`),
        { lastSeenLimitSeconds: 1, resyncDelaySec: 1 },
      );
      watcher.events.on(WatchEvent.LIST, () => listed++);
      // KFC lists, then sends the watch request: a reconnect is complete once its watch is connected too.
      let connected = 0;
      watcher.events.on(WatchEvent.CONNECT, () => connected++);
      try {
        await watcher.start();
        await eventually('ADDED before', () => seen.includes('ADDED before'));
        expect(listed).toBe(1);
        // The silence limit counts from the last watch event, so send one; then stay quiet.
        await K8s(kind.ConfigMap).Apply({
          metadata: { name: 'during', namespace: ns, labels: { watch: 'rv' } },
        });
        await eventually('ADDED during', () => seen.includes('ADDED during'));
        await eventually('a reconnect', () => listed >= 2 && connected >= 2);
      } finally {
        watcher.close();
      }
    });
    const watches = requests.filter((r) => r.url.searchParams.get('watch') === 'true');
    expect(watches.length).toBeGreaterThanOrEqual(2);
    for (const watch of watches) {
      expect(watch.url.searchParams.get('allowWatchBookmarks')).toBeNull();
      expect(watch.url.searchParams.get('timeoutSeconds')).toBeNull();
    }
  });
});
