import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Raw length of a migration token; its wire form is these bytes, its text form their base64url. */
export const TOKEN_BYTES = 32;

/** A fresh random one-time token (base64url, 43 characters) for one migration. */
export function newMigrationToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export type Admission =
  { admitted: true; migrationId: string; channelIndex: number } | { admitted: false; reason: string };

interface Grant {
  migrationId: string;
  digest: Buffer;
  channels: number;
  expiresAtMs: number;
  used: Set<number>;
}

const digestOf = (token: Buffer): Buffer => createHash('sha256').update(token).digest();

/**
 * The one-time tokens the operator handed to this daemon for inbound migrations. A token admits each of its
 * channel indexes (0 = QEMU's main channel, then the multifd channels) exactly once and only until it expires:
 * a replayed channel, an index beyond the migration's channel count, an expired or unknown token is refused.
 * Tokens are kept and looked up by their SHA-256 digest, so the lookup leaks no timing about the secret.
 */
export class MigrationTokenRegistry {
  readonly #grants = new Map<string, Grant>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Allows `token` for `channels` links of migration `migrationId` until `expiresAtMs`. */
  grant(migrationId: string, token: string, channels: number, expiresAtMs: number): void {
    const raw = decodeToken(token);
    if (!raw) throw new Error(`migration ${migrationId}: token is not ${TOKEN_BYTES} base64url bytes`);
    if (!Number.isInteger(channels) || channels < 1) throw new Error(`channels must be a positive integer`);
    const digest = digestOf(raw);
    this.#grants.set(digest.toString('hex'), { migrationId, digest, channels, expiresAtMs, used: new Set() });
  }

  /** Forgets every token of a migration (it finished, failed or was cancelled). */
  revoke(migrationId: string): void {
    for (const [key, grant] of this.#grants) if (grant.migrationId === migrationId) this.#grants.delete(key);
  }

  /** Checks a link's credentials and, when admitted, burns that channel index of the token. */
  admit(token: Buffer, channelIndex: number): Admission {
    this.#dropExpired();
    if (token.length !== TOKEN_BYTES) return { admitted: false, reason: 'malformed token' };
    const digest = digestOf(token);
    const grant = this.#grants.get(digest.toString('hex'));
    if (!grant || !timingSafeEqual(grant.digest, digest)) return { admitted: false, reason: 'unknown token' };
    if (!Number.isInteger(channelIndex) || channelIndex < 0 || channelIndex >= grant.channels) {
      return { admitted: false, reason: `channel ${channelIndex} outside 0..${grant.channels - 1}` };
    }
    if (grant.used.has(channelIndex))
      return { admitted: false, reason: `channel ${channelIndex} already used` };
    grant.used.add(channelIndex);
    return { admitted: true, migrationId: grant.migrationId, channelIndex };
  }

  #dropExpired(): void {
    const now = this.now();
    for (const [key, grant] of this.#grants) if (grant.expiresAtMs <= now) this.#grants.delete(key);
  }
}

/** The raw bytes of a text token, or undefined when it is not exactly TOKEN_BYTES of base64url. */
export function decodeToken(token: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  const raw = Buffer.from(token, 'base64url');
  return raw.length === TOKEN_BYTES && raw.toString('base64url') === token ? raw : undefined;
}
