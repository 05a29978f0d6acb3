import { KubeConfig } from '@kubernetes/client-node';
import {
  BridgeNetwork,
  canManageLinks,
  USER_MODE_LIMITATION,
  UserModeNetwork,
  type NicProvider,
} from './network/guest-network.js';
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import { prepareGuestCgroupRoot } from './runtime/cgroup.js';
import { GuestSupervisor } from './runtime/supervisor.js';
import { ConsoleHub } from './console/hub.js';
import { guestPaths } from './model/state-dir.js';
import type { GuestStatus } from './model/guest.js';
import { createDaemonMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { describeNode, probeHost, type NetworkFacts } from './node-info.js';
import { detectAccelerator } from './qemu/accel.js';
import {
  grantSearch,
  grantUserfaultfd,
  probeQemuIdentity,
  resolveQemuUser,
  USERFAULTFD_DEVICE,
  type QemuUser,
} from './qemu/run-as.js';
import { migrationsDir } from './migration/record-file.js';
import { checkImageRoots, defaultValidationPolicy } from './qemu/validate.js';
import { qemuImgInspector } from './qemu/image-header.js';
import { HypervisorNodeRegistration } from './registration/hypervisor-node.js';
import { SelfFencing } from './self-fencing/heartbeat.js';
import { createControlService } from './control/service.js';
import { ioUringProblem } from './qemu/io-uring.js';
import { startGrpcServer, type RunningServer } from './grpc-server.js';
import { FencingStore } from './rpc/fencing.js';
import { RpcMetrics } from './rpc/metrics.js';
import { loadServerCredentials } from './rpc/tls.js';
import { RotatingServerCredentials } from './rpc/rotating-credentials.js';
import { NodeIdentity } from './identity/node-identity.js';
import { kubeCsrApi } from './identity/csr-api.js';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { parseHostPort } from '../../cmdline/index.js';
import { createMigrationService } from './migration/service.js';

export interface Daemon {
  grpcPort: number;
  metricsPort: number;
  /** Stops serving and detaches from the guests; their QEMU processes keep running. */
  stop(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 5_000;
/** How long a first certificate request waits for the operator before the daemon gives up (and its pod restarts). */
const CSR_ANSWER_TIMEOUT_MS = 300_000;
const STATUS_INTERVAL_SECONDS = 60;

function loadKubeConfig(source: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (source === 'in-cluster') kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(source);
  return kubeConfig;
}

/**
 * Resolves --qemu-user, makes the state root and the migrations' key directories reachable for it, and proves
 * with a QEMU started as guests are (sandbox, user, a TLS key loaded) that the host allows it; throws one line
 * saying what the host refused otherwise.
 */
async function prepareQemuUser(config: DaemonConfig, logger: Logger): Promise<QemuUser | undefined> {
  const user = config.qemuUser === undefined ? undefined : await resolveQemuUser(config.qemuUser);
  const keyParent = migrationsDir(config.stateDir);
  if (user !== undefined) await grantSearch([config.stateDir, keyParent], user);
  await probeQemuIdentity(config.qemuBinary, user, keyParent);
  if (user === undefined) {
    logger.warn(
      "QEMU keeps the daemon's user (confined by its seccomp sandbox only): set --qemu-user to run it unprivileged",
    );
  } else {
    logger.info({ qemuUser: user.configured, uid: user.uid, gid: user.gid }, 'QEMU runs unprivileged');
    if (!(await grantUserfaultfd(user))) {
      logger.warn(
        `no ${USERFAULTFD_DEVICE}: an unprivileged QEMU can be a post-copy target only with vm.unprivileged_userfaultfd=1`,
      );
    }
  }
  return user;
}

/** Wires the daemon: host probe, supervisor (re-attaching to running guests), gRPC, metrics, registration. */
export async function startDaemon(config: DaemonConfig, logger: Logger): Promise<Daemon> {
  let cgroupRoots: string[] | undefined;
  if (config.guestCgroupRoot !== undefined) {
    cgroupRoots = await prepareGuestCgroupRoot(config.guestCgroupRoot);
    logger.info({ guestCgroupRoots: cgroupRoots }, 'guests run in cgroups of their own');
  }
  // Before anything else touches the guests: a watchdog a previous daemon started keeps guarding them.
  const selfFencing = new SelfFencing({
    stateRoot: config.stateDir,
    fenceAfterSeconds: config.registration?.fenceAfterSeconds ?? 0,
    cgroupRoots,
    logger,
  });
  await selfFencing.prepare();
  if (config.registration?.fenceAfterSeconds)
    logger.info(
      { fenceAfterSeconds: config.registration.fenceAfterSeconds },
      'guests are fenced (SIGKILL) when the Lease is not renewed for this long',
    );
  else
    logger.warn(
      'self-fencing is off: when this node is lost its VMs are not started elsewhere (nodeLossPolicy Restart waits)',
    );
  const qemuUser = await prepareQemuUser(config, logger);
  const imageRoots = {
    ...(config.imageRoot !== undefined ? { namespaceRoot: config.imageRoot } : {}),
    sharedRoots: config.sharedImageRoots,
  };
  await checkImageRoots(imageRoots);
  logger.info(imageRoots, 'image roots');
  const { credentials, identity } = await serverCredentials(config, logger);
  const [probed, accelerator] = await Promise.all([
    probeHost(config.qemuBinary),
    config.accelerator === 'auto'
      ? detectAccelerator({ qemuBinary: config.qemuBinary })
      : { accel: config.accelerator, reason: 'set by --accelerator' },
  ]);
  const host = { ...probed, cpus: config.cpuCapacity ?? probed.cpus };
  logger.info({ ...host, accelerator: accelerator.accel, why: accelerator.reason }, 'host probed');

  const ioUring = await ioUringProblem(qemuUser);
  if (ioUring !== undefined) logger.warn(`disks with io: io_uring are refused on this node: ${ioUring}`);

  const network = await chooseNetwork(config);
  const networkFacts: NetworkFacts =
    network.kind === 'user'
      ? { mode: 'user', limitation: USER_MODE_LIMITATION }
      : { mode: 'bridge', bridge: config.network.bridge };
  logger.info({ network: network.kind }, 'guest networking');
  if (networkFacts.mode === 'user') logger.warn(`user-mode networking: ${networkFacts.limitation}`);
  const supervisor = new GuestSupervisor({
    stateRoot: config.stateDir,
    accel: accelerator.accel,
    policy: defaultValidationPolicy(imageRoots, qemuImgInspector({ user: qemuUser }), ioUring),
    network,
    qemuBinary: config.qemuBinary,
    cgroupRoots,
    qemuUser,
    warn: (message) => logger.warn(message),
  });
  const reattached = await supervisor.reattachAll();
  logger.info(
    { guests: reattached.map(({ name, spec, phase }) => ({ name, displayName: spec.displayName, phase })) },
    'guests re-attached',
  );
  // After the re-attach: it connects to the console of every guest whose QEMU still runs, then follows the rest.
  const consoles = new ConsoleHub(supervisor, (name) => guestPaths(config.stateDir, name).consoleSocket);
  consoles.start();
  // The highest fencing token and ownership epochs the daemon saw before it restarted.
  const fencing = await FencingStore.open(config.stateDir);
  await fencing.keepGuests(reattached.map(({ name }) => name));
  logger.info({ fencingToken: fencing.highestToken }, 'fencing record loaded');

  const reservation = { cpus: config.reservedCpus, memoryMiB: config.reservedMemoryMiB };
  const nodeInfo = () =>
    describeNode(config.nodeName, host, accelerator.accel, reservation, networkFacts, supervisor.list());
  const metrics = createDaemonMetrics(config.nodeName, () => supervisor.list());
  const rpcMetrics = new RpcMetrics(metrics.registry);

  let registration: HypervisorNodeRegistration | undefined;
  const lastPhase = new Map<string, GuestStatus['phase']>(
    reattached.map((guest) => [guest.name, guest.phase]),
  );
  supervisor.on('status', (status) => {
    const previous = lastPhase.get(status.name);
    lastPhase.set(status.name, status.phase);
    if (previous === status.phase) return;
    logger.info(
      {
        guest: status.name,
        displayName: status.spec.displayName,
        from: previous,
        phase: status.phase,
        reason: status.reason,
      },
      'guest phase',
    );
    const ended = status.phase === 'Stopped' || status.phase === 'Failed';
    const hadProcess = previous !== undefined && previous !== 'Stopped' && previous !== 'Failed';
    if (ended && hadProcess) metrics.qemuExits.inc({ phase: status.phase });
    registration?.requestStatusUpdate();
  });
  supervisor.on('deleted', (name) => {
    lastPhase.delete(name);
    fencing
      .forgetGuest(name)
      .catch((error: unknown) =>
        logger.warn({ guest: name, err: error }, 'could not update the fencing record'),
      );
    registration?.requestStatusUpdate();
  });

  const control = createControlService({
    runtime: supervisor,
    nodeInfo,
    operatorIdentities: config.operatorIdentities,
    fencing,
    defaultStopTimeoutMs: config.stopTimeoutMs,
    metrics: rpcMetrics,
    logger,
    ...(qemuUser !== undefined ? { qemuUser } : {}),
    consoles,
    consoleLogOf: (name) => guestPaths(config.stateDir, name).console,
  });
  const migration = createMigrationService({
    supervisor,
    stateRoot: config.stateDir,
    nodeName: config.nodeName,
    accelerator: accelerator.accel,
    operatorIdentities: config.operatorIdentities,
    fencing,
    migrationAddress: config.migrationAddress,
    registry: metrics.registry,
    rpcMetrics,
    logger,
  });
  let server: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    await migration.recover();
    server = await startGrpcServer(config.listen, credentials, control, migration);
    metricsServer = await startMetricsServer(metrics.registry, config.metricsListen);
  } catch (error) {
    consoles.close();
    await identity?.stop();
    await server?.shutdown(0);
    await supervisor.close();
    throw error;
  }
  logger.info({ migrationAddress: config.migrationAddress }, 'incoming migrations listen on this address');

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
      selfFencing,
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
      await identity?.stop();
      await registration?.stop();
      await metricsServer.close();
      await supervisor.close();
    },
  };
}

