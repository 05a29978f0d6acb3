import * as grpc from '@grpc/grpc-js';
import { loadControlProto, loadMigrationProto } from '../../proto/index.js';
import { formatHostPort, type HostPort } from '../../cmdline/index.js';
import type { MigrationService } from './migration/service.js';
import type { ControlService } from './control/service.js';

export interface RunningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Ends watch streams, lets in-flight calls finish for up to graceMs, then cuts remaining connections. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startGrpcServer(
  listen: HostPort,
  credentials: grpc.ServerCredentials,
  control: ControlService,
  migration: MigrationService,
): Promise<RunningServer> {
  // Long migrations must not be cut by connection aging; keepalive detects dead peers instead.
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(loadControlProto().GuestControl.service, control.handlers);
  server.addService(loadMigrationProto().Migration.service, migration.handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(formatHostPort(listen), credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  return {
    port,
    async shutdown(graceMs) {
      control.closeWatches();
      await migration.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
