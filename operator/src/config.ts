// The operator's command line; most flags also have an environment variable, which the flag overrides.
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
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

export type ListenAddress = HostPort;
import type { ConsoleConfig } from './console/server.js';
import type { EvictionWebhookConfig } from './maintenance/webhook.js';
export type { ConsoleConfig };

/** Kubernetes node maintenance (docs/node-maintenance.md): guard pods, the cordon mirror, the eviction webhook. */
export interface NodeMaintenanceConfig {
  /** Where the guard pods live (the operator's namespace in the chart). */
  namespace: string;
  guardImage: string;
  /** The eviction webhook; undefined: this replica serves none. */
  webhook?: EvictionWebhookConfig;
}

export interface OperatorConfig {
  /** Path of a kubeconfig; undefined for the default chain (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string;
  /** The operator's client certificate for the daemons' control API, and the CA that signed the daemons'. */
  tls: { certFile: string; keyFile: string; caFile: string };
  metricsListen: ListenAddress;
  leaderElection?: {
    namespace: string;
    name: string;
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  /** Where the daemons renew their heartbeat Leases. */
  nodeLeaseNamespace: string;
  /**
   * Added to a node's fence time: a node whose Lease the operator has not seen renewed for fence time + margin is
   * lost (Fenced=True), and its VMs with nodeLossPolicy Restart start elsewhere.
   */
  nodeLossMarginSeconds: number;
  guestPollIntervalMs: number;
  guestStopTimeoutMs: number;
  daemonCallTimeoutMs: number;
  workers: number;
  logLevel: string;
  /** Concurrent migrations: cluster-wide, leaving one node, entering one node. */
  migrationLimits: { cluster: number; outboundPerNode: number; inboundPerNode: number };
  /** Least interval between two progress writes to a Migration's status. */
  migrationProgressIntervalMs: number;
  /** Finished Migrations kept per VM; older finished ones are deleted. */
  migrationHistoryLimit: number;
  /** The users' console endpoint (docs/console.md); undefined: none. */
  console?: ConsoleConfig;
  /** undefined: VMs have no guard pods and `kubectl drain` does not know them. */
  nodeMaintenance?: NodeMaintenanceConfig;
  /** The signer of the daemons' certificates (CSR signerName tern.dev/hypervisor-node); undefined: none. */
  nodeSigner?: NodeSignerConfig;
}

/** docs/install.md "Node identities". */
export interface NodeSignerConfig {
  caCertFile: string;
  caKeyFile: string;
  /** The daemons' ServiceAccount: only its pod-bound tokens get node certificates. */
  daemonServiceAccount: { namespace: string; name: string };
  maxLifetimeSeconds: number;
}

/** Every number the operator takes is a positive integer in canonical form ("010" is refused). */
const POSITIVE: IntegerRule = { min: 1, leadingZeros: false };

interface RawOptions {
  kubeconfig?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  metricsListen: string;
  leaderElection: boolean;
  leaderElectionNamespace: string;
  leaderElectionName: string;
  leaderElectionIdentity: string;
  leaderLeaseDurationSeconds: string;
  nodeLeaseNamespace: string;
  nodeLossMarginSeconds: string;
  guestPollIntervalMs: string;
  guestStopTimeoutMs: string;
  daemonCallTimeoutMs: string;
  workers: string;
  logLevel: string;
  maxMigrations: string;
  maxOutboundMigrationsPerNode: string;
  maxInboundMigrationsPerNode: string;
  migrationProgressIntervalMs: string;
  migrationHistoryLimit: string;
  consoleListen?: string;
  consoleTlsCert?: string;
  consoleTlsKey?: string;
  consoleTlsCa?: string;
  consolePublishNamespace?: string;
  consoleAdvertise?: string;
  guardNamespace?: string;
  guardImage: string;
  evictionWebhookListen?: string;
  evictionWebhookTlsCert?: string;
  evictionWebhookTlsKey?: string;
  evictionWebhookTlsCa?: string;
  evictionWebhookConfiguration?: string;
  nodeSignerCaCert?: string;
  nodeSignerCaKey?: string;
  nodeSignerServiceAccount?: string;
  nodeCertificateMaxLifetimeSeconds: string;
}

/** The guard pods' image: it only has to start and sleep. */
export const DEFAULT_GUARD_IMAGE = 'registry.k8s.io/pause:3.10';

function command(env: NodeJS.ProcessEnv): Command {
  const withEnv = envOptions(env);
  return new Command('tern-operator')
    .description('Tern operator: places VirtualMachines on hypervisor nodes and drives their daemons')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined })
    .allowExcessArguments(false)
    .addOption(
      new Option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)'),
    )
    .addOption(withEnv(new Option('--tls-cert <file>', 'operator client certificate (PEM)'), 'TERN_TLS_CERT'))
    .addOption(withEnv(new Option('--tls-key <file>', 'operator client key (PEM)'), 'TERN_TLS_KEY'))
    .addOption(withEnv(new Option('--tls-ca <file>', "CA of the daemons' certificates (PEM)"), 'TERN_TLS_CA'))
    .addOption(
      withEnv(
        new Option('--metrics-listen <host:port>', '/metrics, /healthz, /readyz'),
        'TERN_METRICS_LISTEN',
        '127.0.0.1:8080',
      ),
    )
    .addOption(new Option('--no-leader-election', 'act without a leader Lease (single replica only)'))
    .addOption(
      withEnv(
        new Option('--leader-election-namespace <ns>', 'namespace of the leader Lease'),
        'TERN_LEADER_ELECTION_NAMESPACE',
        'tern-system',
      ),
    )
    .addOption(
      withEnv(
        new Option('--leader-election-name <name>', 'name of the leader Lease'),
        'TERN_LEADER_ELECTION_NAME',
        'tern-operator',
      ),
    )
    .addOption(
      withEnv(
        new Option('--leader-election-identity <id>', 'this replica in the Lease'),
        'POD_NAME',
        `${hostname()}_${process.pid}`,
      ),
    )
    .addOption(
      withEnv(
        new Option('--leader-lease-duration-seconds <s>', 'leader Lease duration'),
        'TERN_LEADER_LEASE_DURATION_SECONDS',
        '15',
      ),
    )
    .addOption(
      withEnv(
        new Option('--node-lease-namespace <ns>', "namespace of the daemons' heartbeat Leases"),
        'TERN_NODE_LEASE_NAMESPACE',
        'tern-system',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--node-loss-margin-seconds <s>',
          "added to a node's fence time before its VMs may start elsewhere (covers clock rate differences, the watchdog's tick and QEMU's exit)",
        ),
        'TERN_NODE_LOSS_MARGIN_SECONDS',
        '30',
      ),
    )
    .addOption(
      withEnv(
        new Option('--guest-poll-interval-ms <ms>', 'GetGuest interval of a running guest'),
        'TERN_GUEST_POLL_INTERVAL_MS',
        '5000',
      ),
    )
    .addOption(
      withEnv(
        new Option('--guest-stop-timeout-ms <ms>', 'graceful stop before QEMU is killed'),
        'TERN_GUEST_STOP_TIMEOUT_MS',
        '30000',
      ),
    )
    .addOption(
      withEnv(
        new Option('--daemon-call-timeout-ms <ms>', 'deadline of a control call'),
        'TERN_DAEMON_CALL_TIMEOUT_MS',
        '10000',
      ),
    )
    .addOption(
      withEnv(new Option('--workers <n>', 'concurrent VirtualMachine reconciles'), 'TERN_WORKERS', '4'),
    )
    .addOption(
      withEnv(
        new Option('--max-migrations <n>', 'concurrent migrations cluster-wide'),
        'TERN_MAX_MIGRATIONS',
        '5',
      ),
    )
    .addOption(
      withEnv(
        new Option('--max-outbound-migrations-per-node <n>', 'concurrent migrations leaving one node'),
        'TERN_MAX_OUTBOUND_MIGRATIONS_PER_NODE',
        '2',
      ),
    )
    .addOption(
      withEnv(
        new Option('--max-inbound-migrations-per-node <n>', 'concurrent migrations entering one node'),
        'TERN_MAX_INBOUND_MIGRATIONS_PER_NODE',
        '2',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--migration-progress-interval-ms <ms>',
          "least interval between progress writes to a Migration's status",
        ),
        'TERN_MIGRATION_PROGRESS_INTERVAL_MS',
        '500',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--migration-history-limit <n>',
          'finished Migrations kept per VM (older ones are deleted; those a GitOps tool tracks are kept)',
        ),
        'TERN_MIGRATION_HISTORY_LIMIT',
        '5',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--console-listen <host:port>',
          "users' console endpoint (gRPC over TLS); none without it",
        ),
        'TERN_CONSOLE_LISTEN',
      ),
    )
    .addOption(
      withEnv(
        new Option('--console-tls-cert <file>', 'console serving certificate (PEM)'),
        'TERN_CONSOLE_TLS_CERT',
      ),
    )
    .addOption(
      withEnv(new Option('--console-tls-key <file>', 'console serving key (PEM)'), 'TERN_CONSOLE_TLS_KEY'),
    )
    .addOption(
      withEnv(
        new Option(
          '--console-tls-ca <file>',
          "CA of the console's serving certificate, published for the CLI",
        ),
        'TERN_CONSOLE_TLS_CA',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--console-publish-namespace <ns>',
          'write ConfigMap tern-console (address, ca.crt) in this namespace for `kubectl tern console`',
        ),
        'TERN_CONSOLE_PUBLISH_NAMESPACE',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--console-advertise <host:port>',
          'the console address published (default: the listen address)',
        ),
        'TERN_CONSOLE_ADVERTISE',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--guard-namespace <ns>',
          'node maintenance: a guard pod per running VM in this namespace, on its node, for `kubectl drain`; ' +
            'Node and HypervisorNode cordons mirrored (none without it)',
        ),
        'TERN_GUARD_NAMESPACE',
      ),
    )
    .addOption(
      withEnv(
        new Option('--guard-image <image>', "the guard pods' image"),
        'TERN_GUARD_IMAGE',
        DEFAULT_GUARD_IMAGE,
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--eviction-webhook-listen <host:port>',
          'the eviction webhook (HTTPS) for guard pods; needs --guard-namespace',
        ),
        'TERN_EVICTION_WEBHOOK_LISTEN',
      ),
    )
    .addOption(
      withEnv(
        new Option('--eviction-webhook-tls-cert <file>', 'eviction webhook serving certificate (PEM)'),
        'TERN_EVICTION_WEBHOOK_TLS_CERT',
      ),
    )
    .addOption(
      withEnv(
        new Option('--eviction-webhook-tls-key <file>', 'eviction webhook serving key (PEM)'),
        'TERN_EVICTION_WEBHOOK_TLS_KEY',
      ),
    )
    .addOption(
      withEnv(
        new Option('--eviction-webhook-tls-ca <file>', "CA of the eviction webhook's serving certificate"),
        'TERN_EVICTION_WEBHOOK_TLS_CA',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--eviction-webhook-configuration <name>',
          'ValidatingWebhookConfiguration whose caBundle is set to --eviction-webhook-tls-ca at start-up',
        ),
        'TERN_EVICTION_WEBHOOK_CONFIGURATION',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--node-signer-ca-cert <file>',
          "sign the daemons' certificate requests (signer tern.dev/hypervisor-node) with this CA (PEM); none without it",
        ),
        'TERN_NODE_SIGNER_CA_CERT',
      ),
    )
    .addOption(
      withEnv(
        new Option('--node-signer-ca-key <file>', "that CA's private key (PEM)"),
        'TERN_NODE_SIGNER_CA_KEY',
      ),
    )
    .addOption(
      withEnv(
        new Option(
          '--node-signer-service-account <namespace/name>',
          "the daemons' ServiceAccount: only requests made with its pod-bound tokens are approved",
        ),
        'TERN_NODE_SIGNER_SERVICE_ACCOUNT',
      ),
    )
    .addOption(
      withEnv(
        new Option('--node-certificate-max-lifetime-seconds <s>', 'longest lifetime of a node certificate'),
        'TERN_NODE_CERTIFICATE_MAX_LIFETIME_SECONDS',
        '86400',
      ),
    )
    .addOption(withEnv(new Option('--log-level <level>', LOG_LEVELS.join('|')), 'TERN_LOG_LEVEL', 'info'));
}