/**
 * The control API's TLS credentials: the node certificate from files, or one issued for this node through the CSR
 * API (docs/install.md "Node identities"), replaced in the running server each time it is renewed.
 */
async function serverCredentials(
  config: DaemonConfig,
  logger: Logger,
): Promise<{ credentials: grpc.ServerCredentials; identity?: NodeIdentity }> {
  if (!('fromCsr' in config.tls)) return { credentials: await loadServerCredentials(config.tls) };
  const caPem = await readFile(config.tls.caFile, 'utf8');
  const advertised = parseHostPort(config.advertiseAddress, '--advertise-address').host;
  const identity = new NodeIdentity({
    api: kubeCsrApi(loadKubeConfig(config.registration!.kubeconfig)),
    nodeName: config.nodeName,
    ips: [...new Set([config.migrationAddress, advertised].filter((host) => isIP(host) !== 0))],
    caPem,
    stateDir: config.stateDir,
    lifetimeSeconds: config.tls.fromCsr.lifetimeSeconds,
    answerTimeoutMs: CSR_ANSWER_TIMEOUT_MS,
    logger,
  });
  const credentials = new RotatingServerCredentials(Buffer.from(caPem), await identity.start());
  identity.onRotate((next) => credentials.rotate(next));
  return { credentials, identity };
}

async function chooseNetwork(config: DaemonConfig): Promise<NicProvider> {
  const { mode, bridge, userModeGuestPort } = config.network;
  if (mode === 'user' || (mode === 'auto' && !(await canManageLinks()))) {
    return new UserModeNetwork(userModeGuestPort);
  }
  return new BridgeNetwork(config.nodeName, bridge);
}
