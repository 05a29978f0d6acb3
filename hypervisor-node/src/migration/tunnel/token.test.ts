import { MigrationTokenRegistry, decodeToken, newMigrationToken } from './token.js';

describe('MigrationTokenRegistry', () => {
  let now = 1_000;
  const registry = (): MigrationTokenRegistry => new MigrationTokenRegistry(() => now);
  const raw = (token: string): Buffer => decodeToken(token)!;

  beforeEach(() => (now = 1_000));

  it('admits each channel of a granted token once', () => {
    const tokens = registry();
    const token = newMigrationToken();
    tokens.grant('m1', token, 2, 5_000);
    expect(tokens.admit(raw(token), 0)).toEqual({ admitted: true, migrationId: 'm1', channelIndex: 0 });
    expect(tokens.admit(raw(token), 1)).toEqual({ admitted: true, migrationId: 'm1', channelIndex: 1 });
    expect(tokens.admit(raw(token), 0)).toEqual({ admitted: false, reason: 'channel 0 already used' });
  });

  it('refuses unknown, malformed, expired and revoked tokens and channels beyond the grant', () => {
    const tokens = registry();
    const token = newMigrationToken();
    const other = newMigrationToken();
    tokens.grant('m1', token, 1, 5_000);
    tokens.grant('m2', other, 1, 5_000);
    expect(tokens.admit(raw(newMigrationToken()), 0)).toEqual({ admitted: false, reason: 'unknown token' });
    expect(tokens.admit(Buffer.alloc(5), 0)).toEqual({ admitted: false, reason: 'malformed token' });
    expect(tokens.admit(raw(token), 1)).toEqual({ admitted: false, reason: 'channel 1 outside 0..0' });
    expect(tokens.admit(raw(token), -1).admitted).toBe(false);
    tokens.revoke('m1');
    expect(tokens.admit(raw(token), 0)).toEqual({ admitted: false, reason: 'unknown token' });
    now = 5_000;
    expect(tokens.admit(raw(other), 0)).toEqual({ admitted: false, reason: 'unknown token' });
  });

  it('rejects a grant whose token is not 32 base64url bytes', () => {
    const tokens = registry();
    expect(() => tokens.grant('m1', 'short', 1, 5_000)).toThrow(/base64url/);
    expect(() => tokens.grant('m1', `${newMigrationToken()}=`, 1, 5_000)).toThrow(/base64url/);
    expect(() => tokens.grant('m1', newMigrationToken(), 0, 5_000)).toThrow(/positive/);
  });

  it('makes distinct 43-character tokens', () => {
    const a = newMigrationToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newMigrationToken()).not.toBe(a);
  });
});
