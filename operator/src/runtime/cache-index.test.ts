import type { KubeObject } from '../../../kube/types.js';
import { CacheIndex } from './cache-index.js';
import type { InformerHandlers } from './informer.js';

type Vm = KubeObject & { status?: { node?: string; nodes?: string[] } };

const vm = (name: string, node?: string, resourceVersion = '1'): Vm => ({
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'VirtualMachine',
  metadata: { namespace: 'ns', name, resourceVersion },
  status: node === undefined ? {} : { node },
});

/** The informer's side: the handlers the index registers, driven by the test as an informer would. */
function fakeInformer() {
  const handlers: InformerHandlers<Vm>[] = [];
  return {
    addHandlers: (h: InformerHandlers<Vm>) => void handlers.push(h),
    add: (o: Vm) => handlers.forEach((h) => h.onAdd?.(o)),
    update: (old: Vm, o: Vm) => handlers.forEach((h) => h.onUpdate?.(old, o)),
    delete: (o: Vm) => handlers.forEach((h) => h.onDelete?.(o)),
  };
}

const names = (objects: Vm[]) => objects.map((o) => o.metadata.name).sort();

describe('CacheIndex', () => {
  test('finds added objects under their values, and objects without a value nowhere', () => {
    const informer = fakeInformer();
    const index = new CacheIndex<Vm>(informer, (o) => (o.status?.node ? [o.status.node] : []));
    informer.add(vm('a', 'node-1'));
    informer.add(vm('b', 'node-2'));
    informer.add(vm('c', 'node-1'));
    informer.add(vm('d'));
    expect(names(index.get('node-1'))).toEqual(['a', 'c']);
    expect(names(index.get('node-2'))).toEqual(['b']);
    expect(index.get('node-3')).toEqual([]);
  });

  test('an update moves the object to its new value and holds its newest copy', () => {
    const informer = fakeInformer();
    const index = new CacheIndex<Vm>(informer, (o) => (o.status?.node ? [o.status.node] : []));
    informer.add(vm('a', 'node-1', '1'));
    informer.update(vm('a', 'node-1', '1'), vm('a', 'node-1', '2'));
    expect(index.get('node-1').map((o) => o.metadata.resourceVersion)).toEqual(['2']);
    informer.update(vm('a', 'node-1', '2'), vm('a', 'node-2', '3'));
    expect(index.get('node-1')).toEqual([]);
    expect(index.get('node-2').map((o) => o.metadata.resourceVersion)).toEqual(['3']);
    informer.update(vm('a', 'node-2', '3'), vm('a', undefined, '4'));
    expect(index.get('node-2')).toEqual([]);
  });

  test('a delete removes the object from every value it was under', () => {
    const informer = fakeInformer();
    const index = new CacheIndex<Vm>(informer, (o) => o.status?.nodes ?? []);
    const both: Vm = { ...vm('a'), status: { nodes: ['node-1', 'node-2', 'node-1'] } };
    informer.add(both);
    informer.add({ ...vm('b'), status: { nodes: ['node-2'] } });
    expect(names(index.get('node-1'))).toEqual(['a']);
    expect(names(index.get('node-2'))).toEqual(['a', 'b']);
    // A delete event may carry another copy than the cached one: the index goes by the object's key.
    informer.delete(vm('a'));
    expect(index.get('node-1')).toEqual([]);
    expect(names(index.get('node-2'))).toEqual(['b']);
  });
});
