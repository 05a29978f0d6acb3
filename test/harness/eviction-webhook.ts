// The operator's eviction webhook (docs/node-maintenance.md) on a test control plane: a serving certificate from the
// control plane's CA, a free port, and the ValidatingWebhookConfiguration as the chart installs it, but by URL (no
// Service in these tests) and without a caBundle (the operator writes it). Returns the operator's flags for it.
import { join } from 'node:path';
import { issueControlPlaneLeaf } from './certificates.js';
import type { ControlPlane } from './control-plane.js';
import { freeLoopbackPort } from './free-port.js';

export const EVICTION_WEBHOOK_CONFIGURATION = 'tern-eviction';

export async function installEvictionWebhook(
  cp: Pick<ControlPlane, 'kubectl' | 'certs'>,
  dir: string,
  /** The guard pods' namespace (the operator's). */
  namespace: string,
): Promise<string[]> {
  const serving = issueControlPlaneLeaf({
    ca: { cert: cp.certs.caCert, key: cp.certs.caKey },
    pair: { cert: join(dir, 'webhook.crt'), key: join(dir, 'webhook.key') },
    subject: '/CN=tern-eviction-webhook',
    ips: ['127.0.0.1'],
  });
  const port = await freeLoopbackPort();
  const configuration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: EVICTION_WEBHOOK_CONFIGURATION },
    webhooks: [
      {
        name: 'eviction.tern.dev',
        clientConfig: { url: `https://127.0.0.1:${port}/validate-eviction` },
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['pods/eviction'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
        failurePolicy: 'Fail',
        sideEffects: 'NoneOnDryRun',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  };
  const applied = await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(configuration) });
  if (applied.code !== 0) throw new Error(`kubectl apply (webhook configuration): ${applied.stderr}`);
  return [
    ...['--guard-namespace', namespace, '--eviction-webhook-listen', `127.0.0.1:${port}`],
    ...['--eviction-webhook-tls-cert', serving.cert, '--eviction-webhook-tls-key', serving.key],
    ...['--eviction-webhook-tls-ca', cp.certs.caCert],
    ...['--eviction-webhook-configuration', EVICTION_WEBHOOK_CONFIGURATION],
  ];
}
