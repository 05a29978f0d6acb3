// The port the operator and the CLI talk to the Kubernetes API through. The client-node adapter implements it
// (rest-client.ts); unit tests can implement it in memory without loading client-node.
import type {
  DeleteOptions,
  KubeObject,
  ListOptions,
  ListPageOptions,
  ObjectList,
  Patch,
  PatchOptions,
  ReplaceOptions,
  ResourceType,
  WatchEvent,
  WatchHandle,
  WatchOptions,
  WriteOptions,
} from './types.js';

export interface KubeClient {
  get<T extends KubeObject>(type: ResourceType, name: string, namespace?: string): Promise<T>;
  /**
   * Without `limit`: every item, one snapshot at one resourceVersion (the REST client reads it in pages).
   * With `limit`: one page, and the `continue` token of the next one if there is more.
   */
  list<T extends KubeObject>(
    type: ResourceType,
    options?: ListOptions & ListPageOptions,
  ): Promise<ObjectList<T>>;
  /** Streams changes after options.resourceVersion; `ERROR` events end the stream with a typed error (410 → GoneError). */
  watch<T extends KubeObject>(
    type: ResourceType,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
  ): WatchHandle;
  create<T extends KubeObject>(type: ResourceType, object: T, options?: WriteOptions): Promise<T>;
  /** PUT: fails with ConflictError when object.metadata.resourceVersion is stale. */
  replace<T extends KubeObject>(type: ResourceType, object: T, options?: ReplaceOptions): Promise<T>;
  /** PUT on the status subresource; only status changes are kept by the server. */
  replaceStatus<T extends KubeObject>(type: ResourceType, object: T, options?: WriteOptions): Promise<T>;
  patch<T extends KubeObject>(
    type: ResourceType,
    name: string,
    namespace: string | undefined,
    patch: Patch,
    options?: PatchOptions,
  ): Promise<T>;
  delete(type: ResourceType, name: string, namespace?: string, options?: DeleteOptions): Promise<void>;
}
