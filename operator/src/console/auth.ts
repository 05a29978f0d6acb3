// Who is asking for a console, the way an extension apiserver finds out: a bearer token is checked by the
// apiserver (TokenReview); a client certificate must be issued by the apiserver's client CA, which the apiserver
// publishes in ConfigMap kube-system/extension-apiserver-authentication (client-ca-file). Whether that user may
// attach is the apiserver's to say too (SubjectAccessReview on virtualmachines/console, verb get).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { KubeClient } from '../../../kube/client.js';
import { ConfigMaps, SubjectAccessReviews, TokenReviews } from '../../../kube/resources.js';
import type { KubeObject } from '../../../kube/types.js';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export class AuthenticationError extends Error {}

/** The bearer token of an `authorization: Bearer …` metadata value; undefined when there is none. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match?.[1];
}

/** The certificates of a PEM bundle. */
export function parseCaBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function subjectValues(subject: string, attribute: string): string[] {
  return subject
    .split('\n')
    .filter((line) => line.startsWith(`${attribute}=`))
    .map((line) => line.slice(attribute.length + 1));
}

/**
 * The user a client certificate names, as Kubernetes reads it (CN: the user name, O: the groups), once it is
 * signed directly by one of `cas` and valid at `now`. Throws AuthenticationError otherwise.
 */
export function userFromClientCertificate(der: Buffer, cas: readonly X509Certificate[], now: Date): UserInfo {
  const cert = new X509Certificate(der);
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (issuer === undefined) {
    throw new AuthenticationError(
      "the client certificate is not signed by the apiserver's client CA (extension-apiserver-authentication)",
    );
  }
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new AuthenticationError(
      `the client certificate is not valid now (${cert.validFrom} to ${cert.validTo})`,
    );
  }
  const [username] = subjectValues(cert.subject, 'CN');
  if (username === undefined || username === '') {
    throw new AuthenticationError('the client certificate names no user (no CN)');
  }
  return { username, groups: [...subjectValues(cert.subject, 'O'), 'system:authenticated'] };
}

interface TokenReview extends KubeObject {
  spec: { token: string };
  status?: { authenticated?: boolean; user?: UserInfo; error?: string };
}

interface SubjectAccessReview extends KubeObject {
  spec: Record<string, unknown>;
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** How long the client CA read from the ConfigMap is used before it is read again. */
const CLIENT_CA_TTL_MS = 60_000;

export class KubeAuthenticator {
  private clientCa?: { read: number; cas: X509Certificate[] };

  constructor(private readonly client: KubeClient) {}

  /** The user of a call: its bearer token, else its client certificate. Throws AuthenticationError. */
  async authenticate(
    authorization: string | undefined,
    peer: PeerCertificate | undefined,
  ): Promise<UserInfo> {
    const token = bearerToken(authorization);
    if (token !== undefined) return this.reviewToken(token);
    if (peer?.raw !== undefined)
      return userFromClientCertificate(peer.raw, await this.clientCas(), new Date());
    throw new AuthenticationError('no credentials: send a bearer token or a client certificate');
  }

  /** Whether `user` may attach to the console of VM namespace/name (SubjectAccessReview). */
  async mayAttach(
    user: UserInfo,
    namespace: string,
    name: string,
  ): Promise<{ allowed: boolean; reason: string }> {
    const review = await this.client.create<SubjectAccessReview>(SubjectAccessReviews, {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      metadata: {},
      spec: {
        user: user.username,
        ...(user.uid !== undefined ? { uid: user.uid } : {}),
        groups: user.groups,
        ...(user.extra !== undefined ? { extra: user.extra } : {}),
        resourceAttributes: {
          group: 'tern.dev',
          resource: 'virtualmachines',
          subresource: 'console',
          verb: 'get',
          namespace,
          name,
        },
      },
    });
    return {
      allowed: review.status?.allowed === true,
      reason: review.status?.reason || review.status?.evaluationError || '',
    };
  }

  private async reviewToken(token: string): Promise<UserInfo> {
    const review = await this.client.create<TokenReview>(TokenReviews, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: {},
      spec: { token },
    });
    const user = review.status?.user;
    if (review.status?.authenticated !== true || user?.username === undefined) {
      throw new AuthenticationError(
        `the bearer token was not accepted${review.status?.error ? `: ${review.status.error}` : ''}`,
      );
    }
    return { ...user, groups: user.groups ?? [] };
  }

  private async clientCas(): Promise<X509Certificate[]> {
    if (this.clientCa !== undefined && Date.now() - this.clientCa.read < CLIENT_CA_TTL_MS)
      return this.clientCa.cas;
    const configMap = await this.client.get<ConfigMap>(
      ConfigMaps,
      'extension-apiserver-authentication',
      'kube-system',
    );
    const pem = configMap.data?.['client-ca-file'];
    if (pem === undefined) {
      throw new AuthenticationError(
        'client certificates are not accepted: the apiserver publishes no client-ca-file in kube-system/extension-apiserver-authentication',
      );
    }
    this.clientCa = { read: Date.now(), cas: parseCaBundle(pem) };
    return this.clientCa.cas;
  }
}
