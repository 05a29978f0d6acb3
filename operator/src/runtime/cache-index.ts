// A secondary index over an informer's cache (client-go's Indexer): the cached objects by values derived from
// them (e.g. VMs by the node their record names), kept in step with the informer's adds, updates and deletes,
// so that a reconciler reads its few objects without walking or listing the whole collection.
import { objectKey } from '../../../kube/objects.js';
import type { KubeObject, ObjectKey } from '../../../kube/types.js';
import type { Informer } from './informer.js';

export class CacheIndex<T extends KubeObject> {
  private readonly byValue = new Map<string, Map<ObjectKey, T>>();
  private readonly valuesByKey = new Map<ObjectKey, readonly string[]>();

  /** `valuesOf` gives the values an object is found under (none: it is in no entry). */
  constructor(
    informer: Pick<Informer<T>, 'addHandlers'>,
    private readonly valuesOf: (object: T) => readonly string[],
  ) {
    informer.addHandlers({
      onAdd: (object) => this.put(object),
      onUpdate: (_old, object) => this.put(object),
      onDelete: (object) => this.remove(objectKey(object)),
    });
  }

  /** The cached objects found under `value`. */
  get(value: string): T[] {
    return [...(this.byValue.get(value)?.values() ?? [])];
  }

  private put(object: T): void {
    const key = objectKey(object);
    this.remove(key);
    const values = [...new Set(this.valuesOf(object))];
    for (const value of values) {
      let entry = this.byValue.get(value);
      if (entry === undefined) this.byValue.set(value, (entry = new Map()));
      entry.set(key, object);
    }
    if (values.length > 0) this.valuesByKey.set(key, values);
  }

  private remove(key: ObjectKey): void {
    for (const value of this.valuesByKey.get(key) ?? []) {
      const entry = this.byValue.get(value);
      entry?.delete(key);
      if (entry?.size === 0) this.byValue.delete(value);
    }
    this.valuesByKey.delete(key);
  }
}
