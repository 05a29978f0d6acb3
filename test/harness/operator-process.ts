// Runs the real operator (operator/src/main.ts) as a child process for integration tests.
import { fileURLToPath } from 'node:url';
import { programMain } from './program-bundles.js';
import { startServiceProcess, type ServiceProcess } from './service-process.js';

export type { LogLine } from './service-process.js';

const MAIN = fileURLToPath(new URL('../../operator/src/main.ts', import.meta.url));

export interface OperatorProcess extends Omit<ServiceProcess, 'ready'> {
  metricsPort: number;
  /** With --eviction-webhook-listen: the port it listens on. */
  evictionWebhookPort?: number;
}

/**
 * Starts the operator with `args` and resolves once it logged 'tern-operator ready' (metrics endpoint up). `main`:
 * a built bundle (hack/build-dist.ts) to run under plain node; by default the harness's bundle of the current
 * sources (program-bundles.ts).
 */
export async function startOperatorProcess(args: string[], main?: string): Promise<OperatorProcess> {
  const service = await startServiceProcess(
    main ?? (await programMain('operator', MAIN)),
    args,
    'tern-operator ready',
  );
  return {
    ...service,
    metricsPort: service.ready.metricsPort as number,
    evictionWebhookPort: service.ready.evictionWebhookPort as number | undefined,
  };
}
