// Who asked the kube-apiserver what, for bench:scale: the apiserver's own apiserver_request_total (by verb and
// resource, every client together), and a count of the requests this process makes (the hollow daemons' heartbeats
// and status writes, the bench's own polls), so that what is left is the operator's.
import { KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../../harness/control-plane.js';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/** verb + resource[/subresource] → requests. */
export type RequestCounts = Map<string, number>;

const add = (counts: RequestCounts, key: string, n: number): void => {
  counts.set(key, (counts.get(key) ?? 0) + n);
};

/** The apiserver's verb for a request made by a client of this process (a read of a collection is a LIST). */
function keyOf(method: string, url: string): string {
  const path = new URL(url).pathname.split('/').filter(Boolean);
  // /api/v1/namespaces/<ns>/<resource>[/<name>[/<sub>]] or /apis/<group>/<version>/[namespaces/<ns>/]<resource>…
  const rest = path.slice(path[0] === 'api' ? 2 : 3);
  const scoped = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  const [resource = '', name, sub] = scoped;
  const verb = method === 'GET' ? (name === undefined ? 'LIST' : 'GET') : method;
  return `${verb} ${resource}${sub !== undefined ? `/${sub}` : ''}`;
}

/** A KubeConfig whose API clients count every request they make, by verb and resource. */
export class CountingKubeConfig extends KubeConfig {
  readonly counts: RequestCounts = new Map();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    add(this.counts, keyOf(context.getHttpMethod(), context.getUrl()), 1);
    await super.applySecurityAuthentication(context);
  }

  static fromFile(path: string): CountingKubeConfig {
    const config = new CountingKubeConfig();
    config.loadFromFile(path);
    return config;
  }
}

/**
 * The resources the operator uses (its ClusterRole, helm/): Tern's kinds, and of the core group the Events it
 * records, the Namespaces it reads and the Nodes and guard Pods of node maintenance. The apiserver's requests to
 * itself (its informers' watches of every other kind) are left out, and so are Leases: the operator runs without
 * leader election here and only watches them, while kube-apiserver renews Leases of its own.
 */
const OPERATOR_CORE_RESOURCES = ['events', 'namespaces', 'nodes', 'pods'];

/** apiserver_request_total summed by verb and resource[/subresource], for the resources the operator uses. */
export async function apiserverRequests(cp: ControlPlane): Promise<RequestCounts> {
  const result = await cp.kubectl(['get', '--raw', '/metrics']);
  if (result.code !== 0) throw new Error(`cannot read the apiserver's metrics: ${result.stderr}`);
  const counts: RequestCounts = new Map();
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1]!, match[2]!]),
    );
    const used =
      labels.group === 'tern.dev' ||
      (labels.group === '' && OPERATOR_CORE_RESOURCES.includes(labels.resource ?? ''));
    if (!used) continue;
    const resource = labels.subresource ? `${labels.resource}/${labels.subresource}` : labels.resource;
    add(counts, `${labels.verb} ${resource}`, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

/** after − before − each of `others`, keys with nothing left dropped. */
export function subtract(
  after: RequestCounts,
  before: RequestCounts,
  ...others: RequestCounts[]
): RequestCounts {
  const left: RequestCounts = new Map();
  for (const [key, n] of after) add(left, key, n - (before.get(key) ?? 0));
  for (const other of others) for (const [key, n] of other) if (!key.endsWith(' leases')) add(left, key, -n);
  for (const [key, n] of left) if (n === 0) left.delete(key);
  return left;
}

export const total = (counts: RequestCounts): number => [...counts.values()].reduce((sum, n) => sum + n, 0);

/** A snapshot of a live count (CountingKubeConfig.counts keeps growing). */
export const snapshot = (counts: RequestCounts): RequestCounts => new Map(counts);
