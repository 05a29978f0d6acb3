import { Option } from 'commander';
import { envOptions, parseHostPort } from './index.js';

test('parseHostPort reads host:port, an IPv6 host in brackets', () => {
  expect(parseHostPort('127.0.0.1:8080', '--x')).toEqual({ host: '127.0.0.1', port: 8080 });
  expect(parseHostPort('[::1]:7443', '--x')).toEqual({ host: '::1', port: 7443 });
  expect(() => parseHostPort('8080', '--x')).toThrow('--x: expected host:port, got "8080"');
  expect(() => parseHostPort('h:70000', '--x')).toThrow('--x: expected host:port, got "h:70000"');
  expect(() => parseHostPort('::1:7443', '--x')).toThrow(/expected host:port/);
});

test('envOptions: the variable, else the fallback, is the default; the description names it', () => {
  const withEnv = envOptions({ TERN_A: 'from-env' });
  const a = withEnv(new Option('--a <v>', 'a'), 'TERN_A', 'fallback');
  expect([a.description, a.defaultValue]).toEqual(['a (env TERN_A)', 'from-env']);
  const b = withEnv(new Option('--b <v>', 'b'), 'TERN_B', 'fallback');
  expect(b.defaultValue).toBe('fallback');
  expect(withEnv(new Option('--c <v>', 'c'), 'TERN_C').defaultValue).toBeUndefined();
});
