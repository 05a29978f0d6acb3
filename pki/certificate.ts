// Issuing a leaf certificate from a checked request: the signer (the operator) signs with its CA key an X.509 v3
// certificate whose names it chose itself, never copying requested extensions.
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import {
  bits,
  children,
  contextTag,
  decodeOne,
  encode,
  ofTag,
  oid,
  sequence,
  TAG,
  time,
  unsignedInteger,
} from './der.js';
import {
  commonNameSubject,
  derToPem,
  extension,
  pemToDer,
  signatureAlgorithm,
  subjectAltNames,
  type CertificateNames,
} from './csr.js';

const EXTENSION = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
} as const;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export type KeyUsage = 'serverAuth' | 'clientAuth';

/** A CA: its certificate (PEM, the issuer name is taken from it) and its private key. */
export interface CertificateAuthority {
  certificate: X509Certificate;
  key: KeyObject;
  /** The CA certificate's subject, DER, copied into each certificate as its issuer. */
  subject: Buffer;
}

export function loadCertificateAuthority(certificatePem: string, keyPem: string): CertificateAuthority {
  const certificate = new X509Certificate(certificatePem);
  if (!certificate.ca)
    throw new Error('the signer certificate is not a CA certificate (basicConstraints CA:TRUE)');
  const key = createPrivateKey(keyPem);
  if (!certificate.checkPrivateKey(key))
    throw new Error("the signer key does not match the CA certificate's key");
  const tbs = children(
    ofTag(
      children(ofTag(decodeOne(certificate.raw), TAG.sequence, 'certificate'))[0],
      TAG.sequence,
      'certificate',
    ),
  );
  const first = tbs[0]?.tag === contextTag(0, true) ? 1 : 0;
  return { certificate, key, subject: Buffer.from(ofTag(tbs[first + 4], TAG.sequence, 'CA subject').raw) };
}

export interface IssueRequest {
  names: CertificateNames;
  /** DER SubjectPublicKeyInfo of the certified key. */
  publicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  usages: KeyUsage[];
}

/** A PEM certificate signed by the CA (ECDSA or RSA with SHA-256). */
export function issueCertificate(ca: CertificateAuthority, request: IssueRequest): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and 16 bytes long
  // keyUsage digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 in the top bits, five unused bits.
  const keyUsage = encode(TAG.bitString, Buffer.from([5, 0xa0]));
  const usages = request.usages.map((usage) => oid(usage === 'serverAuth' ? SERVER_AUTH : CLIENT_AUTH));
  const extensions = sequence(
    extension(EXTENSION.basicConstraints, sequence(), true),
    extension(EXTENSION.keyUsage, keyUsage, true),
    extension(EXTENSION.extKeyUsage, sequence(...usages)),
    extension(EXTENSION.subjectAltName, subjectAltNames(request.names)),
  );
  const algorithm = signatureAlgorithm(ca.key);
  const tbs = sequence(
    encode(contextTag(0, true), encode(TAG.integer, Buffer.from([2]))),
    unsignedInteger(serial),
    algorithm,
    ca.subject,
    sequence(time(request.notBefore), time(request.notAfter)),
    commonNameSubject(request.names.commonName),
    request.publicKeyInfo,
    encode(contextTag(3, true), extensions),
  );
  return derToPem(sequence(tbs, algorithm, bits(sign('sha256', tbs, ca.key))), 'CERTIFICATE');
}

/** The first CERTIFICATE block of a PEM bundle, as DER (what status.certificate of a CSR starts with). */
export function firstCertificate(pem: string): X509Certificate {
  return new X509Certificate(derToPem(pemToDer(pem, 'CERTIFICATE'), 'CERTIFICATE'));
}
