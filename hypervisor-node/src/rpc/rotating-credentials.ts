import * as grpc from '@grpc/grpc-js';

export interface KeyPair {
  certificatePem: string;
  keyPem: string;
}

/**
 * Server credentials (mutual TLS, client certificates must chain to `ca`) whose own certificate can be replaced
 * while the server runs: connections made after rotate() get the new one, open ones keep theirs. grpc-js applies
 * updateSecureContextOptions() to its listening servers (Http2SecureServer.setSecureContext).
 */
export class RotatingServerCredentials extends grpc.ServerCredentials {
  constructor(
    private readonly ca: Buffer,
    pair: KeyPair,
  ) {
    super({ requestCert: true }, RotatingServerCredentials.context(ca, pair));
  }

  private static context(ca: Buffer, pair: KeyPair) {
    return { ca, cert: [Buffer.from(pair.certificatePem)], key: [Buffer.from(pair.keyPem)] };
  }

  rotate(pair: KeyPair): void {
    this.updateSecureContextOptions(RotatingServerCredentials.context(this.ca, pair));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
