// The operator's only gateway to the Kubernetes API.
export type { KubeClient } from './client.js';
export * from './errors.js';
export * from './events.js';
export * from './objects.js';
export * from './resources.js';
export { loadKubeConfig, RestKubeClient, type RestKubeClientOptions } from './rest-client.js';
export type * from './types.js';
