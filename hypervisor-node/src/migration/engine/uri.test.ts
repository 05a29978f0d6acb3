import { assertUnixMigrationUri } from './uri.js';

test('accepts unix:<absolute path> and returns the path', () => {
  expect(assertUnixMigrationUri('unix:/run/tern/migrations/m-1.sock')).toBe('/run/tern/migrations/m-1.sock');
});

test.each([
  'tcp:127.0.0.1:4444',
  'unix:relative.sock',
  'unix:/run/a,b.sock',
  'unix:/run/../etc/x.sock',
  'unix:/run/a b.sock',
  'exec:cat',
])('refuses %s', (uri) => {
  expect(() => assertUnixMigrationUri(uri)).toThrow(/must be unix:<absolute path>/);
});

test('refuses a socket path longer than a unix socket address', () => {
  expect(() => assertUnixMigrationUri(`unix:/${'x'.repeat(107)}`)).toThrow(/longer than 107 bytes/);
});
