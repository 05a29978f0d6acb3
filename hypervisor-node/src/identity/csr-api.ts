// The two CertificateSigningRequest calls the daemon makes, with its pod's ServiceAccount token: create its request,
// and read it back until the operator has answered.
import { CertificatesV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface CsrAnswer {
  /** PEM, once issued. */
  certificate?: string;
  /** The message of a Denied or Failed condition. */
  refused?: string;
}

export interface CsrApi {
  /** Creates the request; returns its name. */
  create(request: {
    generateName: string;
    pem: string;
    signerName: string;
    expirationSeconds: number;
  }): Promise<string>;
  read(name: string): Promise<CsrAnswer>;
}

export function kubeCsrApi(kubeConfig: KubeConfig): CsrApi {
  const api = kubeConfig.makeApiClient(CertificatesV1Api);
  return {
    async create({ generateName, pem, signerName, expirationSeconds }) {
      const created = await api.createCertificateSigningRequest({
        body: {
          metadata: { generateName },
          spec: {
            request: Buffer.from(pem).toString('base64'),
            signerName,
            expirationSeconds,
            usages: ['digital signature', 'key encipherment', 'server auth'],
          },
        },
      });
      return created.metadata!.name!;
    },
    async read(name) {
      const csr = await api.readCertificateSigningRequest({ name });
      const refused = (csr.status?.conditions ?? []).find(
        (c) => (c.type === 'Denied' || c.type === 'Failed') && c.status === 'True',
      );
      if (refused)
        return { refused: `${refused.type}: ${refused.message ?? refused.reason ?? 'no reason given'}` };
      const certificate = csr.status?.certificate;
      return certificate ? { certificate: Buffer.from(certificate, 'base64').toString('utf8') } : {};
    },
  };
}
