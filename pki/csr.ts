// PKCS#10 certificate requests (RFC 2986): the daemon writes one for its node's key; the operator's signer reads
// one back, checks its self-signature, and judges the names it asks for.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bits,
  children,
  contextTag,
  decodeOne,
  encode,
  ofTag,
  octets,
  oid,
  oidString,
  sequence,
  set,
  TAG,
  utf8,
  type Der,
} from './der.js';

export const OID = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const;

/** The names a certificate request or a certificate carries. */
export interface CertificateNames {
  commonName: string;
  dnsNames: string[];
  uris: string[];
  ips: string[];
}

export interface ParsedRequest {
  /** Every subject attribute, as OID=value ('2.5.4.3' is the common name). */
  subject: { oid: string; value: string }[];
  dnsNames: string[];
  uris: string[];
  ips: string[];
  /** SAN entries of other kinds (email, directory name, other name…), by their context tag number. */
  otherNames: number[];
  /** The request's public key as DER SubjectPublicKeyInfo, copied as is into the certificate. */
  publicKeyInfo: Buffer;
}

/** The signature algorithm (SHA-256) that fits a key: ECDSA or RSA PKCS#1 v1.5. */
export function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec') return sequence(oid(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === 'rsa')
    return sequence(oid(OID.sha256WithRsa), encode(TAG.null, Buffer.alloc(0)));
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (EC or RSA keys only)`);
}

export function commonNameSubject(commonName: string): Buffer {
  return sequence(set(sequence(oid(OID.commonName), utf8(commonName))));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = ip.includes('::')
    ? [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail)]
    : groups(head);
  return Buffer.concat(all.map((group) => Buffer.from(group.padStart(4, '0'), 'hex')));
}

function ipString(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) throw new Error('an IP address SAN of neither 4 nor 16 bytes');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Canonical text (compressed zeros), as node:net and X509Certificate write it.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

/** The subjectAltName extension's value: DNS names, URIs and IP addresses. */
export function subjectAltNames(names: Omit<CertificateNames, 'commonName'>): Buffer {
  return sequence(
    ...names.dnsNames.map((name) => encode(contextTag(2, false), Buffer.from(name, 'ascii'))),
    ...names.uris.map((uri) => encode(contextTag(6, false), Buffer.from(uri, 'ascii'))),
    ...names.ips.map((ip) => encode(contextTag(7, false), ipBytes(ip))),
  );
}

export function extension(id: string, value: Buffer, critical = false): Buffer {
  return sequence(oid(id), ...(critical ? [encode(TAG.boolean, Buffer.from([0xff]))] : []), octets(value));
}

/** A PEM block's DER, or an error naming what was expected. */
export function pemToDer(pem: string, label: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!match) throw new Error(`no ${label} PEM block`);
  return Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
}

export function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** A PEM CERTIFICATE REQUEST for the key pair, with the common name and the subject alternative names. */
export function createCertificateRequest(names: CertificateNames, privateKey: KeyObject): string {
  const publicKeyInfo = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const extensionRequest = sequence(
    oid(OID.extensionRequest),
    set(sequence(extension(OID.subjectAltName, subjectAltNames(names)))),
  );
  const info = sequence(
    encode(TAG.integer, Buffer.from([0])),
    commonNameSubject(names.commonName),
    publicKeyInfo,
    encode(contextTag(0, true), extensionRequest),
  );
  const signature = sign('sha256', info, privateKey);
  return derToPem(sequence(info, signatureAlgorithm(privateKey), bits(signature)), 'CERTIFICATE REQUEST');
}

function stringValue(element: Der): string {
  const text = [TAG.utf8String, TAG.printableString, TAG.ia5String] as number[];
  if (!text.includes(element.tag)) throw new Error('a subject attribute that is not a string');
  return element.content.toString('utf8');
}

function readSubject(name: Der): ParsedRequest['subject'] {
  return children(ofTag(name, TAG.sequence, 'subject')).flatMap((rdn) =>
    children(ofTag(rdn, TAG.set, 'subject')).map((attribute) => {
      const [type, value] = children(ofTag(attribute, TAG.sequence, 'subject attribute'));
      return { oid: oidString(ofTag(type, TAG.oid, 'subject attribute')), value: stringValue(value!) };
    }),
  );
}

function readAltNames(extensions: Der[], into: ParsedRequest): void {
  for (const ext of extensions) {
    const parts = children(ofTag(ext, TAG.sequence, 'extension'));
    if (oidString(parts[0]!) !== OID.subjectAltName) continue;
    const value = ofTag(parts[parts.length - 1], TAG.octetString, 'extension value');
    for (const name of children(ofTag(decodeOne(value.content), TAG.sequence, 'subjectAltName'))) {
      if (name.tag === contextTag(2, false)) into.dnsNames.push(name.content.toString('ascii'));
      else if (name.tag === contextTag(6, false)) into.uris.push(name.content.toString('ascii'));
      else if (name.tag === contextTag(7, false)) into.ips.push(ipString(name.content));
      else into.otherNames.push(name.tag & 0x1f);
    }
  }
}

/**
 * Reads a PEM CERTIFICATE REQUEST and checks its self-signature (the requester holds the key). Throws with the
 * reason when it is malformed or the signature does not verify.
 */
export function parseCertificateRequest(pem: string): ParsedRequest {
  const [info, algorithm, signature] = children(
    ofTag(decodeOne(pemToDer(pem, 'CERTIFICATE REQUEST')), TAG.sequence, 'certificate request'),
  );
  const [version, subject, publicKeyInfo, attributes] = children(
    ofTag(info, TAG.sequence, 'certification request info'),
  );
  if (version?.tag !== TAG.integer || version.content.length !== 1 || version.content[0] !== 0)
    throw new Error('certificate request: unsupported version');
  const spki = ofTag(publicKeyInfo, TAG.sequence, 'public key');
  const key = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  const algorithmOid = oidString(children(ofTag(algorithm, TAG.sequence, 'signature algorithm'))[0]!);
  const expected = key.asymmetricKeyType === 'ec' ? OID.ecdsaWithSha256 : OID.sha256WithRsa;
  if (algorithmOid !== expected)
    throw new Error(`certificate request: signature algorithm ${algorithmOid} is not SHA-256 with its key`);
  const sig = ofTag(signature, TAG.bitString, 'signature');
  if (!verify('sha256', info!.raw, key, sig.content.subarray(1)))
    throw new Error('certificate request: its signature does not verify with its own key');
  const parsed: ParsedRequest = {
    subject: readSubject(subject!),
    dnsNames: [],
    uris: [],
    ips: [],
    otherNames: [],
    publicKeyInfo: Buffer.from(spki.raw),
  };
  if (attributes !== undefined) {
    for (const attribute of children(ofTag(attributes, contextTag(0, true), 'attributes'))) {
      const [type, values] = children(ofTag(attribute, TAG.sequence, 'attribute'));
      if (oidString(type!) !== OID.extensionRequest) continue;
      for (const value of children(ofTag(values, TAG.set, 'attribute values')))
        readAltNames(children(ofTag(value, TAG.sequence, 'extensions')), parsed);
    }
  }
  return parsed;
}
