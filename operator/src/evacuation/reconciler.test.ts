import { pino } from 'pino';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { EVACUATION_NODE_LABEL } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { NotFoundError } from '../../../kube/errors.js';
import type { EventRecorder } from '../../../kube/events.js';
import { objectKey } from '../../../kube/objects.js';
import type { KubeObject, ResourceType } from '../../../kube/types.js';
import type { ReconcileContext } from '../runtime/controller.js';
import type { Informer, InformerHandlers } from '../runtime/informer.js';
import { EvacuationReconciler } from './reconciler.js';

/** An informer's cache and handlers, filled by the test (what the watch has delivered so far). */
class FakeInformer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  addHandlers(h: InformerHandlers<T>) {
    this.handlers.push(h);
  }
  get(key: string) {
    return this.cache.get(key);
  }
  list() {
    return [...this.cache.values()];
  }
  set(object: T) {
    const old = this.cache.get(objectKey(object));
    this.cache.set(objectKey(object), object);
    for (const h of this.handlers) {
      if (old) h.onUpdate?.(old, object);
      else h.onAdd?.(object);
    }
  }
  as() {
    return this as unknown as Informer<T>;
  }
}

const node: HypervisorNode = {
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'HypervisorNode',
  metadata: { name: 'node-1', generation: 2, resourceVersion: '10' },
  spec: { unschedulable: true, drain: true },
  status: {},
} as HypervisorNode;

const vm = (name: string, nodeName: string): VirtualMachine =>
  ({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { namespace: 'default', name, uid: `uid-${name}`, resourceVersion: '5' },
    spec: { running: true, evictionStrategy: 'LiveMigrate' },
    status: { phase: 'Running', node: nodeName },
  }) as VirtualMachine;

function setUp() {
  const nodes = new FakeInformer<HypervisorNode>();
  const vms = new FakeInformer<VirtualMachine>();
  const migrations = new FakeInformer<Migration>();
  /** The VMs as the API stores them now. */
  const stored = new Map<string, VirtualMachine>();
  const created: Migration[] = [];
  const requests: string[] = [];
  const client = {
    get: async (type: ResourceType, name: string, namespace?: string) => {
      requests.push(`GET ${type.plural}/${name}`);
      if (type.plural === 'hypervisornodes') return node;
      const found = stored.get(`${namespace}/${name}`);
      if (!found) throw new NotFoundError(404, 'NotFound', `${name} not found`);
      return found;
    },
    list: async (type: ResourceType) => {
      requests.push(`LIST ${type.plural}`);
      return { items: [], resourceVersion: '1' };
    },
    create: async (_type: ResourceType, object: Migration) => {
      const named = {
        ...object,
        metadata: { ...object.metadata, name: `${object.metadata.generateName}${created.length}` },
      };
      created.push(named);
      return named;
    },
    replaceStatus: async (_type: ResourceType, object: KubeObject) => object,
  } as unknown as KubeClient;
  const events = { record: async () => undefined } as unknown as EventRecorder;
  const reconciler = new EvacuationReconciler({
    client,
    nodes: nodes.as(),
    vms: vms.as(),
    migrations: migrations.as(),
    events,
  });
  const context: ReconcileContext = {
    logger: pino({ enabled: false }),
    reconcileID: 'test',
    signal: new AbortController().signal,
  };
  const reconcile = () => reconciler.reconcile({ key: 'node-1', name: 'node-1' }, context);
  nodes.set(node);
  return { vms, migrations, stored, created, requests, reconcile };
}

describe('EvacuationReconciler from the watch caches', () => {
  test('creates one Migration per VM on the node, and none again before the cache shows it', async () => {
    const { vms, stored, created, requests, reconcile } = setUp();
    for (const v of [vm('a', 'node-1'), vm('b', 'node-1'), vm('c', 'node-2')]) {
      vms.set(v);
      stored.set(objectKey(v), v);
    }
    await reconcile();
    expect(created.map((m) => m.spec.vmName).sort()).toEqual(['a', 'b']);
    expect(created.every((m) => m.metadata.labels?.[EVACUATION_NODE_LABEL] === 'node-1')).toBe(true);
    // A VM change wakes the node again before the Migration cache has the new Migrations.
    await reconcile();
    expect(created).toHaveLength(2);
    // Nothing listed or read: the node's VMs and their Migrations come from the indexes.
    expect(requests).toEqual([]);
  });

  test('a VM the cache still shows on the node but whose record moved gets no second Migration', async () => {
    const { vms, migrations, stored, created, reconcile } = setUp();
    const a = vm('a', 'node-1');
    vms.set(a);
    stored.set(objectKey(a), a);
    await reconcile();
    expect(created).toHaveLength(1);
    // The Migration cache shows it succeeded; the VM cache lags, the API has the VM on node-2.
    migrations.set({
      ...created[0]!,
      metadata: { ...created[0]!.metadata, creationTimestamp: new Date().toISOString() },
      status: { phase: 'Succeeded' },
    });
    stored.set(objectKey(a), vm('a', 'node-2'));
    await reconcile();
    expect(created).toHaveLength(1);
  });

  test('a VM whose cached copy names its failed Migration gets the next one without a read', async () => {
    const { vms, migrations, created, requests, reconcile } = setUp();
    const a = vm('a', 'node-1');
    vms.set(a);
    await reconcile();
    const failed = {
      ...created[0]!,
      metadata: { ...created[0]!.metadata, creationTimestamp: new Date().toISOString() },
      status: { phase: 'Failed' as const },
    };
    migrations.set(failed);
    vms.set({
      ...a,
      status: {
        ...a.status,
        lastMigration: { name: failed.metadata.name!, sourceNode: 'node-1', result: 'Failed' },
      },
    } as VirtualMachine);
    await reconcile();
    expect(created).toHaveLength(2);
    expect(requests).toEqual([]);
  });
});
