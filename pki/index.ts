// Tern's own small PKI: PKCS#10 requests and the certificates the operator issues for them (docs/install.md
// "Node identities"). Shared by the daemon (requests) and the operator (signer); imports nothing of Tern.
export {
  createCertificateRequest,
  derToPem,
  parseCertificateRequest,
  type CertificateNames,
  type ParsedRequest,
} from './csr.js';
export {
  firstCertificate,
  issueCertificate,
  loadCertificateAuthority,
  type CertificateAuthority,
  type IssueRequest,
  type KeyUsage,
} from './certificate.js';

/** The CertificateSigningRequest signerName of hypervisor-node certificates. */
export const NODE_SIGNER_NAME = 'tern.dev/hypervisor-node';
/** The operator's URI SAN; node certificates can never carry it (theirs are nodeUri(name)). */
export const OPERATOR_URI = 'spiffe://tern.dev/operator';
export const nodeUri = (nodeName: string): string => `spiffe://tern.dev/node/${nodeName}`;
