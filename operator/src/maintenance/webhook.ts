// The eviction webhook: an HTTPS endpoint the apiserver calls (a ValidatingWebhookConfiguration on pods/eviction,
// limited to the operator's namespace) before it evicts a pod there. For a guard pod it answers with
// decideEviction (eviction.ts) from live reads of the pod, its VM, the HypervisorNode and the Node, and starts the
// node's evacuation when the eviction is part of a drain; any other pod is let through. Every replica serves it,
// leader or not: it only reads, and its one write (spec.drain) is idempotent.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { startUpWrite, type StartUpWrite } from '../runtime/start-up-write.js';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { HypervisorNodes, VirtualMachines } from '../../../crds/index.js';
import type { HostPort } from '../../../cmdline/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import { Nodes, Pods, ValidatingWebhookConfigurations } from '../../../kube/resources.js';
import type { KubeObject } from '../../../kube/types.js';
import { decideEviction, type EvictionVerdict } from './eviction.js';
import {
  GUARD_VM_NAME_LABEL,
  GUARD_VM_NAMESPACE_LABEL,
  GUARD_VM_UID_LABEL,
  type KubeNode,
  type Pod,
} from './guard-pods.js';

/** The path the ValidatingWebhookConfiguration names. */
export const EVICTION_WEBHOOK_PATH = '/validate-eviction';
const MAX_BODY_BYTES = 1 << 20;

export interface EvictionWebhookConfig {
  listen: HostPort;
  certFile: string;
  keyFile: string;
  /** The CA of the serving certificate; with `configuration`, written into its caBundle at start-up. */
  caFile: string;
  /** The ValidatingWebhookConfiguration to give the CA to; undefined: its caBundle is set by whoever installs it. */
  configuration?: string;
  /** The namespace of the guard pods. */
  namespace: string;
}

export interface EvictionWebhookServer {
  port: number;
  close(): Promise<void>;
}

interface AdmissionRequest {
  uid: string;
  name?: string;
  namespace?: string;
  subResource?: string;
  dryRun?: boolean;
}

async function getOrUndefined<T extends KubeObject>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export class EvictionAdmission {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {}

  /** The verdict on evicting pod `name` of the guard namespace (anything else is allowed). */
  async review(request: AdmissionRequest): Promise<EvictionVerdict> {
    const { client } = this;
    if (request.subResource !== 'eviction' || request.namespace !== this.namespace || !request.name)
      return { allowed: true };
    const pod = await getOrUndefined(() => client.get<Pod>(Pods, request.name!, this.namespace));
    const labels = pod?.metadata.labels ?? {};
    if (!pod || !labels[GUARD_VM_UID_LABEL] || !pod.spec?.nodeName) return { allowed: true };
    const nodeName = pod.spec.nodeName;
    const vm = await getOrUndefined(() =>
      client.get<VirtualMachine>(
        VirtualMachines,
        labels[GUARD_VM_NAME_LABEL]!,
        labels[GUARD_VM_NAMESPACE_LABEL],
      ),
    );
    const node = await getOrUndefined(() => client.get<HypervisorNode>(HypervisorNodes, nodeName));
    const kubeNode = await getOrUndefined(() => client.get<KubeNode>(Nodes, nodeName));
    const verdict = decideEviction({ pod, vm, node, cordoned: !!kubeNode?.spec?.unschedulable });
    if (!verdict.allowed && verdict.drainNode && !request.dryRun) {
      await client.patch(HypervisorNodes, nodeName, undefined, {
        type: 'merge',
        body: { spec: { unschedulable: true, drain: true } },
      });
      this.logger.info({ node: nodeName, pod: request.name }, 'eviction of a guard pod: node drained');
    }
    this.logger.info(
      {
        pod: request.name,
        node: nodeName,
        allowed: verdict.allowed,
        ...(verdict.allowed ? {} : { code: verdict.code }),
      },
      'eviction reviewed',
    );
    return verdict;
  }
}

function admissionResponse(uid: string, verdict: EvictionVerdict): object {
  const response = verdict.allowed
    ? { uid, allowed: true }
    : {
        uid,
        allowed: false,
        status: {
          code: verdict.code,
          reason: verdict.code === 429 ? 'TooManyRequests' : 'Forbidden',
          message: verdict.message,
        },
      };
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** Writes the CA into every webhook of the configuration (JSON patch: the other fields stay as installed). */
async function injectCaBundle(client: KubeClient, name: string, ca: string): Promise<void> {
  const current = await client.get<KubeObject & { webhooks?: unknown[] }>(
    ValidatingWebhookConfigurations,
    name,
  );
  const caBundle = Buffer.from(ca).toString('base64');
  const operations = (current.webhooks ?? []).map((_, index) => ({
    op: 'add' as const,
    path: `/webhooks/${index}/clientConfig/caBundle`,
    value: caBundle,
  }));
  if (operations.length === 0) return;
  await client.patch(ValidatingWebhookConfigurations, name, undefined, { type: 'json', operations });
}

export async function startEvictionWebhook(
  config: EvictionWebhookConfig,
  client: KubeClient,
  logger: Logger,
): Promise<EvictionWebhookServer> {
  const log = logger.child({ component: 'eviction-webhook' });
  const admission = new EvictionAdmission(client, config.namespace, log);
  const server = https.createServer(
    { cert: readFileSync(config.certFile), key: readFileSync(config.keyFile) },
    (request, response) => {
      const reply = (code: number, body: object | string) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        const type = typeof body === 'string' ? 'text/plain' : 'application/json';
        response.writeHead(code, { 'content-type': type }).end(text);
      };
      if (request.method !== 'POST' || request.url?.split('?')[0] !== EVICTION_WEBHOOK_PATH)
        return reply(404, 'not found');
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) request.destroy();
        else chunks.push(chunk);
      });
      request.on('end', () => {
        let review: { request?: AdmissionRequest };
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request?: AdmissionRequest };
        } catch {
          return reply(400, 'not an AdmissionReview');
        }
        const admissionRequest = review.request;
        if (!admissionRequest?.uid) return reply(400, 'not an AdmissionReview');
        admission.review(admissionRequest).then(
          (verdict) => reply(200, admissionResponse(admissionRequest.uid, verdict)),
          (error: unknown) => {
            // Not knowing is not a yes: the drain retries (429) and the VM stays protected.
            log.warn({ err: error, pod: admissionRequest.name }, 'eviction review failed');
            reply(
              200,
              admissionResponse(admissionRequest.uid, {
                allowed: false,
                code: 429,
                drainNode: false,
                message: `the Tern operator could not check pod ${admissionRequest.name}: ${String(error)}`,
              }),
            );
          },
        );
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  let publishing: StartUpWrite | undefined;
  if (config.configuration !== undefined) {
    const configuration = config.configuration;
    const ca = readFileSync(config.caFile, 'utf8');
    publishing = startUpWrite(
      `publishing the eviction webhook's CA in ${configuration}`,
      () => injectCaBundle(client, configuration, ca),
      log,
    );
    void publishing.done.then(
      (published) => published && log.info({ configuration }, 'eviction webhook CA published'),
    );
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        publishing?.stop();
        server.close(() => resolve());
      }),
  };
}
