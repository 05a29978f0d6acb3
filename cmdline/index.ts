// Command-line helpers shared by the programs' config parsers (operator/src/config.ts and
// hypervisor-node/src/config.ts, which must never import each other): the parts of their command lines that are
// really the same, and host:port as both read and write it (flags, and the daemons' data endpoints). Each program keeps its own ConfigError and its own number parsers (their rules and messages
// differ: the daemon accepts leading zeros, the operator does not).
import type { Option } from 'commander';

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

/** The inverse of parseHostPort. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
