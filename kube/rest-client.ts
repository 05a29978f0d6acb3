// The KubeClient adapter on @kubernetes/client-node: KubeConfig supplies the endpoint, TLS material and
// credentials (client certs, tokens, exec plugins); requests go out as plain JSON over node:https so that
// objects stay wire-shaped (no Date revival), every verb and subresource shares one code path, and a
// watch's HTTP status and ERROR events surface as typed errors.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeClient } from './client.js';
import { apiErrorFromStatus, KubeApiError, type ApiStatus } from './errors.js';
import { DEFAULT_LIST_PAGE_SIZE, listAllPages } from './pagination.js';
import { apiVersionOf, collectionPath, objectPath } from './resources.js';
import type {
  DeleteOptions,
  JsonPatchOperation,
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

const PATCH_CONTENT_TYPES: Record<Patch['type'], string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface RestKubeClientOptions {
  /** Per-request timeout for everything but watches. */
  requestTimeoutMs?: number;
  /** Default 'tern-operator'; the CLI sends its own. */
  userAgent?: string;
  /** Items per request when list() reads a whole collection; default 500 (DEFAULT_LIST_PAGE_SIZE). */
  listPageSize?: number;
}

type Query = Record<string, string | number | boolean | undefined>;

interface KubeRequest {
  method: string;
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
}

/** Loads a kubeconfig file, or the default chain (KUBECONFIG, ~/.kube/config, in-cluster) when no path is given. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

export class RestKubeClient implements KubeClient {
  private readonly kc: KubeConfig;
  private readonly server: URL;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly listPageSize: number;
  private agent: http.Agent | undefined;

  constructor(kc: KubeConfig, options: RestKubeClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kc = kc;
    this.server = new URL(cluster.server);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'tern-operator';
    this.listPageSize = options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE;
  }

  static fromKubeconfig(path?: string, options?: RestKubeClientOptions): RestKubeClient {
    return new RestKubeClient(loadKubeConfig(path), options);
  }

  async get<T extends KubeObject>(type: ResourceType, name: string, namespace?: string): Promise<T> {
    return this.json<T>({ method: 'GET', path: objectPath(type, name, namespace) });
  }

  /** Without options.limit, reads the collection in pages of listPageSize (kube/pagination.ts). */
  async list<T extends KubeObject>(
    type: ResourceType,
    options: ListOptions & ListPageOptions = {},
  ): Promise<ObjectList<T>> {
    if (options.limit !== undefined || options.continue !== undefined) return this.listPage(type, options);
    return listAllPages((page) => this.listPage<T>(type, { ...options, ...page }), {
      pageSize: this.listPageSize,
    });
  }

  private async listPage<T extends KubeObject>(
    type: ResourceType,
    options: ListOptions & ListPageOptions,
  ): Promise<ObjectList<T>> {
    const list = await this.json<{
      items: T[] | null;
      metadata: { resourceVersion: string; continue?: string };
    }>({
      method: 'GET',
      path: collectionPath(type, options.namespace),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continue,
      },
    });
    // List items carry no apiVersion/kind; restore them so cached objects look like watched ones.
    const items = (list.items ?? []).map((item) => ({
      apiVersion: apiVersionOf(type),
      kind: type.kind,
      ...item,
    }));
    const next = list.metadata.continue;
    return { items, resourceVersion: list.metadata.resourceVersion, ...(next ? { continue: next } : {}) };
  }

  async create<T extends KubeObject>(type: ResourceType, object: T, options: WriteOptions = {}): Promise<T> {
    return this.json<T>({
      method: 'POST',
      path: collectionPath(type, object.metadata.namespace),
      query: { fieldManager: options.fieldManager },
      body: withTypeMeta(type, object),
    });
  }

  async replace<T extends KubeObject>(
    type: ResourceType,
    object: T,
    options: ReplaceOptions = {},
  ): Promise<T> {
    return this.put(type, object, options.subresource, options);
  }

  async replaceStatus<T extends KubeObject>(
    type: ResourceType,
    object: T,
    options: WriteOptions = {},
  ): Promise<T> {
    return this.put(type, object, 'status', options);
  }

  async patch<T extends KubeObject>(
    type: ResourceType,
    name: string,
    namespace: string | undefined,
    patch: Patch,
    options: PatchOptions = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'PATCH',
      path: objectPath(type, name, namespace, options.subresource),
      query: {
        fieldManager: options.fieldManager ?? (patch.type === 'apply' ? this.userAgent : undefined),
        force: patch.type === 'apply' ? patch.force : undefined,
      },
      body: patchBody(patch, options.resourceVersion),
      contentType: PATCH_CONTENT_TYPES[patch.type],
    });
  }

  async delete(
    type: ResourceType,
    name: string,
    namespace?: string,
    options: DeleteOptions = {},
  ): Promise<void> {
    await this.json({
      method: 'DELETE',
      path: objectPath(type, name, namespace),
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...options },
    });
  }

  watch<T extends KubeObject>(
    type: ResourceType,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
  ): WatchHandle {
    const timeoutSeconds = options.timeoutSeconds ?? 300;
    let request: http.ClientRequest | undefined;
    let stopped = false;
    let settle: (err?: Error) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        settle = () => {};
        clearTimeout(deadline);
        request?.destroy();
        if (err && !stopped) reject(err);
        else resolve();
      };
    });
    // A half-open connection never ends on its own: give the server its timeout plus a grace period.
    const deadline = setTimeout(
      () =>
        settle(
          new KubeApiError(0, 'Timeout', `watch ${type.plural}: no end of stream after ${timeoutSeconds}s`),
        ),
      (timeoutSeconds + 30) * 1000,
    );
    const query: Query = {
      watch: true,
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    };
    this.send({ method: 'GET', path: collectionPath(type, options.namespace), query }, 0)
      .then(({ req, res }) => {
        request = req;
        if (stopped) return settle();
        if (res.statusCode !== 200) {
          return readBody(res).then(
            (body) => settle(errorFromResponse(res.statusCode ?? 0, body)),
            (err: Error) => settle(err),
          );
        }
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk: string) => {
          pending += chunk;
          let newline: number;
          while ((newline = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (!line) continue;
            try {
              const event = JSON.parse(line) as { type: string; object: unknown };
              if (event.type === 'ERROR') {
                const status = event.object as ApiStatus;
                return settle(apiErrorFromStatus(status.code ?? 500, status, 'watch error'));
              }
              onEvent(event as WatchEvent<T>);
            } catch (err) {
              return settle(err as Error);
            }
          }
        });
        res.on('end', () => settle());
        res.on('error', (err) => settle(err));
        res.on('close', () =>
          settle(
            res.complete
              ? undefined
              : new KubeApiError(0, 'ConnectionReset', `watch ${type.plural}: stream cut`),
          ),
        );
      })
      .catch((err: Error) => settle(err));
    return {
      done,
      stop: () => {
        stopped = true;
        settle();
      },
    };
  }

  private async put<T extends KubeObject>(
    type: ResourceType,
    object: T,
    subresource: 'status' | 'approval' | undefined,
    options: WriteOptions,
  ): Promise<T> {
    const name = object.metadata.name;
    if (!name) throw new Error(`${type.kind}: replace needs metadata.name`);
    return this.json<T>({
      method: 'PUT',
      path: objectPath(type, name, object.metadata.namespace, subresource),
      query: { fieldManager: options.fieldManager },
      body: withTypeMeta(type, object),
    });
  }

  private async json<T>(request: KubeRequest): Promise<T> {
    const { res } = await this.send(request, this.requestTimeoutMs);
    const body = await readBody(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw errorFromResponse(status, body);
    return (body ? JSON.parse(body) : undefined) as T;
  }

  /** Resolves once response headers arrive; the caller consumes the body. */
  private async send(
    request: KubeRequest,
    timeoutMs: number,
  ): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    // Applied per request: token files and exec credentials can rotate.
    const auth: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(auth);
    const url = new URL(this.server.origin + this.server.pathname.replace(/\/$/, '') + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
    const headers: http.OutgoingHttpHeaders = {
      ...(auth.headers as http.OutgoingHttpHeaders | undefined),
      Accept: 'application/json',
      'User-Agent': this.userAgent,
    };
    if (auth.auth) headers.Authorization = `Basic ${Buffer.from(auth.auth).toString('base64')}`;
    if (payload !== undefined) {
      headers['Content-Type'] = request.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        { method: request.method, headers, agent: this.agentFor(auth) },
        (res) => resolve({ req, res }),
      );
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () =>
          req.destroy(
            new KubeApiError(
              0,
              'Timeout',
              `${request.method} ${request.path}: no response in ${timeoutMs} ms`,
            ),
          ),
        );
      }
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One keep-alive agent for the client's lifetime (client-node makes a new agent per request). */
  private agentFor(auth: https.RequestOptions): http.Agent {
    if (!this.agent) {
      this.agent =
        this.server.protocol === 'http:'
          ? new http.Agent({ keepAlive: true })
          : new https.Agent({
              keepAlive: true,
              ca: auth.ca,
              cert: auth.cert,
              key: auth.key,
              pfx: auth.pfx,
              passphrase: auth.passphrase,
              rejectUnauthorized: auth.rejectUnauthorized,
              servername: auth.servername,
            });
    }
    return this.agent;
  }

  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

function withTypeMeta<T extends KubeObject>(type: ResourceType, object: T): T {
  return { ...object, apiVersion: apiVersionOf(type), kind: type.kind };
}

/** A resourceVersion inside the patched object makes the apiserver reject the patch with 409 when it is stale. */
function patchBody(patch: Patch, resourceVersion: string | undefined): unknown {
  if (patch.type === 'json') {
    if (resourceVersion === undefined) return patch.operations;
    const precondition: JsonPatchOperation = {
      op: 'replace',
      path: '/metadata/resourceVersion',
      value: resourceVersion,
    };
    return [precondition, ...patch.operations];
  }
  if (resourceVersion === undefined) return patch.body;
  const body = patch.body as { metadata?: object };
  return { ...body, metadata: { ...body.metadata, resourceVersion } };
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body += chunk));
    res.on('end', () => resolve(body));
    res.on('error', reject);
  });
}

function errorFromResponse(statusCode: number, body: string): KubeApiError {
  let status: ApiStatus | undefined;
  try {
    status = JSON.parse(body) as ApiStatus;
  } catch {
    status = undefined;
  }
  return apiErrorFromStatus(
    statusCode,
    status,
    body.slice(0, 500) || http.STATUS_CODES[statusCode] || 'request failed',
  );
}
