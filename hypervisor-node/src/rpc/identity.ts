import type { PeerCertificate } from 'node:tls';

export type IdentityCheck = { allowed: true; identity: string } | { allowed: false; reason: string };

/** URI subject alternative names of a peer certificate ('URI:spiffe://…' entries of `subjectaltname`). */
function uriNames(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
}

function commonNames(cert: PeerCertificate): string[] {
  // Node gives an array when the subject carries the attribute more than once.
  const cn: unknown = cert.subject?.CN;
  if (Array.isArray(cn)) return cn.filter((value): value is string => typeof value === 'string');
  return typeof cn === 'string' ? [cn] : [];
}

/**
 * Decides whether the verified peer certificate of a call belongs to an allowed identity. An allowed identity that
 * contains ':' (e.g. 'spiffe://tern.dev/operator') matches a URI SAN; any other matches the subject common name.
 * The certificate chain itself was already verified against the cluster CA by the TLS handshake.
 */
export function checkClientIdentity(
  cert: PeerCertificate | undefined,
  allowedIdentities: readonly string[],
): IdentityCheck {
  if (!cert || Object.keys(cert).length === 0) return { allowed: false, reason: 'no client certificate' };
  const uris = uriNames(cert);
  const cns = commonNames(cert);
  for (const identity of allowedIdentities) {
    if (identity.includes(':') ? uris.includes(identity) : cns.includes(identity))
      return { allowed: true, identity };
  }
  const presented =
    [...cns.map((cn) => `CN=${cn}`), ...uris.map((uri) => `URI:${uri}`)].join(', ') || 'no names';
  return { allowed: false, reason: `client certificate (${presented}) is not an allowed control identity` };
}
