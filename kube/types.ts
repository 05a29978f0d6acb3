// The shapes of Kubernetes objects as they travel over the wire: plain JSON, timestamps as RFC 3339 strings.

import type { ObjectMeta } from '../crds/index.js';

export type { ObjectMeta, OwnerReference, ResourceType } from '../crds/index.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface ObjectList<T extends KubeObject> {
  items: T[];
  resourceVersion: string;
  /** Set on a page (a list with ListPageOptions.limit) that has more after it: pass it as the next page's `continue`. */
  continue?: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface WatchEvent<T extends KubeObject> {
  type: WatchEventType;
  object: T;
}

/** An open watch stream. `done` resolves when the server ends the stream and rejects with a KubeApiError on failure. */
export interface WatchHandle {
  done: Promise<void>;
  stop(): void;
}

export type JsonPatchOperation =
  { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

export type Patch =
  | { type: 'merge'; body: object }
  | { type: 'json'; operations: JsonPatchOperation[] }
  | { type: 'apply'; body: object; force?: boolean };

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** One page of a list (the API's `limit` and `continue`); see kube/pagination.ts. */
export interface ListPageOptions {
  /** At most this many items; the page's `continue` token asks for the rest. */
  limit?: number;
  /** The previous page's `continue` token. */
  continue?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  /** The server ends the watch after this long; the client aborts it a little later if the server went silent. */
  timeoutSeconds?: number;
}

export interface WriteOptions {
  fieldManager?: string;
}

export interface ReplaceOptions extends WriteOptions {
  /** PUT on a subresource other than status: a CertificateSigningRequest's approval. */
  subresource?: 'approval';
}

export interface PatchOptions extends WriteOptions {
  subresource?: 'status';
  /** Compare-and-swap: the patch fails with ConflictError unless the object still has this resourceVersion. */
  resourceVersion?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** `namespace/name` for namespaced objects, `name` for cluster-scoped ones (client-go's MetaNamespaceKeyFunc). */
export type ObjectKey = string;
