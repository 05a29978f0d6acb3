import { X509Certificate } from 'node:crypto';

/**
 * The common names of the operator's own client certificate: a node of that name gets no certificate, since a
 * daemon that allows the operator by common name would take it for the operator.
 */
export function operatorCommonNames(certificatePem: string): string[] {
  const subject = new X509Certificate(certificatePem).subject;
  return subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice('CN='.length));
}
