import { Option } from 'commander';
import {
  ConfigError,
  envOptions,
  parseHostPort,
  parseInteger,
  parseListenAddress,
  required,
} from './index.js';

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

test('parseListenAddress is parseHostPort with a ConfigError', () => {
  expect(parseListenAddress('[::1]:7443', '--listen')).toEqual({ host: '::1', port: 7443 });
  expect(() => parseListenAddress('8080', '--listen')).toThrow(
    new ConfigError('--listen: expected host:port, got "8080"'),
  );
});

test('required names the flag, and the variable when given', () => {
  expect(required('x', '--a')).toBe('x');
  expect(() => required(undefined, '--a')).toThrow(new ConfigError('--a is required'));
  expect(() => required('', '--a', 'TERN_A')).toThrow(new ConfigError('--a (or TERN_A) is required'));
});

test('parseInteger: canonical digits only, unless leading zeros are allowed', () => {
  const strict = { min: 1, leadingZeros: false } as const;
  expect(parseInteger('10', '--n', strict)).toBe(10);
  for (const bad of ['0', '010', '-1', '1.5', ''])
    expect(() => parseInteger(bad, '--n', strict)).toThrow(
      new ConfigError(`--n: expected a positive integer, got ${JSON.stringify(bad)}`),
    );
  expect(parseInteger('0', '--n', { min: 0, leadingZeros: false })).toBe(0);
  expect(() => parseInteger('00', '--n', { min: 0, leadingZeros: false })).toThrow(
    new ConfigError('--n: expected a non-negative integer, got "00"'),
  );

  const lenient = { min: 1, leadingZeros: true } as const;
  expect(parseInteger('010', '--n', lenient)).toBe(10);
  expect(() => parseInteger('0', '--n', lenient)).toThrow(new ConfigError('--n: must be greater than 0'));
  expect(() => parseInteger('-1', '--n', lenient)).toThrow(
    new ConfigError('--n: expected a non-negative integer, got "-1"'),
  );
  expect(parseInteger('000', '--n', { min: 0, leadingZeros: true })).toBe(0);
});
