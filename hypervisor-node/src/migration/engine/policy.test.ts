import {
  channelCapabilities,
  channelParameters,
  channelSettings,
  DEFAULT_MIGRATION_POLICY,
  downtimeRamp,
  MigrationPolicyError,
  qemuMaxBandwidth,
  resolveMigrationPolicy,
  switchoverTimeoutMs,
  UNLIMITED_BANDWIDTH_BYTES_PER_SEC,
  validateChannelSettings,
  zeroPageDetection,
} from './policy.js';

function problemsOf(overrides: unknown): string[] {
  try {
    resolveMigrationPolicy(overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationPolicyError);
    return (err as MigrationPolicyError).problems.map((p) => `${p.field}: ${p.message}`);
  }
  throw new Error('the policy was accepted');
}

test('defaults: unlimited bandwidth, 50 → 1000 ms downtime, auto-converge on, post-copy off', () => {
  expect(resolveMigrationPolicy()).toEqual({
    bandwidthBytesPerSec: 0,
    downtimeMs: 50,
    maxDowntimeMs: 1000,
    downtimeSteps: 5,
    allowAutoConverge: true,
    cpuThrottleSteps: [30, 60, 80, 95, 99],
    allowPostCopy: false,
    completionTimeoutPerGiBSeconds: 150,
    stallTimeoutSeconds: 150,
    stallRounds: 3,
    multifdChannels: 0,
    multifdCompression: 'none',
  });
});

test('overrides replace defaults and the result does not share the defaults array', () => {
  const policy = resolveMigrationPolicy({ bandwidthBytesPerSec: 20 * 2 ** 20, allowPostCopy: true });
  expect(policy).toMatchObject({ bandwidthBytesPerSec: 20 * 2 ** 20, allowPostCopy: true, downtimeMs: 50 });
  policy.cpuThrottleSteps.push(100);
  expect(DEFAULT_MIGRATION_POLICY.cpuThrottleSteps).toEqual([30, 60, 80, 95, 99]);
});

test('unlimited bandwidth is sent to QEMU as 1 TiB/s, not left at QEMU 128 MiB/s default', () => {
  expect(qemuMaxBandwidth(resolveMigrationPolicy())).toBe(UNLIMITED_BANDWIDTH_BYTES_PER_SEC);
  expect(qemuMaxBandwidth(resolveMigrationPolicy({ bandwidthBytesPerSec: 1000 }))).toBe(1000);
});

test('names every bad field', () => {
  expect(
    problemsOf({
      bandwidthBytesPerSec: -1,
      downtimeMs: 0,
      maxDowntimeMs: 3_000_000,
      downtimeSteps: 1.5,
      allowAutoConverge: 'yes',
      completionTimeoutPerGiBSeconds: 0,
      stallTimeoutSeconds: '60',
      stallRounds: 0,
      multifdChannels: 256,
      multifdCompression: 'zlib',
    }),
  ).toEqual([
    'bandwidthBytesPerSec: must be an integer from 0 to 1099511627776 bytes/s (0 = unlimited), got -1',
    'downtimeMs: must be an integer from 1 to 2000000 ms, got 0',
    'maxDowntimeMs: must be an integer from 1 to 2000000 ms, got 3000000',
    'downtimeSteps: must be an integer from 1 to 100, got 1.5',
    'allowAutoConverge: must be true or false, got "yes"',
    'completionTimeoutPerGiBSeconds: must be an integer from 1 to 86400 s, got 0',
    'stallTimeoutSeconds: must be an integer from 1 to 86400 s, got "60"',
    'stallRounds: must be an integer from 1 to 100, got 0',
    'multifdChannels: must be an integer from 0 to 255, got 256',
    'multifdCompression: must be one of none, zstd, got "zlib"',
  ]);
});

test('throttle steps must be increasing percentages from 1 to 99', () => {
  expect(problemsOf({ cpuThrottleSteps: [] })).toEqual([
    'cpuThrottleSteps: must be a list of 1 to 20 percentages',
  ]);
  expect(problemsOf({ cpuThrottleSteps: [50, 100] })).toEqual([
    'cpuThrottleSteps: every step must be an integer percentage from 1 to 99, got [50,100]',
  ]);
  expect(problemsOf({ cpuThrottleSteps: [50, 40] })).toEqual([
    'cpuThrottleSteps: steps must increase, got [50,40]',
  ]);
});

