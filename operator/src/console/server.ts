// The users' console endpoint: a gRPC server (tern.console.v1alpha1.Console) over TLS that asks for, but does not
// require, a client certificate (auth.ts checks it against the apiserver's client CA, or the bearer token instead),
// and the ConfigMap tern-console that tells `kubectl tern console` where it is.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { startUpWrite, type StartUpWrite } from '../runtime/start-up-write.js';
import { formatHostPort } from '../../../cmdline/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { ConfigMaps } from '../../../kube/resources.js';
import { loadConsoleProto } from '../../../proto/index.js';
import type { HostPort } from '../../../cmdline/index.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import { KubeAuthenticator } from './auth.js';
import { consoleAttachHandler } from './session.js';

export interface ConsoleConfig {
  listen: HostPort;
  /** The serving certificate and key, and the CA that signed it (published for the CLI). */
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Where the ConfigMap tern-console (address, ca.crt) is written; undefined: not published. */
  publishNamespace?: string;
  /** The address published: how clients reach this endpoint (a Service's name); default: the listen address. */
  advertise?: string;
}

/** The ConfigMap the operator publishes its console endpoint in (keys `address`, `ca.crt`). */
export const CONSOLE_CONFIGMAP = 'tern-console';

export interface ConsoleServer {
  port: number;
  close(): Promise<void>;
}

/**
 * TLS that requests a client certificate without requiring one: a caller with a bearer token has none. grpc-js's
 * createSsl cannot do that; a certificate provider can. The CA it is given only fills the handshake's list of
 * acceptable issuers: the certificate is verified by auth.ts against the apiserver's client CA.
 */
function requestingCredentials(config: ConsoleConfig): grpc.ServerCredentials {
  const ca = { caCertificate: readFileSync(config.caFile) };
  const identity = { certificate: readFileSync(config.certFile), privateKey: readFileSync(config.keyFile) };
  // One object serves both roles, so that the order grpc-js passes them in does not matter. The certificates are
  // handed over on the next turn: grpc-js registers the server's watcher only after it added these listeners, and an
  // update delivered before that is lost (every handshake is then dropped).
  const provider = {
    addCaCertificateListener: (listener: (update: typeof ca) => void) => setImmediate(() => listener(ca)),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (listener: (update: typeof identity) => void) =>
      setImmediate(() => listener(identity)),
    removeIdentityCertificateListener: () => undefined,
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

export async function startConsoleServer(
  config: ConsoleConfig,
  client: KubeClient,
  pool: DaemonClientPool,
  logger: Logger,
): Promise<ConsoleServer> {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(loadConsoleProto().Console.service, {
    Attach: consoleAttachHandler({
      client,
      authenticator: new KubeAuthenticator(client),
      pool,
      logger: logger.child({ component: 'console' }),
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(formatHostPort(config.listen), requestingCredentials(config), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  let publishing: StartUpWrite | undefined;
  if (config.publishNamespace !== undefined) {
    const namespace = config.publishNamespace;
    const address = config.advertise ?? formatHostPort({ ...config.listen, port });
    const ca = readFileSync(config.caFile, 'utf8');
    publishing = startUpWrite(
      `publishing the console endpoint in ${namespace}/${CONSOLE_CONFIGMAP}`,
      () => publish(client, namespace, address, ca),
      logger,
    );
    void publishing.done.then(
      (published) => published && logger.info({ address, namespace }, 'console endpoint published'),
    );
  }
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        publishing?.stop();
        server.forceShutdown();
        resolve();
      }),
  };
}

async function publish(client: KubeClient, namespace: string, address: string, ca: string): Promise<void> {
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CONSOLE_CONFIGMAP, namespace },
    data: { address, 'ca.crt': ca },
  };
  await client.patch(ConfigMaps, CONSOLE_CONFIGMAP, namespace, {
    type: 'apply',
    body: configMap,
    force: true,
  });
}
