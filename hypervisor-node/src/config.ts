import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { isValidBridgeName } from './network/guest-network.js';
import { isAbsolute } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { DNS1123_LABEL } from '../../crds/index.js';
import {
  ConfigError,
  envOptions,
  LOG_LEVELS,
  parseInteger,
  parseListenAddress,
  required,
  type HostPort,
  type IntegerRule,
} from '../../cmdline/index.js';

export { ConfigError } from '../../cmdline/index.js';

export interface DaemonConfig {
  nodeName: string;
  /** gRPC control (and later migration) endpoint. */
  listen: HostPort;
  /** host:port the operator and peers dial; reported in HypervisorNode.status.endpoint. */
  advertiseAddress: string;
  /**
   * IP address on which an incoming guest's QEMU listens for the source's migration stream (a free port per
   * migration, reported by PrepareIncoming). Default: the --listen host, else the --advertise-address host.
   */
  migrationAddress: string;
  /**
   * The CA the operator's client certificate must chain to, and this node's certificate: files, or one issued per
   * node through the Kubernetes CSR API (identity/node-identity.ts).
   */
  tls: DaemonTls;
  /** Client identities allowed to call control RPCs: a certificate CN, or a URI SAN when it contains ':'. */
  operatorIdentities: string[];
  stateDir: string;
  /**
   * Where every guest runs in a cgroup of its own, so that guests outlive the daemon's container (a runtime
   * stopping it kills its whole cgroup): a cgroup v2 directory (<dir>/<guest>), or on a cgroup v1 host a path under
   * the hierarchies' mount dir, e.g. /sys/fs/cgroup/tern-guests (<mounts>/<each hierarchy>/tern-guests/<guest>);
   * undefined: the daemon's cgroups.
   */
  guestCgroupRoot?: string;
  /**
   * Per-namespace images: a guest of namespace N uses `<imageRoot>/N/...` (its writable disks only there);
   * undefined: no guest may have a writable disk. See docs/images.md.
   */
  imageRoot?: string;
  /** Admin-provided read-only images any namespace may use: kernels, initrds, read-only disks, qcow2 bases. */
  sharedImageRoots: string[];
  qemuBinary: string;
  /**
   * The user QEMU drops to once started (a name or uid:gid; see qemu/run-as.ts); undefined: QEMU keeps the
   * daemon's user (root), which only its seccomp sandbox confines.
   */
  qemuUser?: string;
  /** 'auto' probes whether KVM can really run a guest (takes up to 5 s when it cannot). */
  accelerator: 'auto' | 'kvm' | 'tcg';
  /** Host side of guest NICs: taps on a bridge, user-mode networking, or 'auto' (bridge when links can be made). */
  network: { mode: 'auto' | 'bridge' | 'user'; bridge: string; userModeGuestPort: number };
  /** Default graceful-stop timeout when a StopGuest request gives none. */
  stopTimeoutMs: number;
  /** vCPUs the node offers to guests in all, replacing its CPU count (TCG test hosts overcommit); undefined: the CPU count. */
  cpuCapacity?: number;
  reservedCpus: number;
  reservedMemoryMiB: number;
  /** Where to register the HypervisorNode and renew its Lease; undefined when registration is off. */
  registration?: {
    /** Path of a kubeconfig, or 'in-cluster' for the pod's service account. */
    kubeconfig: string;
    leaseNamespace: string;
    leaseDurationSeconds: number;
    heartbeatIntervalSeconds: number;
    /**
     * Self-fencing: this long after the start of the last successful Lease renewal, the node's watchdog SIGKILLs
     * every guest QEMU (docs/architecture.md "Node failure"); 0 turns it off, and the operator then never starts
     * this node's VMs elsewhere.
     */
    fenceAfterSeconds: number;
  };
  metricsListen: HostPort;
  logLevel: string;
}

export type DaemonTls =
  | { caFile: string; certFile: string; keyFile: string }
  | { caFile: string; fromCsr: { lifetimeSeconds: number } };

