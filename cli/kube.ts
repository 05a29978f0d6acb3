// The plugin's connection to the cluster. kubectl hands a plugin only the arguments after its name (not its own
// global flags), so the plugin reads --kubeconfig, --context and --namespace itself and otherwise follows
// kubectl's rules: $KUBECONFIG (a path list) or ~/.kube/config, the current context, and that context's namespace.
import type { KubeConfig } from '@kubernetes/client-node';
import { Migrations, isTerminalMigrationPhase } from '../crds/index.js';
import type { Migration, VirtualMachine } from '../crds/index.js';
import type { KubeClient } from '../kube/client.js';
import type { ConsoleCredentials } from './console.js';
import { InputError } from './validate.js';

export interface ConnectionOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export interface Connection {
  client: KubeClient;
  /** The kubeconfig user's credentials, for the operator's console endpoint (console.ts). */
  credentials?: () => Promise<ConsoleCredentials>;
  /** The namespace of namespaced commands: --namespace, else the context's, else "default". */
  namespace: string;
  close(): void;
}

export type Connect = (options: ConnectionOptions) => Promise<Connection>;

export const USER_AGENT = 'kubectl-tern';

async function loadConfig(options: ConnectionOptions): Promise<KubeConfig> {
  // Loaded on first use: client-node takes most of the plugin's start-up, and --help or a typo do not need it.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    const source = options.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config';
    throw new InputError(`cannot load kubeconfig ${source}: ${(err as Error).message}`);
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new InputError(`context ${JSON.stringify(options.context)} does not exist in the kubeconfig`);
    }
    kc.setCurrentContext(options.context);
  }
  return kc;
}

export const connect: Connect = async (options) => {
  const kc = await loadConfig(options);
  const { RestKubeClient } = await import('../kube/rest-client.js');
  const client = new RestKubeClient(kc, { userAgent: USER_AGENT });
  const namespace = options.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { client, namespace, credentials: () => userCredentials(kc), close: () => client.close() };
};

/** The current user's client certificate and bearer token (also from exec plugins), as client-node resolves them. */
async function userCredentials(kc: KubeConfig): Promise<ConsoleCredentials> {
  const options: { cert?: unknown; key?: unknown; headers?: Record<string, unknown> } = {};
  await kc.applyToHTTPSOptions(options as never);
  const pem = (value: unknown): Buffer | undefined =>
    typeof value === 'string' || Buffer.isBuffer(value) ? Buffer.from(value) : undefined;
  const authorization = options.headers?.Authorization ?? options.headers?.authorization;
  return {
    ...(pem(options.cert) !== undefined && pem(options.key) !== undefined
      ? { cert: pem(options.cert)!, key: pem(options.key)! }
      : {}),
    ...(typeof authorization === 'string' ? { authorization } : {}),
  };
}

/**
 * The Migrations of a VM that have not finished, oldest first: the one the VM's status names (when the VM
 * exists), plus any the operator has not finished or not picked up yet (no terminal phase).
 */
export async function activeMigrations(
  client: KubeClient,
  namespace: string,
  vmName: string,
  vm: VirtualMachine | undefined,
): Promise<Migration[]> {
  const { items } = await client.list<Migration>(Migrations, { namespace });
  const named = vm?.status?.activeMigration;
  return items
    .filter(
      (m) =>
        (named !== undefined && m.metadata.name === named) ||
        (m.spec.vmName === vmName && !isTerminalMigrationPhase(m.status?.phase)),
    )
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
}
