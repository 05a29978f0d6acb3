// kube/: the Kubernetes client shared by the operator and the CLI (kubectl-tern) — a REST client on
// @kubernetes/client-node's KubeConfig, object helpers and an Event recorder, without informers (the operator's
// cache lives in operator/src/runtime). Any program may import it; it imports only crds/ (the resource types and
// path builder come from there) and never a program's code.
export type { KubeClient } from './client.js';
export * from './errors.js';
export * from './events.js';
export * from './objects.js';
export * from './resources.js';
export { loadKubeConfig, RestKubeClient, type RestKubeClientOptions } from './rest-client.js';
export type * from './types.js';