/** Thrown for --help; carries the usage text. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

const DNS_LABEL = DNS1123_LABEL;

// The daemon's numbers accept leading zeros ("0512" is 512).
const NON_NEGATIVE: IntegerRule = { min: 0, leadingZeros: true };
const POSITIVE: IntegerRule = { min: 1, leadingZeros: true };

function port(value: string, flag: string): number {
  const parsed = parseInteger(value, flag, POSITIVE);
  if (parsed > 65535) throw new ConfigError(`${flag}: ${value} is not a TCP port`);
  return parsed;
}

function bridgeName(value: string): string {
  if (!isValidBridgeName(value)) {
    throw new ConfigError(
      `--bridge: ${JSON.stringify(value)} is not an interface name (1-15 of [A-Za-z0-9_.-])`,
    );
  }
  return value;
}

function listFromEnv(value: string | undefined): string[] {
  return value ? value.split(':').filter((entry) => entry !== '') : [];
}

interface RawOptions {
  nodeName?: string;
  listen: string;
  advertiseAddress?: string;
  migrationAddress?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** true from the flag, the string of TERN_TLS_FROM_CSR from the environment. */
  tlsFromCsr?: boolean | string;
  nodeCertificateLifetimeSeconds: string;
  operatorIdentity: string[];
  stateDir: string;
  guestCgroupRoot?: string;
  imageRoot?: string;
  sharedImageRoot: string[];
  qemuBinary: string;
  qemuUser?: string;
  accelerator: string;
  network: string;
  bridge: string;
  userNetGuestPort: string;
  stopTimeoutMs: string;
  cpuCapacity?: string;
  reservedCpus: string;
  reservedMemoryMib: string;
  kubeconfig?: string;
  leaseNamespace: string;
  leaseDurationSeconds: string;
  heartbeatIntervalSeconds: string;
  fenceAfterSeconds: string;
  metricsListen: string;
  logLevel: string;
}

/**
 * Two minutes: three times the default Lease duration (40 s), so a node is NotReady well before its guests die and
 * a few failed renewals never fence; long enough to ride out a restart of a single kube-apiserver (which fences
 * every node at once); short enough that a VM with nodeLossPolicy Restart is back on another node within about
 * two and a half minutes (fence time plus the operator's margin, 30 s by default).
 */
