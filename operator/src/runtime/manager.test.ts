import type { KubeClient } from '../../../kube/client.js';
import { customResource } from '../../../kube/resources.js';
import type { KubeObject, WatchEvent } from '../../../kube/types.js';
import { NotLeadingError } from './leader.js';
import { Manager } from './manager.js';

const ConfigMaps = customResource('', 'v1', 'ConfigMap', 'configmaps', true);

/** Just enough of a KubeClient for informers: a fixed list and watches that stay open until stopped. */
function listWatchClient(items: KubeObject[]) {
  const open = new Set<(event: WatchEvent<KubeObject>) => void>();
  const unsupported = () => {
    throw new Error('not used');
  };
  const client = {
    list: async () => ({ items, resourceVersion: '1' }),
    watch: (_type: unknown, _options: unknown, onEvent: (event: WatchEvent<KubeObject>) => void) => {
      open.add(onEvent);
      let stop = () => {};
      const done = new Promise<void>((resolve) => (stop = resolve)).then(() => void open.delete(onEvent));
      return { done, stop: () => stop() };
    },
    get: unsupported,
    create: unsupported,
    replace: unsupported,
    replaceStatus: unsupported,
    patch: unsupported,
    delete: unsupported,
  } as unknown as KubeClient;
  return {
    client,
    openWatches: () => open.size,
    emit: (e: WatchEvent<KubeObject>) => open.forEach((f) => f(e)),
  };
}

const cm = (name: string, resourceVersion = '1'): KubeObject => ({
  metadata: { namespace: 'ns', name, resourceVersion },
});

test('without leader election the manager syncs, runs its controllers, and stops everything on stop()', async () => {
  const { client, openWatches, emit } = listWatchClient([cm('a'), cm('b')]);
  const manager = new Manager({ client });
  const seen: string[] = [];
  const first = manager.informer(ConfigMaps, { namespace: 'ns' });
  expect(manager.informer(ConfigMaps, { namespace: 'ns' })).toBe(first); // shared
  manager.addController({ name: 'cms', reconcile: async ({ key }) => void seen.push(key) }).watch(first);
  expect(manager.hasSynced()).toBe(false);
  expect(() => manager.fencingToken()).toThrow(NotLeadingError); // no daemon call before the controllers run
  const running = manager.start();
  while (seen.length < 2) await new Promise((resolve) => setImmediate(resolve));
  expect(manager.hasSynced()).toBe(true);
  expect(manager.isLeader()).toBe(true);
  expect(manager.fencingToken()).toBe(0); // the token of an operator without leader election
  expect(seen.sort()).toEqual(['ns/a', 'ns/b']);
  emit({ type: 'ADDED', object: cm('c', '2') });
  while (seen.length < 3) await new Promise((resolve) => setImmediate(resolve));
  expect(() => manager.addController({ name: 'late', reconcile: async () => {} })).toThrow(/before start/);
  await manager.stop();
  await running;
  expect(manager.isLeader()).toBe(false);
  expect(() => manager.fencingToken()).toThrow(/controllers are not running/);
  expect(openWatches()).toBe(0);
});

test('SIGTERM triggers a graceful stop', async () => {
  const { client } = listWatchClient([]);
  const manager = new Manager({ client });
  manager.informer(ConfigMaps);
  const removeHandlers = manager.handleSignals(['SIGTERM']);
  const running = manager.start();
  await new Promise((resolve) => setImmediate(resolve));
  process.emit('SIGTERM');
  await running;
  removeHandlers();
  expect(manager.hasSynced()).toBe(true);
});
