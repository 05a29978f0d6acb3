// A migration's one-time token: 32 random bytes the operator hands to both daemons (base64url on the wire, the
// `token` fields of PrepareIncoming and StartMigration). The daemons key QEMU's TLS with it (a pre-shared key), so
// only a peer holding it can connect to the target QEMU.
import { randomBytes } from 'node:crypto';

/** Raw length of a migration token; its text form is their base64url (43 characters). */
export const TOKEN_BYTES = 32;

/** A fresh one-time migration token, as the operator makes them (and tests that drive daemons directly). */
export function newMigrationToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** The token's bytes, or undefined unless it is exactly TOKEN_BYTES in canonical base64url. */
export function decodeToken(token: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const raw = Buffer.from(token, 'base64url');
  return raw.length === TOKEN_BYTES && raw.toString('base64url') === token ? raw : undefined;
}