export const DEFAULT_FENCE_AFTER_SECONDS = 120;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The daemon's command line; most flags also have an environment variable, which the flag overrides. */
function command(env: NodeJS.ProcessEnv): Command {
  const withEnv = envOptions(env);
  return new Command('hypervisor-node')
    .description('Tern hypervisor-node daemon: runs QEMU guests and serves the control API to the operator')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .allowExcessArguments(false)
    .addOption(withEnv(new Option('--node-name <name>', 'node name (DNS-1123 label)'), 'TERN_NODE_NAME'))
    .addOption(
      withEnv(new Option('--listen <host:port>', 'gRPC listen address'), 'TERN_LISTEN', '127.0.0.1:7443'),
    )
    .addOption(
      withEnv(
        new Option('--advertise-address <host:port>', 'address others dial (default: --listen)'),
        'TERN_ADVERTISE_ADDRESS',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--migration-address <ip>',
          'IP address incoming migrations listen on, a free port each (default: the --listen or --advertise-address host)',
        ),
        'TERN_MIGRATION_ADDRESS',
      ),
    )
    .addOption(withEnv(new Option('--tls-cert <file>', 'node certificate (PEM)'), 'TERN_TLS_CERT'))
    .addOption(withEnv(new Option('--tls-key <file>', 'node private key (PEM)'), 'TERN_TLS_KEY'))
    .addOption(
      withEnv(new Option('--tls-ca <file>', 'CA bundle for client certificates (PEM)'), 'TERN_TLS_CA'),
    )
    .addOption(
      withEnv(
        new Option(
          '--tls-from-csr',
          "request this node's certificate from the operator through the Kubernetes CSR API (signer tern.dev/hypervisor-node) instead of --tls-cert/--tls-key; needs --kubeconfig",
        ),
        'TERN_TLS_FROM_CSR',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--node-certificate-lifetime-seconds <s>',
          'lifetime asked for with --tls-from-csr (the operator may shorten it); renewed after 2/3 of it',
        ),
        'TERN_NODE_CERTIFICATE_LIFETIME_SECONDS',
        '86400',
      ),
    )
    .addOption(
      new Option(
        '--operator-identity <id>',
        'allowed control identity: CN, or URI SAN (repeatable; env TERN_OPERATOR_IDENTITIES, comma-separated; default tern-operator)',
      )
        .argParser(collect)
        .default([]),
    )
    .addOption(
      withEnv(new Option('--state-dir <dir>', 'guest state directory'), 'TERN_STATE_DIR', '/var/lib/tern'),
    )
    .addOption(
      withEnv(
        new Option(
          '--guest-cgroup-root <dir>',
          "where each guest's QEMU gets a cgroup of its own, so guests outlive the daemon's container: a cgroup v2 directory, or on a cgroup v1 host a path under the hierarchies' mount dir such as /sys/fs/cgroup/tern-guests, made in every hierarchy (default: the daemon's cgroups)",
        ),
        'TERN_GUEST_CGROUP_ROOT',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--image-root <dir>',
          'directory of per-namespace images: a guest of namespace N uses <dir>/N/ (its writable disks only there)',
        ),
        'TERN_IMAGE_ROOT',
      ),
    )
    .addOption(
      new Option(
        '--shared-image-root <dir>',
        'directory of read-only images any namespace may use: kernels, initrds, read-only disks, qcow2 backing bases (repeatable; env TERN_SHARED_IMAGE_ROOTS, colon-separated)',
      )
        .argParser(collect)
        .default([]),
    )
    .addOption(
      withEnv(new Option('--qemu-binary <path>', 'QEMU binary'), 'TERN_QEMU_BINARY', 'qemu-system-x86_64'),
    )
    .addOption(
      withEnv(
        new Option(
          '--qemu-user <user>',
          "user QEMU drops to after start-up: a name or uid:gid (default: none, QEMU keeps the daemon's user)",
        ),
        'TERN_QEMU_USER',
      ),
    )
    .addOption(
      withEnv(new Option('--accelerator <accel>', 'auto|kvm|tcg'), 'TERN_ACCELERATOR', 'auto').choices([
        'auto',
        'kvm',
        'tcg',
      ]),
    )
    .addOption(
      withEnv(new Option('--network <mode>', 'guest NICs: auto|bridge|user'), 'TERN_NETWORK', 'auto').choices(
        ['auto', 'bridge', 'user'],
      ),
    )
    .addOption(withEnv(new Option('--bridge <name>', 'bridge the guest taps join'), 'TERN_BRIDGE', 'tern0'))
    .addOption(
      withEnv(
        new Option('--user-net-guest-port <port>', 'guest TCP port forwarded in user-mode networking'),
        'TERN_USER_NET_GUEST_PORT',
        '7000',
      ),
    )
    .addOption(
      withEnv(
        new Option('--stop-timeout-ms <ms>', 'default graceful stop timeout'),
        'TERN_STOP_TIMEOUT_MS',
        '30000',
      ),
    )
    .addOption(
      withEnv(
        new Option('--cpu-capacity <n>', "vCPUs offered to guests in all (default: the host's CPU count)"),
        'TERN_CPU_CAPACITY',
      ),
    )
    .addOption(
      withEnv(new Option('--reserved-cpus <n>', 'CPUs kept for the host'), 'TERN_RESERVED_CPUS', '0'),
    )
    .addOption(
      withEnv(
        new Option('--reserved-memory-mib <n>', 'memory kept for the host'),
        'TERN_RESERVED_MEMORY_MIB',
        '512',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--kubeconfig <path>',
          "kubeconfig for registration, or 'in-cluster'; omit to disable registration",
        ),
        'TERN_KUBECONFIG',
      ),
    )
    .addOption(
      withEnv(
        new Option('--lease-namespace <ns>', 'namespace of the heartbeat Lease'),
        'TERN_LEASE_NAMESPACE',
        'tern-system',
      ),
    )
    .addOption(
      withEnv(
        new Option('--lease-duration-seconds <s>', 'Lease duration'),
        'TERN_LEASE_DURATION_SECONDS',
        '40',
      ),
    )
    .addOption(
      withEnv(
        new Option('--heartbeat-interval-seconds <s>', 'Lease renewal interval'),
        'TERN_HEARTBEAT_INTERVAL_SECONDS',
        '10',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--fence-after-seconds <s>',
          "stop (SIGKILL) every guest when the Lease has not been renewed for this long, so that the operator may start them elsewhere; must exceed --lease-duration-seconds; 0: off (the operator then never starts this node's VMs elsewhere, whatever their nodeLossPolicy)",
        ),
        'TERN_FENCE_AFTER_SECONDS',
        String(DEFAULT_FENCE_AFTER_SECONDS),
      ),
    )
    .addOption(
      withEnv(
        new Option('--metrics-listen <host:port>', 'Prometheus /metrics address'),
        'TERN_METRICS_LISTEN',
        '127.0.0.1:9464',
      ),
    )
    .addOption(withEnv(new Option('--log-level <level>', LOG_LEVELS.join('|')), 'TERN_LOG_LEVEL', 'info'));
}