test('relations: max downtime not below the start, no post-copy with multifd', () => {
  expect(problemsOf({ downtimeMs: 500, maxDowntimeMs: 400 })).toEqual([
    'maxDowntimeMs: must be at least downtimeMs (500 ms), got 400 ms',
  ]);
  expect(problemsOf({ allowPostCopy: true, multifdChannels: 4 })).toEqual([
    'multifdChannels: post-copy cannot be combined with multifd channels on QEMU 10.0; set one of them off',
  ]);
});

test('compression needs multifd channels', () => {
  expect(problemsOf({ multifdCompression: 'zstd' })).toEqual([
    'multifdCompression: compresses the multifd channels only: set multifdChannels above 0',
  ]);
  expect(resolveMigrationPolicy({ multifdChannels: 2, multifdCompression: 'zstd' })).toMatchObject({
    multifdChannels: 2,
    multifdCompression: 'zstd',
  });
});

test('a target checks the channel settings it is given on their own', () => {
  const ok = { postCopy: false, multifdChannels: 4, multifdCompression: 'zstd' as const };
  expect(validateChannelSettings(ok)).toEqual(ok);
  const refused = (settings: Partial<typeof ok>): string => {
    try {
      validateChannelSettings({ ...ok, ...settings } as typeof ok);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('accepted');
  };
  expect(refused({ multifdChannels: 256 })).toBe(
    'multifd channels must be an integer from 0 to 255, got 256',
  );
  expect(refused({ multifdChannels: 1.5 })).toMatch(/^multifd channels must be an integer/);
  expect(refused({ multifdCompression: 'lz4' as 'zstd' })).toBe(
    'multifd compression must be one of none, zstd, got "lz4"',
  );
  expect(refused({ multifdChannels: 0 })).toBe('multifd compression needs multifd channels');
  expect(refused({ postCopy: true })).toBe('post-copy cannot be combined with multifd channels on QEMU 10.0');
});

test('refuses unknown fields and non-objects', () => {
  expect(problemsOf({ downtimeMS: 100 })).toEqual(['policy: unknown field(s) downtimeMS']);
  expect(problemsOf(null)).toEqual(['policy: must be an object']);
});

test('downtime ramp: linear from the start to the maximum', () => {
  expect(
    downtimeRamp(resolveMigrationPolicy({ downtimeMs: 50, maxDowntimeMs: 1000, downtimeSteps: 4 })),
  ).toEqual([50, 288, 525, 763, 1000]);
  expect(downtimeRamp(resolveMigrationPolicy({ downtimeMs: 300, maxDowntimeMs: 300 }))).toEqual([300]);
});

test('channel settings: return path always, post-copy and multifd from the policy', () => {
  const settings = channelSettings(resolveMigrationPolicy({ multifdChannels: 4 }));
  expect(settings).toEqual({ postCopy: false, multifdChannels: 4, multifdCompression: 'none' });
  expect(channelCapabilities(settings)).toEqual({
    events: true,
    'return-path': true,
    'postcopy-ram': false,
    multifd: true,
  });
  expect(channelCapabilities(channelSettings(resolveMigrationPolicy({ allowPostCopy: true })))).toMatchObject(
    {
      'postcopy-ram': true,
      multifd: false,
    },
  );
});

test('multifd parameters (both ends) and zero-page detection (the source) follow the channel count', () => {
  const single = channelSettings(resolveMigrationPolicy());
  expect(channelParameters(single)).toEqual({});
  expect(zeroPageDetection(single)).toBe('legacy');
  const multifd = channelSettings(resolveMigrationPolicy({ multifdChannels: 2, multifdCompression: 'zstd' }));
  expect(channelParameters(multifd)).toEqual({ 'multifd-channels': 2, 'multifd-compression': 'zstd' });
  expect(zeroPageDetection(multifd)).toBe('multifd');
});

test('the switchover deadline is ten times the largest downtime target, at least 5 s', () => {
  expect(switchoverTimeoutMs({ maxDowntimeMs: 300 })).toBe(5_000);
  expect(switchoverTimeoutMs({ maxDowntimeMs: 1_000 })).toBe(10_000);
  expect(switchoverTimeoutMs(DEFAULT_MIGRATION_POLICY)).toBe(10 * DEFAULT_MIGRATION_POLICY.maxDowntimeMs);
});
