// The daemon's own certificate, issued per node through the Kubernetes CSR API (docs/install.md "Node identities"):
// a P-256 key made here, a request naming only this node (CN and DNS name = node name, URI
// spiffe://tern.dev/node/<node>, the node's IP addresses), signed by the operator (signer tern.dev/hypervisor-node)
// after it checked that the pod-bound token making the request belongs to a pod on this node. The key and
// certificate are kept in the state directory (0600) so that a restarted daemon serves at once, even while the
// operator is away; a new certificate is requested once 2/3 of the lifetime has passed, and the old one serves
// until the new one arrives.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createCertificateRequest, NODE_SIGNER_NAME, nodeUri } from '../../../pki/index.js';
import type { CsrApi } from './csr-api.js';

export interface Identity {
  certificatePem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface NodeIdentityOptions {
  api: CsrApi;
  nodeName: string;
  /** IP addresses the certificate names besides the node name (the migration and advertise addresses). */
  ips: string[];
  /** The CA the certificate must chain to (the daemon's --tls-ca). */
  caPem: string;
  /** <stateDir>/identity holds node.key and node.crt. */
  stateDir: string;
  /** spec.expirationSeconds asked for (the signer may shorten it). */
  lifetimeSeconds: number;
  /** How long a request may wait for the operator's answer before it counts as failed. */
  answerTimeoutMs: number;
  logger: Logger;
  /** Poll interval of the request's status. */
  pollMs?: number;
  now?: () => number;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** When to ask for the next certificate: once 2/3 of the current one's lifetime has passed. */
export function renewalTime(identity: Pick<Identity, 'notBefore' | 'notAfter'>): number {
  const start = identity.notBefore.getTime();
  return start + ((identity.notAfter.getTime() - start) * 2) / 3;
}

export class NodeIdentity {
  private current: Identity | undefined;
  private readonly listeners = new Set<(identity: Identity) => void>();
  private readonly stopping = new AbortController();
  private rotation: Promise<void> | undefined;

  constructor(private readonly options: NodeIdentityOptions) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  private get dir(): string {
    return join(this.options.stateDir, 'identity');
  }

  get identity(): Identity {
    if (!this.current) throw new Error('the node has no certificate yet');
    return this.current;
  }

  /** Called with every new certificate after the first. */
  onRotate(listener: (identity: Identity) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Loads the stored certificate when it is still valid, for this node, from this CA; otherwise requests one and
   * waits for it (throws when the operator refuses it, with its reason, or does not answer in time). Then keeps
   * rotating in the background until stop().
   */
  async start(): Promise<Identity> {
    const stored = await this.load();
    // A stored certificate past 2/3 of its lifetime still serves while rotate() asks for the next one at once.
    if (stored && this.now < stored.notAfter.getTime()) this.current = stored;
    else {
      this.current = await this.request();
      await this.store(this.current);
    }
    this.rotation = this.rotate();
    return this.current;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.rotation;
  }

  private async rotate(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      const identity = this.identity;
      const wait =
        failures === 0 ? renewalTime(identity) - this.now : Math.min(60_000, 1_000 * 2 ** failures);
      await sleep(Math.max(0, wait), this.stopping.signal);
      if (this.stopping.signal.aborted) return;
      try {
        const next = await this.request();
        await this.store(next);
        this.current = next;
        failures = 0;
        this.options.logger.info({ notAfter: next.notAfter.toISOString() }, 'node certificate renewed');
        for (const listener of this.listeners) listener(next);
      } catch (error) {
        failures++;
        this.options.logger.warn(
          { err: error, expires: identity.notAfter.toISOString() },
          'node certificate renewal failed; the current certificate serves until it expires',
        );
      }
    }
  }

  /** One CSR for a new key; resolves with the issued certificate, checked against the key, the names and the CA. */
  private async request(): Promise<Identity> {
    const { api, nodeName, ips, logger } = this.options;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const names = { commonName: nodeName, dnsNames: [nodeName], uris: [nodeUri(nodeName)], ips };
    const name = await api.create({
      generateName: `tern-node-${nodeName}-`,
      pem: createCertificateRequest(names, privateKey),
      signerName: NODE_SIGNER_NAME,
      expirationSeconds: this.options.lifetimeSeconds,
    });
    logger.info({ csr: name, signerName: NODE_SIGNER_NAME }, 'node certificate requested');
    const deadline = this.now + this.options.answerTimeoutMs;
    for (;;) {
      const answer = await api.read(name);
      if (answer.refused) throw new Error(`certificate request ${name} refused: ${answer.refused}`);
      if (answer.certificate) {
        const identity = this.check(
          answer.certificate,
          privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        );
        logger.info({ csr: name, notAfter: identity.notAfter.toISOString() }, 'node certificate issued');
        return identity;
      }
      if (this.now > deadline)
        throw new Error(
          `certificate request ${name} not answered within ${this.options.answerTimeoutMs / 1000} s: is the operator running with its node signer (operator.nodeSigner)?`,
        );
      if (this.stopping.signal.aborted) throw new Error('stopped');
      await sleep(this.options.pollMs ?? 1_000, this.stopping.signal);
    }
  }

  /** The certificate must be for this key, chain to the CA and name this node: anything else is not served. */
  private check(certificatePem: string, keyPem: string): Identity {
    const certificate = new X509Certificate(certificatePem);
    const ca = new X509Certificate(this.options.caPem);
    if (!certificate.checkPrivateKey(createPrivateKey(keyPem)))
      throw new Error('the issued certificate is not for the requested key');
    if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey))
      throw new Error(
        `the issued certificate is not signed by the CA of --tls-ca (issuer ${certificate.issuer})`,
      );
    if (certificate.checkHost(this.options.nodeName, { subject: 'never' }) !== this.options.nodeName)
      throw new Error(`the issued certificate does not name node ${this.options.nodeName}`);
    return {
      certificatePem: certificate.toString(),
      keyPem,
      notBefore: new Date(certificate.validFrom),
      notAfter: new Date(certificate.validTo),
    };
  }

  private async load(): Promise<Identity | undefined> {
    let certificatePem: string;
    let keyPem: string;
    try {
      [certificatePem, keyPem] = await Promise.all([
        readFile(join(this.dir, 'node.crt'), 'utf8'),
        readFile(join(this.dir, 'node.key'), 'utf8'),
      ]);
    } catch {
      return undefined;
    }
    try {
      return this.check(certificatePem, keyPem);
    } catch (error) {
      this.options.logger.warn(
        { err: error },
        'the stored node certificate is not used; requesting a new one',
      );
      return undefined;
    }
  }

  /** Key first, then certificate, each written whole (temp file, rename): a crash leaves a pair load() refuses. */
  private async store(identity: Identity): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const [file, text] of [
      ['node.key', identity.keyPem],
      ['node.crt', identity.certificatePem],
    ] as const) {
      const path = join(this.dir, file);
      await writeFile(`${path}.tmp`, text, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    }
  }
}
