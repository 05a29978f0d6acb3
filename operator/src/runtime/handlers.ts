// Event handlers map an informer's objects to the keys of the root objects a controller reconciles
// (controller-runtime's EnqueueRequestForObject; any other relation is a KeyMapper of the controller's own).
import { objectKey } from '../../../kube/objects.js';
import type { KubeObject, ObjectKey } from '../../../kube/types.js';

export type KeyMapper<T extends KubeObject> = (object: T) => ObjectKey[];

/** The object's own key: for the kind the controller reconciles. */
export function enqueueObject<T extends KubeObject>(): KeyMapper<T> {
  return (object) => [objectKey(object)];
}
