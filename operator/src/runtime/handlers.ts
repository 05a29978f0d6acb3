// Event handlers map an informer's objects to the keys of the root objects a controller reconciles
// (controller-runtime's EnqueueRequestForObject, EnqueueRequestForOwner, EnqueueRequestsFromMapFunc).
import { objectKey } from '../../../kube/objects.js';
import type { KubeObject, ObjectKey, ResourceType } from '../../../kube/types.js';

export type KeyMapper<T extends KubeObject> = (object: T) => ObjectKey[];

/** The object's own key: for the kind the controller reconciles. */
export function enqueueObject<T extends KubeObject>(): KeyMapper<T> {
  return (object) => [objectKey(object)];
}

/** The keys of the object's owners of ownerType (by default only its controller owner). */
export function enqueueOwner<T extends KubeObject>(
  ownerType: ResourceType,
  options: { onlyController?: boolean } = {},
): KeyMapper<T> {
  const apiGroup = ownerType.group;
  const onlyController = options.onlyController ?? true;
  return (object) =>
    (object.metadata.ownerReferences ?? [])
      .filter((ref) => ref.kind === ownerType.kind && groupOf(ref.apiVersion) === apiGroup)
      .filter((ref) => !onlyController || ref.controller === true)
      .map((ref) =>
        ownerType.namespaced && object.metadata.namespace
          ? `${object.metadata.namespace}/${ref.name}`
          : ref.name,
      );
}

/** Any relation the object's fields express, e.g. a Migration's spec.vmName → that VirtualMachine's key. */
export function enqueueMapped<T extends KubeObject>(map: (object: T) => ObjectKey[]): KeyMapper<T> {
  return map;
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
