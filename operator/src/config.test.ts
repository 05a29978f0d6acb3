import { ConfigError, parseConfig } from './config.js';

const TLS = ['--tls-cert', '/pki/operator.crt', '--tls-key', '/pki/operator.key', '--tls-ca', '/pki/ca.crt'];

describe('parseConfig', () => {
  it('has defaults for everything but the certificates, with leader election on', () => {
    const config = parseConfig(TLS, {});
    expect(config).toMatchObject({
      kubeconfig: undefined,
      tls: { certFile: '/pki/operator.crt', keyFile: '/pki/operator.key', caFile: '/pki/ca.crt' },
      metricsListen: { host: '127.0.0.1', port: 8080 },
      nodeLeaseNamespace: 'tern-system',
      nodeLossMarginSeconds: 30,
      guestPollIntervalMs: 5000,
      workers: 4,
    });
    expect(config.leaderElection).toMatchObject({
      namespace: 'tern-system',
      name: 'tern-operator',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
  });

  it('signs node certificates only with --node-signer-ca-cert, which needs its key and the daemons ServiceAccount', () => {
    expect(parseConfig(TLS, {}).nodeSigner).toBeUndefined();
    const signer = ['--node-signer-ca-cert', '/ca/tls.crt', '--node-signer-ca-key', '/ca/tls.key'];
    expect(
      parseConfig(
        [...TLS, ...signer, '--node-signer-service-account', 'tern-system/tern-hypervisor-node'],
        {},
      ).nodeSigner,
    ).toEqual({
      caCertFile: '/ca/tls.crt',
      caKeyFile: '/ca/tls.key',
      daemonServiceAccount: { namespace: 'tern-system', name: 'tern-hypervisor-node' },
      maxLifetimeSeconds: 86400,
    });
    expect(() => parseConfig([...TLS, ...signer], {})).toThrow('--node-signer-service-account is required');
    expect(() => parseConfig([...TLS, ...signer, '--node-signer-service-account', 'sa'], {})).toThrow(
      '--node-signer-service-account: "sa" is not namespace/name',
    );
    expect(() => parseConfig([...TLS, '--node-signer-ca-key', '/ca/tls.key'], {})).toThrow(
      'need --node-signer-ca-cert',
    );
    expect(() =>
      parseConfig(
        [
          ...TLS,
          ...signer,
          '--node-signer-service-account',
          'a/b',
          '--node-certificate-max-lifetime-seconds',
          '60',
        ],
        {},
      ),
    ).toThrow('--node-certificate-max-lifetime-seconds: at least 600');
  });

  it('serves the console only with --console-listen, which needs its certificate, key and CA', () => {
    expect(parseConfig(TLS, {}).console).toBeUndefined();
    const flags = [
      '--console-listen',
      '0.0.0.0:9443',
      '--console-tls-cert',
      '/c/tls.crt',
      '--console-tls-key',
      '/c/tls.key',
    ];
    expect(() => parseConfig([...TLS, ...flags], {})).toThrow(/--console-tls-ca/);
    expect(
      parseConfig(
        [...TLS, ...flags, '--console-tls-ca', '/c/ca.crt', '--console-publish-namespace', 'tern-system'],
        {},
      ).console,
    ).toEqual({
      listen: { host: '0.0.0.0', port: 9443 },
      certFile: '/c/tls.crt',
      keyFile: '/c/tls.key',
      caFile: '/c/ca.crt',
      publishNamespace: 'tern-system',
      advertise: undefined,
    });
  });

  it('adds node maintenance with --guard-namespace, and its webhook with --eviction-webhook-listen', () => {
    expect(parseConfig(TLS, {}).nodeMaintenance).toBeUndefined();
    expect(() => parseConfig([...TLS, '--eviction-webhook-listen', '0.0.0.0:9444'], {})).toThrow(
      /needs --guard-namespace/,
    );
    expect(parseConfig([...TLS, '--guard-namespace', 'tern-system'], {}).nodeMaintenance).toEqual({
      namespace: 'tern-system',
      guardImage: 'registry.k8s.io/pause:3.10',
      webhook: undefined,
    });
    const webhook = ['--guard-namespace', 'tern-system', '--eviction-webhook-listen', '0.0.0.0:9444'];
    expect(() => parseConfig([...TLS, ...webhook], {})).toThrow(/--eviction-webhook-tls-cert/);
    const files = ['--eviction-webhook-tls-cert', '/w/tls.crt', '--eviction-webhook-tls-key', '/w/tls.key'];
    expect(
      parseConfig([...TLS, ...webhook, ...files, '--eviction-webhook-tls-ca', '/w/ca.crt'], {
        TERN_EVICTION_WEBHOOK_CONFIGURATION: 'tern-eviction',
      }).nodeMaintenance?.webhook,
    ).toEqual({
      listen: { host: '0.0.0.0', port: 9444 },
      certFile: '/w/tls.crt',
      keyFile: '/w/tls.key',
      caFile: '/w/ca.crt',
      configuration: 'tern-eviction',
      namespace: 'tern-system',
    });
  });

  it('takes flags over environment variables', () => {
    const config = parseConfig([...TLS, '--workers', '2', '--metrics-listen', '[::1]:0'], {
      TERN_WORKERS: '8',
      TERN_GUEST_POLL_INTERVAL_MS: '750',
    });
    expect(config).toMatchObject({
      workers: 2,
      guestPollIntervalMs: 750,
      metricsListen: { host: '::1', port: 0 },
    });
  });

  it('takes the migration limits (default 5 / 2 / 2) and the progress write interval', () => {
    expect(parseConfig(TLS, {})).toMatchObject({
      migrationLimits: { cluster: 5, outboundPerNode: 2, inboundPerNode: 2 },
      migrationProgressIntervalMs: 500,
    });
    const config = parseConfig([...TLS, '--max-migrations', '3', '--max-inbound-migrations-per-node', '1'], {
      TERN_MAX_OUTBOUND_MIGRATIONS_PER_NODE: '1',
      TERN_MIGRATION_PROGRESS_INTERVAL_MS: '250',
    });
    expect(config).toMatchObject({
      migrationLimits: { cluster: 3, outboundPerNode: 1, inboundPerNode: 1 },
      migrationProgressIntervalMs: 250,
    });
  });

  it('keeps 5 finished Migrations per VM unless told otherwise', () => {
    expect(parseConfig(TLS, {}).migrationHistoryLimit).toBe(5);
    expect(parseConfig([...TLS, '--migration-history-limit', '2'], {}).migrationHistoryLimit).toBe(2);
    expect(() => parseConfig([...TLS, '--migration-history-limit', '0'], {})).toThrow(
      new ConfigError('--migration-history-limit: expected a positive integer, got "0"'),
    );
  });

  it('turns leader election off only when asked', () => {
    expect(parseConfig([...TLS, '--no-leader-election'], {}).leaderElection).toBeUndefined();
  });

  it.each([
    [['--tls-cert', '/c', '--tls-key', '/k'], '--tls-ca is required'],
    [[...TLS, '--workers', '0'], '--workers: expected a positive integer, got "0"'],
    [[...TLS, '--metrics-listen', '8080'], '--metrics-listen: expected host:port, got "8080"'],
    [[...TLS, '--leader-lease-duration-seconds', '2'], '--leader-lease-duration-seconds: at least 3'],
    [[...TLS, '--max-migrations', '0'], '--max-migrations: expected a positive integer, got "0"'],
    [[...TLS, '--log-level', 'loud'], '--log-level: one of fatal, error, warn, info, debug, trace'],
  ])('rejects %j', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(new ConfigError(message));
  });
});
