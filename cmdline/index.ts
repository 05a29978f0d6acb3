// Command-line helpers shared by the programs' config parsers (operator/src/config.ts and
// hypervisor-node/src/config.ts, which must never import each other): the error a bad option value raises, the
// checks both make (required values, integers, listen addresses), and host:port as both read and write it (flags,
// and the daemons' data endpoints). Where the programs' rules differ, the difference is an option of the helper
// (IntegerRule.leadingZeros, required's envName), so each call site says which rule it applies.
import type { Option } from 'commander';

/** A bad option value; its message names the flag. The programs print it with their usage and exit non-zero. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** pino's levels: the values of every program's --log-level. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * Gives options an environment variable: `withEnv(option, 'TERN_X', 'default')` names the variable in the
 * option's description and makes its value (else `fallback`) the default, which the flag overrides.
 */
export function envOptions(
  env: NodeJS.ProcessEnv,
): (option: Option, envName: string, fallback?: string) => Option {
  return (option, envName, fallback) => {
    option.description += ` (env ${envName})`;
    const value = env[envName] ?? fallback;
    return value === undefined ? option : option.default(value);
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/**
 * host:port, an IPv6 host in brackets ([::1]:7443). Throws an Error whose message names `field` when `value` is
 * not host:port with a TCP port.
 */
export function parseHostPort(value: string, field: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`${field}: expected host:port, got ${JSON.stringify(value)}`);
  return { host: (match[1] ?? match[2])!, port };
}

/** parseHostPort for an option value: the same, but a bad value is a ConfigError. */
export function parseListenAddress(value: string, flag: string): HostPort {
  try {
    return parseHostPort(value, flag);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/**
 * The value of an option nothing defaults: `${flag} is required` when it is missing or empty, or
 * `${flag} (or ${envName}) is required` when `envName` is given to name the variable that also sets it.
 */
export function required(value: string | undefined, flag: string, envName?: string): string {
  if (!value) throw new ConfigError(`${envName ? `${flag} (or ${envName})` : flag} is required`);
  return value;
}

/** Which integers an option accepts. */
export interface IntegerRule {
  /** 1 for a count, size or duration that cannot be zero; 0 where zero means none. */
  min: 0 | 1;
  /**
   * Whether digits with leading zeros ("007") read as their number. Without them only the canonical form passes,
   * and any other value is "expected a positive (or non-negative) integer". With them any digits pass that check,
   * and a zero where `min` is 1 is reported on its own ("must be greater than 0"). The daemon's flags accept
   * leading zeros; the operator's do not.
   */
  leadingZeros: boolean;
}

/** A decimal integer option value under `rule`; anything else is a ConfigError naming `flag`. */
export function parseInteger(value: string, flag: string, rule: IntegerRule): number {
  const expected = (what: string) =>
    new ConfigError(`${flag}: expected a ${what} integer, got ${JSON.stringify(value)}`);
  if (rule.leadingZeros) {
    if (!/^\d+$/.test(value)) throw expected('non-negative');
    const parsed = Number(value);
    if (parsed < rule.min) throw new ConfigError(`${flag}: must be greater than 0`);
    return parsed;
  }
  const canonical = rule.min === 1 ? /^[1-9]\d*$/ : /^(?:0|[1-9]\d*)$/;
  if (!canonical.test(value)) throw expected(rule.min === 1 ? 'positive' : 'non-negative');
  return Number(value);
}

/** The inverse of parseHostPort. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