function nodeSignerConfig(raw: RawOptions): NodeSignerConfig | undefined {
  if (!raw.nodeSignerCaCert) {
    if (raw.nodeSignerCaKey || raw.nodeSignerServiceAccount)
      throw new ConfigError(
        '--node-signer-ca-key and --node-signer-service-account need --node-signer-ca-cert',
      );
    return undefined;
  }
  const account = required(raw.nodeSignerServiceAccount, '--node-signer-service-account');
  const [namespace, name, ...rest] = account.split('/');
  if (!namespace || !name || rest.length > 0)
    throw new ConfigError(`--node-signer-service-account: ${JSON.stringify(account)} is not namespace/name`);
  const maxLifetimeSeconds = parseInteger(
    raw.nodeCertificateMaxLifetimeSeconds,
    '--node-certificate-max-lifetime-seconds',
    POSITIVE,
  );
  // The CSR API's own floor for spec.expirationSeconds.
  if (maxLifetimeSeconds < 600)
    throw new ConfigError('--node-certificate-max-lifetime-seconds: at least 600');
  return {
    caCertFile: raw.nodeSignerCaCert,
    caKeyFile: required(raw.nodeSignerCaKey, '--node-signer-ca-key'),
    daemonServiceAccount: { namespace, name },
    maxLifetimeSeconds,
  };
}

