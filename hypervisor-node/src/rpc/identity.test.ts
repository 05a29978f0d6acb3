import type { PeerCertificate } from 'node:tls';
import { checkClientIdentity } from './identity.js';

// The fields of Node's PeerCertificate that the check reads, as Node fills them from a verified client certificate.
function peer(cn: string | string[] | undefined, subjectaltname?: string): PeerCertificate {
  return { subject: cn === undefined ? {} : { CN: cn }, subjectaltname } as unknown as PeerCertificate;
}

describe('checkClientIdentity', () => {
  const operatorCert = peer('tern-operator', 'URI:spiffe://tern.dev/operator');
  const nodeCert = peer(
    'node-a',
    'URI:spiffe://tern.dev/node/node-a, DNS:node-a, DNS:localhost, IP Address:127.0.0.1',
  );

  it('allows the operator by common name', () => {
    expect(checkClientIdentity(operatorCert, ['tern-operator'])).toEqual({
      allowed: true,
      identity: 'tern-operator',
    });
  });

  it('allows the operator by URI SAN', () => {
    expect(checkClientIdentity(operatorCert, ['spiffe://tern.dev/operator'])).toEqual({
      allowed: true,
      identity: 'spiffe://tern.dev/operator',
    });
  });

  it('refuses a node certificate and names what it presented', () => {
    expect(checkClientIdentity(nodeCert, ['tern-operator', 'spiffe://tern.dev/operator'])).toEqual({
      allowed: false,
      reason:
        'client certificate (CN=node-a, URI:spiffe://tern.dev/node/node-a) is not an allowed control identity',
    });
  });

  it('does not match a URI identity against the common name, nor a name against DNS SANs', () => {
    expect(
      checkClientIdentity(peer('spiffe://tern.dev/operator'), ['spiffe://tern.dev/operator']).allowed,
    ).toBe(false);
    expect(checkClientIdentity(peer('x', 'DNS:tern-operator'), ['tern-operator']).allowed).toBe(false);
  });

  it('refuses a URI SAN that only starts like the allowed one', () => {
    expect(
      checkClientIdentity(peer('x', 'URI:spiffe://tern.dev/operator-evil'), ['spiffe://tern.dev/operator'])
        .allowed,
    ).toBe(false);
  });

  it('handles a subject with several common names', () => {
    expect(checkClientIdentity(peer(['a', 'tern-operator']), ['tern-operator']).allowed).toBe(true);
  });

  it('refuses calls without a certificate', () => {
    expect(checkClientIdentity(undefined, ['tern-operator'])).toEqual({
      allowed: false,
      reason: 'no client certificate',
    });
    expect(checkClientIdentity({} as PeerCertificate, ['tern-operator']).allowed).toBe(false);
  });
});
