// The operator's structured JSON logs (pino, epoch-millisecond timestamps; the level is the given one, else
// $LOG_LEVEL, else info). Controllers derive a child per reconcile with controller, key and reconcileID. The daemon
// has a logger of its own (hypervisor-node/src/logger.ts: every line tagged with the node, ISO timestamps).
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createOperatorLogger(options: LoggerOptions = {}): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'info', ...options });
}
