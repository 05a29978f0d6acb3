import { ConfigError, parseConfig } from './config.js';

const TLS = ['--tls-cert', '/c/node.crt', '--tls-key', '/c/node.key', '--tls-ca', '/c/ca.crt'];
const MINIMAL = ['--node-name', 'node-a', ...TLS, '--shared-image-root', '/images'];

function parseError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('applies defaults', () => {
    const config = parseConfig(MINIMAL, {});
    expect(config).toMatchObject({
      nodeName: 'node-a',
      listen: { host: '127.0.0.1', port: 7443 },
      advertiseAddress: '127.0.0.1:7443',
      tls: { certFile: '/c/node.crt', keyFile: '/c/node.key', caFile: '/c/ca.crt' },
      operatorIdentities: ['tern-operator'],
      stateDir: '/var/lib/tern',
      sharedImageRoots: ['/images'],
      stopTimeoutMs: 30000,
      accelerator: 'auto',
      metricsListen: { host: '127.0.0.1', port: 9464 },
      logLevel: 'info',
    });
    expect(config.registration).toBeUndefined();
  });

  it('lets incoming migrations listen on the --listen host unless told otherwise, and only on an IP of its own', () => {
    expect(parseConfig([...MINIMAL, '--listen', '10.0.0.2:7443'], {}).migrationAddress).toBe('10.0.0.2');
    expect(
      parseConfig([...MINIMAL, '--listen', '0.0.0.0:7443', '--advertise-address', '10.0.0.3:7443'], {})
        .migrationAddress,
    ).toBe('10.0.0.3');
    expect(parseConfig(MINIMAL, { TERN_MIGRATION_ADDRESS: '10.0.0.4' }).migrationAddress).toBe('10.0.0.4');
    expect(parseError([...MINIMAL, '--migration-address', 'nowhere'])).toMatch(/--migration-address/);
    expect(parseError([...MINIMAL, '--migration-address', '0.0.0.0'])).toMatch(/not a wildcard/);
    expect(
      parseError([...MINIMAL, '--listen', '0.0.0.0:7443', '--advertise-address', 'node-a.example:7443']),
    ).toMatch(/--migration-address/);
  });

  it('takes a declared vCPU capacity instead of the CPU count, and only a positive one', () => {
    expect(parseConfig(MINIMAL, {}).cpuCapacity).toBeUndefined();
    expect(parseConfig([...MINIMAL, '--cpu-capacity', '8'], {}).cpuCapacity).toBe(8);
    expect(parseConfig(MINIMAL, { TERN_CPU_CAPACITY: '4' }).cpuCapacity).toBe(4);
    expect(parseError([...MINIMAL, '--cpu-capacity', '0'])).toMatch(/--cpu-capacity/);
  });

  it('reads environment variables, and flags win over them', () => {
    const env = {
      TERN_NODE_NAME: 'from-env',
      TERN_TLS_CERT: '/e/c',
      TERN_TLS_KEY: '/e/k',
      TERN_TLS_CA: '/e/ca',
      TERN_SHARED_IMAGE_ROOTS: '/a:/b',
      TERN_OPERATOR_IDENTITIES: 'spiffe://tern.dev/operator,tern-operator',
      TERN_KUBECONFIG: '/k/config',
      TERN_LISTEN: '[::1]:9000',
    };
    const config = parseConfig(['--node-name', 'from-flag'], env);
    expect(config.nodeName).toBe('from-flag');
    expect(config.listen).toEqual({ host: '::1', port: 9000 });
    expect(config.sharedImageRoots).toEqual(['/a', '/b']);
    expect(config.operatorIdentities).toEqual(['spiffe://tern.dev/operator', 'tern-operator']);
    expect(config.registration).toEqual({
      kubeconfig: '/k/config',
      leaseNamespace: 'tern-system',
      leaseDurationSeconds: 40,
      heartbeatIntervalSeconds: 10,
      fenceAfterSeconds: 120,
    });
  });

  it('takes a guest cgroup root from the flag or the environment, only an absolute one, and none by default', () => {
    expect(parseConfig(MINIMAL, {}).guestCgroupRoot).toBeUndefined();
    expect(parseConfig([...MINIMAL, '--guest-cgroup-root', '/sys/fs/cgroup/tern'], {}).guestCgroupRoot).toBe(
      '/sys/fs/cgroup/tern',
    );
    expect(parseConfig(MINIMAL, { TERN_GUEST_CGROUP_ROOT: '/cg/env' }).guestCgroupRoot).toBe('/cg/env');
    expect(
      parseConfig([...MINIMAL, '--guest-cgroup-root', '/cg/flag'], { TERN_GUEST_CGROUP_ROOT: '/cg/env' })
        .guestCgroupRoot,
    ).toBe('/cg/flag');
    expect(parseError([...MINIMAL, '--guest-cgroup-root', 'tern-guests'])).toBe(
      '--guest-cgroup-root: "tern-guests" is not an absolute path',
    );
  });

  it('takes the QEMU user from the flag or the environment; none by default (QEMU keeps the daemon user)', () => {
    expect(parseConfig(MINIMAL, {}).qemuUser).toBeUndefined();
    expect(parseConfig(MINIMAL, { TERN_QEMU_USER: '' }).qemuUser).toBeUndefined();
    expect(parseConfig([...MINIMAL, '--qemu-user', 'tern-qemu'], {}).qemuUser).toBe('tern-qemu');
    expect(parseConfig(MINIMAL, { TERN_QEMU_USER: '60400:60400' }).qemuUser).toBe('60400:60400');
  });

  it('collects repeated flags', () => {
    const config = parseConfig(
      [
        ...MINIMAL,
        '--shared-image-root',
        '/more',
        '--operator-identity',
        'a',
        '--operator-identity',
        'spiffe://x/y',
      ],
      {},
    );
    expect(config.sharedImageRoots).toEqual(['/images', '/more']);
    expect(config.operatorIdentities).toEqual(['a', 'spiffe://x/y']);
  });

  it('takes its certificate from the CSR API with --tls-from-csr (or TERN_TLS_FROM_CSR=true), which needs --kubeconfig', () => {
    const csr = ['--node-name', 'node-a', '--tls-ca', '/c/ca.crt', '--shared-image-root', '/i'];
    expect(parseConfig([...csr, '--tls-from-csr', '--kubeconfig', 'in-cluster'], {}).tls).toEqual({
      caFile: '/c/ca.crt',
      fromCsr: { lifetimeSeconds: 86400 },
    });
    expect(
      parseConfig([...csr, '--kubeconfig', 'in-cluster'], {
        TERN_TLS_FROM_CSR: 'true',
        TERN_NODE_CERTIFICATE_LIFETIME_SECONDS: '3600',
      }).tls,
    ).toEqual({ caFile: '/c/ca.crt', fromCsr: { lifetimeSeconds: 3600 } });
    expect(() => parseConfig([...csr, '--tls-from-csr'], {})).toThrow('--tls-from-csr needs --kubeconfig');
    expect(() =>
      parseConfig([...csr, '--tls-from-csr', '--kubeconfig', 'k', '--tls-cert', '/c/n.crt'], {}),
    ).toThrow('give no --tls-cert or --tls-key');
    expect(() =>
      parseConfig(
        [...csr, '--tls-from-csr', '--kubeconfig', 'k', '--node-certificate-lifetime-seconds', '60'],
        {},
      ),
    ).toThrow('--node-certificate-lifetime-seconds: at least 600');
  });

  it.each([
    [['--node-name', 'node-a', '--shared-image-root', '/i'], '--tls-cert (or TERN_TLS_CERT) is required'],
    [
      ['--node-name', 'node-a', ...TLS],
      '--image-root or --shared-image-root (or TERN_IMAGE_ROOT, TERN_SHARED_IMAGE_ROOTS) is required',
    ],
    [
      ['--node-name', 'Node_A', ...TLS, '--shared-image-root', '/i'],
      '--node-name: "Node_A" is not a DNS-1123 label',
    ],
    [[...MINIMAL, '--listen', '7443'], '--listen: expected host:port, got "7443"'],
    [[...MINIMAL, '--listen', 'h:70000'], '--listen: expected host:port, got "h:70000"'],
    [
      [...MINIMAL, '--listen', '0.0.0.0:7443'],
      '--advertise-address is required when --listen is a wildcard address',
    ],
    [
      [...MINIMAL, '--shared-image-root', 'relative'],
      '--shared-image-root: "relative" is not an absolute path',
    ],
    [[...MINIMAL, '--state-dir', 'state'], '--state-dir: "state" is not an absolute path'],
    [[...MINIMAL, '--reserved-cpus', '-1'], '--reserved-cpus: expected a non-negative integer, got "-1"'],
    [[...MINIMAL, '--stop-timeout-ms', '0'], '--stop-timeout-ms: must be greater than 0'],
    [
      [...MINIMAL, '--lease-duration-seconds', '10', '--heartbeat-interval-seconds', '10'],
      '--heartbeat-interval-seconds must be shorter than --lease-duration-seconds',
    ],
    [
      [...MINIMAL, '--lease-duration-seconds', '40', '--fence-after-seconds', '40'],
      '--fence-after-seconds (40) must exceed --lease-duration-seconds (40), or be 0 (off)',
    ],
    [
      [...MINIMAL, '--log-level', 'loud'],
      '--log-level: expected one of fatal, error, warn, info, debug, trace',
    ],
    [
      [...MINIMAL, '--accelerator', 'hvf'],
      "option '--accelerator <accel>' argument 'hvf' is invalid. Allowed choices are auto, kvm, tcg.",
    ],
    [[...MINIMAL, '--bogus'], "unknown option '--bogus'"],
    [[...MINIMAL, 'extra'], 'too many arguments. Expected 0 arguments but got 1.'],
  ])('rejects %j', (argv, message) => {
    expect(parseError(argv)).toBe(message);
  });

  it('accepts a wildcard listen address with an explicit advertise address', () => {
    const config = parseConfig(
      [...MINIMAL, '--listen', '0.0.0.0:7443', '--advertise-address', '10.0.0.2:7443'],
      {},
    );
    expect(config.advertiseAddress).toBe('10.0.0.2:7443');
  });
});
