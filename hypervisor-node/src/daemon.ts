import { KubeConfig } from '@kubernetes/client-node';
import { BridgeNetwork, canManageLinks, UserModeNetwork, type NicProvider } from './network/guest-network.js';
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import { GuestSupervisor } from './guests/supervisor.js';
import type { GuestStatus } from './guests/types.js';
import { createDaemonMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { describeNode, probeHost } from './node-info.js';
import { detectAccelerator } from './qemu/accel.js';
import { defaultValidationPolicy } from './qemu/validate.js';
import { HypervisorNodeRegistration } from './registration/hypervisor-node.js';
import { createControlService } from './server/control-service.js';
import { startGrpcServer, type RunningServer } from './server/grpc-server.js';
import { loadServerCredentials, readLinkTls } from './server/tls.js';
import { startDataLinkListener } from './migration/data-link.js';
import { createMigrationService, type MigrationService } from './migration/service.js';
import type { LinkListener } from './migration/tunnel/tls-link.js';
import { MigrationTokenRegistry } from './migration/tunnel/token.js';

export interface Daemon {
  grpcPort: number;
  metricsPort: number;
  /** Stops serving and detaches from the guests; their QEMU processes keep running. */
  stop(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 5_000;
const STATUS_INTERVAL_SECONDS = 60;

function loadKubeConfig(source: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (source === 'in-cluster') kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(source);
  return kubeConfig;
}

/** Wires the daemon: host probe, supervisor (re-attaching to running guests), gRPC, metrics, registration. */
export async function startDaemon(config: DaemonConfig, logger: Logger): Promise<Daemon> {
  const credentials = await loadServerCredentials(config.tls);
  const [host, accelerator] = await Promise.all([
    probeHost(config.qemuBinary),
    config.accelerator === 'auto'
      ? detectAccelerator({ qemuBinary: config.qemuBinary })
      : { accel: config.accelerator, reason: 'set by --accelerator' },
  ]);
  logger.info({ ...host, accelerator: accelerator.accel, why: accelerator.reason }, 'host probed');

  const network = await chooseNetwork(config);
  logger.info({ network: network.kind }, 'guest networking');
  if (network.kind === 'user') {
    logger.warn(
      'user-mode networking: each guest is reachable only through one TCP port forwarded on 127.0.0.1, ' +
        'guests cannot reach each other, and a guest address does not move with a migration',
    );
  }
  const supervisor = new GuestSupervisor({
    stateRoot: config.stateDir,
    accel: accelerator.accel,
    policy: defaultValidationPolicy(config.allowedRoots),
    network,
    qemuBinary: config.qemuBinary,
  });
  const reattached = await supervisor.reattachAll();
  logger.info({ guests: reattached.map(({ name, phase }) => ({ name, phase })) }, 'guests re-attached');

  const reservation = { cpus: config.reservedCpus, memoryMiB: config.reservedMemoryMiB };
  const nodeInfo = () =>
    describeNode(config.nodeName, host, accelerator.accel, reservation, supervisor.list());
  const metrics = createDaemonMetrics(config.nodeName, () => supervisor.list());

  let registration: HypervisorNodeRegistration | undefined;
  const lastPhase = new Map<string, GuestStatus['phase']>(
    reattached.map((guest) => [guest.name, guest.phase]),
  );
  supervisor.on('status', (status) => {
    const previous = lastPhase.get(status.name);
    lastPhase.set(status.name, status.phase);
    if (previous === status.phase) return;
    logger.info(
      { guest: status.name, from: previous, phase: status.phase, reason: status.reason },
      'guest phase',
    );
    const ended = status.phase === 'Stopped' || status.phase === 'Failed';
    const hadProcess = previous !== undefined && previous !== 'Stopped' && previous !== 'Failed';
    if (ended && hadProcess) metrics.qemuExits.inc({ phase: status.phase });
    registration?.requestStatusUpdate();
  });
  supervisor.on('deleted', (name) => {
    lastPhase.delete(name);
    registration?.requestStatusUpdate();
  });

  const control = createControlService({
    runtime: supervisor,
    nodeInfo,
    operatorIdentities: config.operatorIdentities,
    defaultStopTimeoutMs: config.stopTimeoutMs,
    metrics,
    logger,
  });
  // Migration data links: the target daemon listens, the source daemon dials (one TLS link per QEMU connection).
  const linkTls = await readLinkTls(config.tls);
  const tokens = new MigrationTokenRegistry();
  let migration: MigrationService | undefined;
  let server: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let linkListener: LinkListener | undefined;
  let dataEndpoint = '';
  try {
    linkListener = await startDataLinkListener({
      ...config.migrationListen,
      tls: linkTls,
      tokens,
      onLink: (link, admission) => migration!.onLink(link, admission),
      logger,
    });
    dataEndpoint = dataEndpointOf(config, linkListener.port);
    migration = createMigrationService({
      supervisor,
      stateRoot: config.stateDir,
      nodeName: config.nodeName,
      accelerator: accelerator.accel,
      operatorIdentities: config.operatorIdentities,
      linkTls,
      tokens,
      dataEndpoint: () => dataEndpoint,
      logger,
    });
    server = await startGrpcServer(config.listen, credentials, control, migration);
    metricsServer = await startMetricsServer(metrics.registry, config.metricsListen);
  } catch (error) {
    await server?.shutdown(0);
    await linkListener?.close();
    await supervisor.close();
    throw error;
  }
  logger.info({ dataEndpoint }, 'migration link listener ready');

  if (config.registration) {
    const endpoint = config.advertiseAddress.replace(/:0$/, `:${server.port}`);
    registration = new HypervisorNodeRegistration({
      kubeConfig: loadKubeConfig(config.registration.kubeconfig),
      nodeName: config.nodeName,
      endpoint,
      leaseNamespace: config.registration.leaseNamespace,
      leaseDurationSeconds: config.registration.leaseDurationSeconds,
      heartbeatIntervalSeconds: config.registration.heartbeatIntervalSeconds,
      statusIntervalSeconds: STATUS_INTERVAL_SECONDS,
      nodeInfo,
      logger,
    });
    await registration.start();
  } else {
    logger.warn('no --kubeconfig: the HypervisorNode is not registered and no Lease is renewed');
  }

  const grpcPort = server.port;
  const metricsPort = metricsServer.port;
  return {
    grpcPort,
    metricsPort,
    async stop() {
      await server.shutdown(SHUTDOWN_GRACE_MS);
      await linkListener.close();
      await registration?.stop();
      await metricsServer.close();
      await supervisor.close();
    },
  };
}

/** host:port peers dial for data links: the listen host, or the advertised host when listening on a wildcard. */
function dataEndpointOf(config: DaemonConfig, port: number): string {
  const { host } = config.migrationListen;
  const advertised = /^\[?([^\]]*?)\]?:\d+$/.exec(config.advertiseAddress)?.[1] ?? host;
  const chosen = ['0.0.0.0', '::'].includes(host) ? advertised : host;
  return chosen.includes(':') ? `[${chosen}]:${port}` : `${chosen}:${port}`;
}

async function chooseNetwork(config: DaemonConfig): Promise<NicProvider> {
  const { mode, bridge, userModeGuestPort } = config.network;
  if (mode === 'user' || (mode === 'auto' && !(await canManageLinks()))) {
    return new UserModeNetwork(userModeGuestPort);
  }
  return new BridgeNetwork(config.nodeName, bridge);
}