function consoleConfig(raw: RawOptions): ConsoleConfig | undefined {
  if (!raw.consoleListen) return undefined;
  return {
    listen: parseListenAddress(raw.consoleListen, '--console-listen'),
    certFile: required(raw.consoleTlsCert, '--console-tls-cert'),
    keyFile: required(raw.consoleTlsKey, '--console-tls-key'),
    caFile: required(raw.consoleTlsCa, '--console-tls-ca'),
    publishNamespace: raw.consolePublishNamespace || undefined,
    advertise: raw.consoleAdvertise || undefined,
  };
}

function nodeMaintenanceConfig(raw: RawOptions): NodeMaintenanceConfig | undefined {
  if (!raw.guardNamespace) {
    if (raw.evictionWebhookListen) throw new ConfigError('--eviction-webhook-listen needs --guard-namespace');
    return undefined;
  }
  const webhook = raw.evictionWebhookListen
    ? {
        listen: parseListenAddress(raw.evictionWebhookListen, '--eviction-webhook-listen'),
        certFile: required(raw.evictionWebhookTlsCert, '--eviction-webhook-tls-cert'),
        keyFile: required(raw.evictionWebhookTlsKey, '--eviction-webhook-tls-key'),
        caFile: required(raw.evictionWebhookTlsCa, '--eviction-webhook-tls-ca'),
        configuration: raw.evictionWebhookConfiguration || undefined,
        namespace: raw.guardNamespace,
      }
    : undefined;
  return { namespace: raw.guardNamespace, guardImage: raw.guardImage, webhook };
}

