import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { KubeObject, ObjectList, WatchEvent, WatchHandle } from '../../../kube/types.js';
import { ManualClock } from './clock.js';
import { Controller, TerminalError, type ReconcileRequest, type ReconcileResult } from './controller.js';
import type { KeyMapper } from './handlers.js';
import { Informer, type ListWatchSource } from './informer.js';

/** A source whose list is fixed and whose single watch the test drives. */
function staticSource(items: KubeObject[]) {
  let emit: (event: WatchEvent<KubeObject>) => void = () => {};
  const source: ListWatchSource<KubeObject> = {
    description: 'fake',
    list: async (): Promise<ObjectList<KubeObject>> => ({ items, resourceVersion: '1' }),
    watch: (_rv, onEvent): WatchHandle => {
      emit = onEvent;
      let stop = () => {};
      return { done: new Promise<void>((resolve) => (stop = resolve)), stop: () => stop() };
    },
  };
  return { source, emit: (event: WatchEvent<KubeObject>) => emit(event) };
}

const obj = (name: string, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
  metadata: { namespace: 'ns', name, resourceVersion: '1', ...extra },
});

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

describe('Controller', () => {
  test('reconciles each key once per burst of events, retries errors with backoff, honours requeueAfter', async () => {
    const clock = new ManualClock();
    const registry = new Registry();
    const { source, emit } = staticSource([obj('a'), obj('b')]);
    const informer = new Informer(source, { clock });
    const calls: string[] = [];
    const outcomes: Record<string, (() => ReconcileResult)[]> = {
      'ns/a': [
        () => {
          throw new Error('transient');
        },
        () => ({ requeueAfterMs: 5_000 }),
      ],
      'ns/b': [
        () => {
          throw new TerminalError('bad spec');
        },
      ],
    };
    const controller = new Controller({
      name: 'test',
      clock,
      registry,
      backoff: { baseMs: 1_000, maxMs: 10_000 },
      reconcile: async (request: ReconcileRequest) => {
        calls.push(`${request.namespace}/${request.name}`);
        return outcomes[request.key]?.shift()?.();
      },
    }).watch(informer);
    informer.start();
    await informer.waitForSync();
    emit({ type: 'MODIFIED', object: obj('a', { resourceVersion: '2' }) });
    emit({ type: 'MODIFIED', object: obj('a', { resourceVersion: '3' }) });
    controller.start();
    await flush();
    expect(calls).toEqual(['ns/a', 'ns/b']); // three events for a, one reconcile

    clock.advance(999);
    await flush();
    expect(calls).toHaveLength(2);
    clock.advance(1); // a's retry after the first backoff step; b's terminal error is not retried
    await flush();
    expect(calls).toEqual(['ns/a', 'ns/b', 'ns/a']);

    clock.advance(5_000); // requeueAfter
    await flush();
    expect(calls).toEqual(['ns/a', 'ns/b', 'ns/a', 'ns/a']);
    clock.advance(60_000);
    await flush();
    expect(calls).toHaveLength(4);

    expect(
      await metric(registry, 'tern_controller_reconcile_total', { controller: 'test', result: 'error' }),
    ).toBe(1);
    expect(await metric(registry, 'tern_controller_reconcile_total', { result: 'terminal_error' })).toBe(1);
    expect(await metric(registry, 'tern_controller_reconcile_total', { result: 'requeue_after' })).toBe(1);
    expect(await metric(registry, 'tern_controller_reconcile_total', { result: 'success' })).toBe(1);
    expect(await metric(registry, 'tern_controller_reconcile_errors_total', { controller: 'test' })).toBe(2);
    expect(await metric(registry, 'tern_workqueue_retries_total', { name: 'test' })).toBe(1);
    await controller.stop();
    await informer.stop();
  });

  test('with several workers, different keys run in parallel but one key never twice at once', async () => {
    const { source, emit } = staticSource([obj('a'), obj('b')]);
    const informer = new Informer(source, { clock: new ManualClock() });
    const running = new Set<string>();
    let maxParallel = 0;
    let overlapSameKey = false;
    const release: (() => void)[] = [];
    const controller = new Controller({
      name: 'parallel',
      workers: 3,
      reconcile: async ({ key }) => {
        if (running.has(key)) overlapSameKey = true;
        running.add(key);
        maxParallel = Math.max(maxParallel, running.size);
        await new Promise<void>((resolve) => release.push(resolve));
        running.delete(key);
      },
    }).watch(informer);
    informer.start();
    await informer.waitForSync();
    controller.start();
    await flush();
    emit({ type: 'MODIFIED', object: obj('a', { resourceVersion: '2' }) }); // a is running: must wait
    await flush();
    expect(running).toEqual(new Set(['ns/a', 'ns/b']));
    expect(release).toHaveLength(2);
    release.shift()!(); // a finishes → its pending event runs next
    await flush();
    expect(release).toHaveLength(2);
    expect(overlapSameKey).toBe(false);
    expect(maxParallel).toBe(2);
    for (const r of release.splice(0)) r();
    await flush();
    const stopping = controller.stop();
    await stopping;
    await informer.stop();
  });

  test('owner and mapped handlers enqueue the root object, for old and new state', async () => {
    const owner = { kind: 'ConfigMap', apiVersion: 'v1', name: 'root', uid: 'u1', controller: true };
    const { source, emit } = staticSource([obj('child', { ownerReferences: [owner] })]);
    const { source: relatedSource, emit: emitRelated } = staticSource([]);
    const informer = new Informer(source, { clock: new ManualClock() });
    const related = new Informer(relatedSource, { clock: new ManualClock() });
    const keys: string[] = [];
    // The keys of a child's controlling ConfigMap, and of the object a label names.
    const controllingConfigMap: KeyMapper<KubeObject> = (o) =>
      (o.metadata.ownerReferences ?? [])
        .filter((ref) => ref.kind === 'ConfigMap' && ref.apiVersion === 'v1' && ref.controller === true)
        .map((ref) => `${o.metadata.namespace}/${ref.name}`);
    const labelTarget: KeyMapper<KubeObject> = (o) => [`ns/${o.metadata.labels?.target ?? ''}`];
    const controller = new Controller({ name: 'owners', reconcile: async ({ key }) => void keys.push(key) })
      .watch(informer, controllingConfigMap)
      .watch(related, labelTarget);
    informer.start();
    related.start();
    await Promise.all([informer.waitForSync(), related.waitForSync()]);
    controller.start();
    await flush();
    expect(keys).toEqual(['ns/root']);
    emit({
      type: 'MODIFIED',
      object: obj('child', {
        resourceVersion: '2',
        ownerReferences: [{ ...owner, name: 'other', uid: 'u2' }],
      }),
    });
    await flush();
    expect(keys.slice(1).sort()).toEqual(['ns/other', 'ns/root']);
    emitRelated({ type: 'ADDED', object: obj('x', { labels: { target: 'vm1' } }) });
    await flush();
    expect(keys.at(-1)).toBe('ns/vm1');
    await controller.stop();
    await Promise.all([informer.stop(), related.stop()]);
  });

  test('stop aborts the reconcile signal and waits for the running reconcile', async () => {
    const { source } = staticSource([obj('a')]);
    const informer = new Informer(source, { clock: new ManualClock() });
    let finished = false;
    const controller = new Controller({
      name: 'stop',
      reconcile: async (_request, { signal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        await flush();
        finished = true;
      },
    }).watch(informer);
    informer.start();
    await informer.waitForSync();
    controller.start();
    await flush();
    await controller.stop();
    expect(finished).toBe(true);
    await informer.stop();
  });
});

test('each reconcile logs through a child logger carrying controller, key and reconcileID', async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const { source } = staticSource([obj('a')]);
  const informer = new Informer(source, { clock: new ManualClock() });
  const clock = new ManualClock();
  const controller = new Controller({
    name: 'logging',
    logger,
    clock,
    reconcile: async (_request, { logger: log, reconcileID }) => {
      log.info({ seen: reconcileID }, 'reconciling');
      throw new Error('boom');
    },
  }).watch(informer);
  informer.start();
  await informer.waitForSync();
  controller.start();
  await flush();
  const reconciling = lines.find((l) => l.msg === 'reconciling')!;
  expect(reconciling).toMatchObject({ controller: 'logging', key: 'ns/a' });
  expect(reconciling.reconcileID).toBe(reconciling.seen);
  const failure = lines.find((l) => l.msg === 'reconcile failed, will retry')!;
  expect(failure).toMatchObject({
    controller: 'logging',
    key: 'ns/a',
    reconcileID: reconciling.reconcileID,
    retries: 1,
  });
  expect(failure.err).toMatchObject({ message: 'boom' });
  await controller.stop();
  await informer.stop();
});
