// The signer and approver of signer tern.dev/hypervisor-node: for each pending CertificateSigningRequest it judges
// the request (node-csr-policy.ts), denies it with the reason, or approves it (the /approval subresource) and then
// issues the certificate with the Tern CA key, which only the operator holds (the /status subresource). A request
// someone else approved is judged the same way before it is signed: a refused one is marked Failed, never signed.
// The kube-controller-manager's CSR cleaner deletes the requests an hour after they were approved or denied.
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import { CertificateSigningRequests, Nodes } from '../../../kube/resources.js';
import type { KubeObject } from '../../../kube/types.js';
import { issueCertificate, NODE_SIGNER_NAME, type CertificateAuthority } from '../../../pki/index.js';
import type { ReconcileContext, ReconcileRequest, ReconcileResult } from '../runtime/controller.js';
import { decideNodeCsr, type NodeCsrPolicy, type NodeCsrSpec } from './node-csr-policy.js';

export const CONDITION_REASON = 'TernNodeIdentity';
/** Certificates start this long before they are issued: a node whose clock is behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;

interface CsrCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export interface CertificateSigningRequest extends KubeObject {
  spec: NodeCsrSpec;
  status?: { conditions?: CsrCondition[]; certificate?: string };
}

interface KubeNodeAddresses extends KubeObject {
  status?: { addresses?: { type: string; address: string }[] };
}

export interface NodeCsrSignerOptions {
  client: KubeClient;
  ca: CertificateAuthority;
  policy: NodeCsrPolicy;
  now?: () => Date;
}

const has = (csr: CertificateSigningRequest, type: string): boolean =>
  (csr.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');

export class NodeCsrSigner {
  constructor(private readonly options: NodeCsrSignerOptions) {}

  /** The list/watch filter of the CSR informer: this signer's requests only. */
  static readonly fieldSelector = `spec.signerName=${NODE_SIGNER_NAME}`;

  readonly reconcile = async (
    request: ReconcileRequest,
    context: ReconcileContext,
  ): Promise<ReconcileResult> => {
    const { client } = this.options;
    let csr: CertificateSigningRequest;
    try {
      csr = await client.get<CertificateSigningRequest>(CertificateSigningRequests, request.name);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (csr.spec.signerName !== NODE_SIGNER_NAME || csr.status?.certificate) return;
    if (has(csr, 'Denied') || has(csr, 'Failed')) return;

    const node = csr.spec.extra?.['authentication.kubernetes.io/node-name']?.[0];
    const addresses = node === undefined ? undefined : await this.nodeAddresses(node);
    const decision = decideNodeCsr(csr.spec, this.options.policy, () => addresses);
    const approved = has(csr, 'Approved');
    if (!decision.approve) {
      const condition = this.condition(approved ? 'Failed' : 'Denied', decision.reason);
      const refused = {
        ...csr,
        status: { ...csr.status, conditions: [...(csr.status?.conditions ?? []), condition] },
      };
      // Denied goes through /approval; Failed (after someone else's approval) through /status.
      if (approved) await client.replaceStatus(CertificateSigningRequests, refused);
      else await client.replace(CertificateSigningRequests, refused, { subresource: 'approval' });
      context.logger.warn({ csr: request.name, reason: decision.reason }, 'node certificate request refused');
      return;
    }
    if (!approved) {
      const condition = this.condition(
        'Approved',
        `the daemon pod on node ${decision.node} asked for its own identity`,
      );
      csr = await client.replace(
        CertificateSigningRequests,
        { ...csr, status: { ...csr.status, conditions: [...(csr.status?.conditions ?? []), condition] } },
        { subresource: 'approval' },
      );
    }
    const now = (this.options.now ?? (() => new Date()))();
    const certificate = issueCertificate(this.options.ca, {
      names: decision.names,
      publicKeyInfo: decision.publicKeyInfo,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + decision.lifetimeSeconds * 1000),
      usages: ['serverAuth'],
    });
    await client.replaceStatus(CertificateSigningRequests, {
      ...csr,
      status: { ...csr.status, certificate: Buffer.from(certificate).toString('base64') },
    });
    context.logger.info(
      { csr: request.name, node: decision.node, lifetimeSeconds: decision.lifetimeSeconds },
      'node certificate issued',
    );
  };

  private async nodeAddresses(name: string): Promise<string[] | undefined> {
    try {
      const node = await this.options.client.get<KubeNodeAddresses>(Nodes, name);
      return (node.status?.addresses ?? [])
        .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
        .map((a) => a.address);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private condition(type: 'Approved' | 'Denied' | 'Failed', message: string): CsrCondition {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return {
      type,
      status: 'True',
      reason: CONDITION_REASON,
      message,
      lastUpdateTime: now,
      lastTransitionTime: now,
    };
  }
}