/** Parses argv (without node and script). Throws ConfigError on a bad value, CommanderError for --help. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const raw = command(env).parse(argv, { from: 'user' }).opts<RawOptions>();
  if (!LOG_LEVELS.includes(raw.logLevel))
    throw new ConfigError(`--log-level: one of ${LOG_LEVELS.join(', ')}`);
  // client-go's ratios: renew deadline 2/3 and retry period 2/15 of the lease duration.
  const leaseSeconds = parseInteger(
    raw.leaderLeaseDurationSeconds,
    '--leader-lease-duration-seconds',
    POSITIVE,
  );
  if (leaseSeconds < 3) throw new ConfigError('--leader-lease-duration-seconds: at least 3');
  return {
    kubeconfig: raw.kubeconfig || undefined,
    tls: {
      certFile: required(raw.tlsCert, '--tls-cert'),
      keyFile: required(raw.tlsKey, '--tls-key'),
      caFile: required(raw.tlsCa, '--tls-ca'),
    },
    metricsListen: parseListenAddress(raw.metricsListen, '--metrics-listen'),
    leaderElection: raw.leaderElection
      ? {
          namespace: raw.leaderElectionNamespace,
          name: raw.leaderElectionName,
          identity: raw.leaderElectionIdentity,
          leaseDurationMs: leaseSeconds * 1000,
          renewDeadlineMs: Math.round((leaseSeconds * 2000) / 3),
          retryPeriodMs: Math.round((leaseSeconds * 2000) / 15),
        }
      : undefined,
    nodeLeaseNamespace: raw.nodeLeaseNamespace,
    nodeSigner: nodeSignerConfig(raw),
    nodeLossMarginSeconds: parseInteger(raw.nodeLossMarginSeconds, '--node-loss-margin-seconds', POSITIVE),
    guestPollIntervalMs: parseInteger(raw.guestPollIntervalMs, '--guest-poll-interval-ms', POSITIVE),
    guestStopTimeoutMs: parseInteger(raw.guestStopTimeoutMs, '--guest-stop-timeout-ms', POSITIVE),
    daemonCallTimeoutMs: parseInteger(raw.daemonCallTimeoutMs, '--daemon-call-timeout-ms', POSITIVE),
    workers: parseInteger(raw.workers, '--workers', POSITIVE),
    logLevel: raw.logLevel,
    migrationLimits: {
      cluster: parseInteger(raw.maxMigrations, '--max-migrations', POSITIVE),
      outboundPerNode: parseInteger(
        raw.maxOutboundMigrationsPerNode,
        '--max-outbound-migrations-per-node',
        POSITIVE,
      ),
      inboundPerNode: parseInteger(
        raw.maxInboundMigrationsPerNode,
        '--max-inbound-migrations-per-node',
        POSITIVE,
      ),
    },
    migrationProgressIntervalMs: parseInteger(
      raw.migrationProgressIntervalMs,
      '--migration-progress-interval-ms',
      POSITIVE,
    ),
    migrationHistoryLimit: parseInteger(raw.migrationHistoryLimit, '--migration-history-limit', POSITIVE),
    console: consoleConfig(raw),
    nodeMaintenance: nodeMaintenanceConfig(raw),
  };
}

export function usage(): string {
  return command({}).helpInformation();
}
