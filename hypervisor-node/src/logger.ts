import { pino, type Logger } from 'pino';

/** Structured JSON logs on stdout, one object per line, every line tagged with the node name. */
export function createLogger(nodeName: string, level: string): Logger {
  return pino({
    level,
    base: { component: 'hypervisor-node', node: nodeName },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