function tlsConfig(raw: RawOptions): DaemonTls {
  if (raw.tlsFromCsr !== true && raw.tlsFromCsr !== 'true') {
    const certFile = required(raw.tlsCert, '--tls-cert', 'TERN_TLS_CERT');
    const keyFile = required(raw.tlsKey, '--tls-key', 'TERN_TLS_KEY');
    return { certFile, keyFile, caFile: required(raw.tlsCa, '--tls-ca', 'TERN_TLS_CA') };
  }
  const caFile = required(raw.tlsCa, '--tls-ca', 'TERN_TLS_CA');
  if (raw.tlsCert || raw.tlsKey)
    throw new ConfigError(
      '--tls-from-csr: the node certificate comes from the CSR API; give no --tls-cert or --tls-key',
    );
  if (!raw.kubeconfig) throw new ConfigError('--tls-from-csr needs --kubeconfig (the CSR API)');
  const lifetimeSeconds = parseInteger(
    raw.nodeCertificateLifetimeSeconds,
    '--node-certificate-lifetime-seconds',
    POSITIVE,
  );
  // The CSR API refuses a shorter spec.expirationSeconds.
  if (lifetimeSeconds < 600) throw new ConfigError('--node-certificate-lifetime-seconds: at least 600');
  return { caFile, fromCsr: { lifetimeSeconds } };
}

