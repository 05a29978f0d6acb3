import { decodeToken, newMigrationToken, TOKEN_BYTES } from './token.js';

test('a new token decodes to TOKEN_BYTES random bytes, and two tokens differ', () => {
  const token = newMigrationToken();
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(decodeToken(token)).toHaveLength(TOKEN_BYTES);
  expect(newMigrationToken()).not.toBe(token);
});

test.each([
  ['too short', Buffer.alloc(16).toString('base64url')],
  ['too long', Buffer.alloc(33).toString('base64url')],
  ['not base64url', `${'a'.repeat(42)}+`],
  ['padded', `${Buffer.alloc(32).toString('base64url')}=`],
  ['empty', ''],
])('refuses a token that is %s', (_what, token) => {
  expect(decodeToken(token)).toBeUndefined();
});
