// Structured JSON logs (pino). Controllers derive a child per reconcile with controller, key and reconcileID.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'info', ...options });
}
