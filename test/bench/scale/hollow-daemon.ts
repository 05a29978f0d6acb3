// HOLLOW DAEMONS: bench:scale only (issue 14 item 6). Nothing else in Tern may fake a daemon: tests use real daemons
// and real QEMU.
//
// One hollow hypervisor-node daemon: the daemon's own gRPC server (grpc-server.ts, mTLS with the node's test
// certificate, only the operator's identity admitted), its own GuestControl service (control/service.ts) over a
// HollowGuests table instead of the QEMU supervisor, a hollow Migration service (hollow-migrations.ts), the
// daemon's own fencing record, and its own registration (the HypervisorNode and its status, the node Lease renewed as
// heartbeat). Many of them run in one process; each is a server of its own on a loopback port, as a node is.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { DevCerts } from '../../harness/certificates.js';
import { ConsoleHub } from '../../../hypervisor-node/src/console/hub.js';
import { createControlService } from '../../../hypervisor-node/src/control/service.js';
import { startGrpcServer, type RunningServer } from '../../../hypervisor-node/src/grpc-server.js';
import { describeNode } from '../../../hypervisor-node/src/node-info.js';
import { HypervisorNodeRegistration } from '../../../hypervisor-node/src/registration/hypervisor-node.js';
import { FencingStore } from '../../../hypervisor-node/src/rpc/fencing.js';
import { RpcMetrics } from '../../../hypervisor-node/src/rpc/metrics.js';
import { loadServerCredentials } from '../../../hypervisor-node/src/rpc/tls.js';
import { HollowGuests } from './hollow-guests.js';
import {
  createHollowMigrationService,
  type HollowFabric,
  type HollowMigrationTiming,
} from './hollow-migrations.js';

export interface HollowDaemonOptions {
  node: string;
  certs: DevCerts;
  /** The fencing record's directory. */
  stateDir: string;
  /** Where the HypervisorNode and the Lease are written (one per daemon, or shared). */
  kubeConfig: KubeConfig;
  leaseNamespace: string;
  leaseDurationSeconds: number;
  heartbeatIntervalSeconds: number;
  /** What the node offers (a hollow guest costs nothing, so make room for every VM the scenario places). */
  capacity: { cpus: number; memoryMiB: number };
  fabric: HollowFabric;
  timing: HollowMigrationTiming;
}

export interface HollowDaemon {
  node: string;
  grpcPort: number;
  guests: HollowGuests;
  stop(): Promise<void>;
}

const STATUS_INTERVAL_SECONDS = 60;
const SHUTDOWN_GRACE_MS = 2_000;

export async function startHollowDaemon(options: HollowDaemonOptions): Promise<HollowDaemon> {
  const { node } = options;
  // Errors only: the registration's status writes meet the operator's (409, retried) all the time at this scale.
  const logger = pino({ level: 'error', base: { node } });
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const guests = new HollowGuests();
  const fencing = await FencingStore.open(options.stateDir);
  const registry = new Registry();
  const rpcMetrics = new RpcMetrics(registry);
  const host = { ...options.capacity, qemuVersion: '10.0.0', hostCpuModel: 'hollow' };
  const nodeInfo = () =>
    describeNode(
      node,
      host,
      'tcg',
      { cpus: 0, memoryMiB: 0 },
      { mode: 'user', limitation: 'hollow daemon: guests have no network' },
      guests.list(),
    );
  const pair = options.certs.nodes[node];
  if (pair === undefined) throw new Error(`no certificate for node ${node}`);
  const credentials = await loadServerCredentials({
    certFile: pair.cert,
    keyFile: pair.key,
    caFile: options.certs.ca.cert,
  });
  const operatorIdentities = ['tern-operator'];
  const control = createControlService({
    runtime: guests.asRuntime(),
    nodeInfo,
    operatorIdentities,
    fencing,
    defaultStopTimeoutMs: 1_000,
    metrics: rpcMetrics,
    logger,
    // Never started: hollow guests have no serial port (AttachConsole answers that the console is closed).
    consoles: new ConsoleHub(guests, () => join(options.stateDir, 'no-console')),
    consoleLogOf: () => join(options.stateDir, 'no-console.log'),
  });
  const hollow = createHollowMigrationService({
    nodeName: node,
    guests,
    fabric: options.fabric,
    timing: options.timing,
    operatorIdentities,
    fencing,
    rpcMetrics,
    logger,
  });
  const server: RunningServer = await startGrpcServer({ host: '127.0.0.1', port: 0 }, credentials, control, {
    handlers: hollow.handlers,
    recover: () => Promise.resolve(),
    close: () => Promise.resolve(hollow.close()),
  });
  const registration = new HypervisorNodeRegistration({
    kubeConfig: options.kubeConfig,
    nodeName: node,
    endpoint: `127.0.0.1:${server.port}`,
    leaseNamespace: options.leaseNamespace,
    leaseDurationSeconds: options.leaseDurationSeconds,
    heartbeatIntervalSeconds: options.heartbeatIntervalSeconds,
    statusIntervalSeconds: STATUS_INTERVAL_SECONDS,
    nodeInfo,
    logger,
  });
  // Guests that come and go change what the node reports: its status is written again soon (as the daemon does).
  guests.on('status', () => registration.requestStatusUpdate());
  guests.on('deleted', (name) => {
    void fencing.forgetGuest(name).catch(() => undefined);
    registration.requestStatusUpdate();
  });
  try {
    await registration.start();
  } catch (error) {
    await server.shutdown(0);
    throw error;
  }
  return {
    node,
    grpcPort: server.port,
    guests,
    async stop() {
      await server.shutdown(SHUTDOWN_GRACE_MS);
      await registration.stop();
    },
  };
}