/** Parses argv (without node and script) and env into a validated config; throws ConfigError with the reason. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const program = command(env);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.helpDisplayed')
      throw new HelpRequested(program.helpInformation());
    if (error instanceof CommanderError) throw new ConfigError(error.message.replace(/^error: /, ''));
    throw error;
  }
  const raw = program.opts<RawOptions>();

  const nodeName = raw.nodeName ?? hostname();
  if (!DNS_LABEL.test(nodeName))
    throw new ConfigError(`--node-name: ${JSON.stringify(nodeName)} is not a DNS-1123 label`);
  const listen = parseListenAddress(raw.listen, '--listen');
  const advertiseAddress = raw.advertiseAddress ?? raw.listen;
  const advertised = parseListenAddress(advertiseAddress, '--advertise-address');
  if (['0.0.0.0', '::'].includes(advertised.host))
    throw new ConfigError('--advertise-address is required when --listen is a wildcard address');
  const isWildcard = (host: string): boolean => ['0.0.0.0', '::'].includes(host);
  const migrationAddress =
    raw.migrationAddress ?? [listen.host, advertised.host].find((host) => isIP(host) && !isWildcard(host));
  if (migrationAddress === undefined || isIP(migrationAddress) === 0 || isWildcard(migrationAddress))
    throw new ConfigError(
      `--migration-address: ${JSON.stringify(migrationAddress ?? '')} must be this node's IP address (not a wildcard)`,
    );

  const sharedImageRoots =
    raw.sharedImageRoot.length > 0 ? raw.sharedImageRoot : listFromEnv(env.TERN_SHARED_IMAGE_ROOTS);
  const imageRoot = raw.imageRoot === '' ? undefined : raw.imageRoot;
  if (sharedImageRoots.length === 0 && imageRoot === undefined)
    throw new ConfigError(
      '--image-root or --shared-image-root (or TERN_IMAGE_ROOT, TERN_SHARED_IMAGE_ROOTS) is required',
    );
  for (const root of sharedImageRoots)
    if (!isAbsolute(root))
      throw new ConfigError(`--shared-image-root: ${JSON.stringify(root)} is not an absolute path`);
  if (imageRoot !== undefined && !isAbsolute(imageRoot))
    throw new ConfigError(`--image-root: ${JSON.stringify(imageRoot)} is not an absolute path`);
  if (!isAbsolute(raw.stateDir))
    throw new ConfigError(`--state-dir: ${JSON.stringify(raw.stateDir)} is not an absolute path`);
  if (raw.guestCgroupRoot !== undefined && !isAbsolute(raw.guestCgroupRoot))
    throw new ConfigError(
      `--guest-cgroup-root: ${JSON.stringify(raw.guestCgroupRoot)} is not an absolute path`,
    );

  const operatorIdentities =
    raw.operatorIdentity.length > 0
      ? raw.operatorIdentity
      : env.TERN_OPERATOR_IDENTITIES
        ? env.TERN_OPERATOR_IDENTITIES.split(',')
        : ['tern-operator'];

  const leaseDurationSeconds = parseInteger(raw.leaseDurationSeconds, '--lease-duration-seconds', POSITIVE);
  const heartbeatIntervalSeconds = parseInteger(
    raw.heartbeatIntervalSeconds,
    '--heartbeat-interval-seconds',
    POSITIVE,
  );
  if (heartbeatIntervalSeconds >= leaseDurationSeconds)
    throw new ConfigError('--heartbeat-interval-seconds must be shorter than --lease-duration-seconds');
  const fenceAfterSeconds = parseInteger(raw.fenceAfterSeconds, '--fence-after-seconds', NON_NEGATIVE);
  if (fenceAfterSeconds !== 0 && fenceAfterSeconds <= leaseDurationSeconds)
    throw new ConfigError(
      `--fence-after-seconds (${fenceAfterSeconds}) must exceed --lease-duration-seconds (${leaseDurationSeconds}), or be 0 (off)`,
    );
  if (!LOG_LEVELS.includes(raw.logLevel))
    throw new ConfigError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);

  return {
    nodeName,
    listen,
    advertiseAddress,
    migrationAddress,
    tls: tlsConfig(raw),
    operatorIdentities,
    stateDir: raw.stateDir,
    ...(raw.guestCgroupRoot !== undefined ? { guestCgroupRoot: raw.guestCgroupRoot } : {}),
    ...(imageRoot !== undefined ? { imageRoot } : {}),
    sharedImageRoots,
    qemuBinary: raw.qemuBinary,
    ...(raw.qemuUser !== undefined && raw.qemuUser !== '' ? { qemuUser: raw.qemuUser } : {}),
    accelerator: raw.accelerator as DaemonConfig['accelerator'],
    network: {
      mode: raw.network as DaemonConfig['network']['mode'],
      bridge: bridgeName(raw.bridge),
      userModeGuestPort: port(raw.userNetGuestPort, '--user-net-guest-port'),
    },
    stopTimeoutMs: parseInteger(raw.stopTimeoutMs, '--stop-timeout-ms', POSITIVE),
    ...(raw.cpuCapacity !== undefined
      ? { cpuCapacity: parseInteger(raw.cpuCapacity, '--cpu-capacity', POSITIVE) }
      : {}),
    reservedCpus: parseInteger(raw.reservedCpus, '--reserved-cpus', NON_NEGATIVE),
    reservedMemoryMiB: parseInteger(raw.reservedMemoryMib, '--reserved-memory-mib', NON_NEGATIVE),
    registration: raw.kubeconfig
      ? {
          kubeconfig: raw.kubeconfig,
          leaseNamespace: raw.leaseNamespace,
          leaseDurationSeconds,
          heartbeatIntervalSeconds,
          fenceAfterSeconds,
        }
      : undefined,
    metricsListen: parseListenAddress(raw.metricsListen, '--metrics-listen'),
    logLevel: raw.logLevel,
  };
}
