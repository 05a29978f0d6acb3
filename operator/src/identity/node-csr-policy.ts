// Which CertificateSigningRequests for signer tern.dev/hypervisor-node the operator approves (docs/install.md "Node
// identities"). A daemon pod proves the node it runs on through its pod-bound ServiceAccount token: the apiserver
// records the requester's user info in the CSR's spec (username, extra), and for a token bound to a pod the extra
// carries authentication.kubernetes.io/node-name (Kubernetes >= 1.30, ServiceAccountTokenPodNodeInfo). The
// certificate may name that node and nothing else: CN and the one DNS name are the node's name, the one URI is
// spiffe://tern.dev/node/<node>, IP addresses only the Node's own. The operator's identity is never a node's.
import { nodeUri, parseCertificateRequest } from '../../../pki/index.js';

export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

/** The usages a node certificate may be asked for; it is issued for server authentication only. */
const ALLOWED_USAGES = new Set(['digital signature', 'key encipherment', 'server auth']);
const COMMON_NAME = '2.5.4.3';

export interface NodeCsrSpec {
  request: string;
  signerName: string;
  username?: string;
  extra?: Record<string, string[]>;
  usages?: string[];
  expirationSeconds?: number;
}

export interface NodeCsrPolicy {
  /** system:serviceaccount:<namespace>:<name> of the daemons. */
  daemonUsername: string;
  /** Names a node may never take: the operator certificate's common names (its URI SAN is spiffe://tern.dev/operator). */
  operatorNames: readonly string[];
  /** Longest lifetime issued; a shorter spec.expirationSeconds is honoured. */
  maxLifetimeSeconds: number;
}

export type NodeCsrDecision =
  | {
      approve: true;
      node: string;
      names: { commonName: string; dnsNames: string[]; uris: string[]; ips: string[] };
      publicKeyInfo: Buffer;
      lifetimeSeconds: number;
    }
  | { approve: false; reason: string };

const deny = (reason: string): NodeCsrDecision => ({ approve: false, reason });
const list = (values: string[]): string => (values.length === 0 ? 'none' : values.join(', '));

/**
 * Judges one request. `nodeAddresses` gives the IP addresses of the Kubernetes Node of that name (status.addresses),
 * undefined when there is no such Node.
 */
export function decideNodeCsr(
  spec: NodeCsrSpec,
  policy: NodeCsrPolicy,
  nodeAddresses: (node: string) => string[] | undefined,
): NodeCsrDecision {
  if (spec.username !== policy.daemonUsername)
    return deny(
      `requested by ${spec.username ?? 'an unknown user'}, not by the hypervisor-node daemons' ServiceAccount (${policy.daemonUsername})`,
    );
  const nodes = spec.extra?.[NODE_NAME_EXTRA] ?? [];
  if (nodes.length !== 1 || !nodes[0])
    return deny(
      `the requester's token names no node (${NODE_NAME_EXTRA}): a daemon must request with the token bound to its pod`,
    );
  const node = nodes[0];
  const pod = spec.extra?.[POD_NAME_EXTRA]?.[0];
  const requester = `the daemon pod ${pod ?? '(unknown)'} on node ${node}`;
  if (policy.operatorNames.includes(node))
    return deny(`node ${node} has the name of the operator's identity: no node certificate is issued for it`);

  let request;
  try {
    request = parseCertificateRequest(Buffer.from(spec.request, 'base64').toString('utf8'));
  } catch (error) {
    return deny(`unreadable request: ${(error as Error).message}`);
  }
  const subject = request.subject.map((a) =>
    a.oid === COMMON_NAME ? `CN=${a.value}` : `${a.oid}=${a.value}`,
  );
  if (subject.length !== 1 || subject[0] !== `CN=${node}`)
    return deny(`${requester} asked for subject ${list(subject)}; it may have only CN=${node}`);
  const asked = [
    ...request.dnsNames.map((n) => `DNS:${n}`),
    ...request.uris.map((u) => `URI:${u}`),
    ...request.otherNames.map((tag) => `SAN type ${tag}`),
  ];
  const allowed = [`DNS:${node}`, `URI:${nodeUri(node)}`];
  if (asked.length !== allowed.length || allowed.some((name) => !asked.includes(name)))
    return deny(`${requester} asked for names ${list(asked)}; it may have exactly ${allowed.join(', ')}`);
  if (request.ips.length > 0) {
    const own = nodeAddresses(node);
    const foreign = request.ips.filter((ip) => !own?.includes(ip));
    if (foreign.length > 0)
      return deny(
        `${requester} asked for IP addresses ${foreign.join(', ')}, which are not Node ${node}'s (${own === undefined ? 'no such Node' : list(own)})`,
      );
  }
  const usages = spec.usages ?? [];
  const badUsages = usages.filter((usage) => !ALLOWED_USAGES.has(usage));
  if (!usages.includes('server auth') || badUsages.length > 0)
    return deny(
      `usages ${list(usages)}: a node certificate is for server auth (with digital signature, key encipherment) only`,
    );
  return {
    approve: true,
    node,
    names: { commonName: node, dnsNames: [node], uris: [nodeUri(node)], ips: request.ips },
    publicKeyInfo: request.publicKeyInfo,
    lifetimeSeconds: Math.min(spec.expirationSeconds ?? policy.maxLifetimeSeconds, policy.maxLifetimeSeconds),
  };
}
