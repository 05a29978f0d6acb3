import type {
  Migration,
  MigrationCeilings,
  MigrationPolicy,
  MigrationSettings,
} from '../../../crds/index.js';
import {
  DEFAULT_MIGRATION_SETTINGS,
  bandwidthBytesPerSecond,
  matchesLabelSelector,
  policyViolationMessage,
  resolveSettings,
  toWirePolicy,
} from './policy.js';

function policy(
  name: string,
  settings: MigrationSettings,
  options: Partial<Omit<MigrationPolicy['spec'], 'settings'>> = {},
): MigrationPolicy {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name },
    spec: { settings, ...options },
  };
}

const vm = { metadata: { name: 'vm1', labels: { tier: 'db', env: 'prod' } } };
const migration = (overrides?: MigrationSettings): Pick<Migration, 'spec'> => ({
  spec: { vmName: 'vm1', overrides },
});

describe('resolveSettings', () => {
  it('falls back to the operator defaults when nothing matches', () => {
    const { settings, sources } = resolveSettings(
      migration(),
      vm,
      [policy('other', { maxDowntimeMs: 5 }, { vmSelector: { matchLabels: { tier: 'web' } } })],
      {},
    );
    expect(settings).toEqual(DEFAULT_MIGRATION_SETTINGS);
    expect(new Set(Object.values(sources))).toEqual(new Set(['default']));
  });

  it('takes each field from the override, else the strongest policy that sets it, else the default', () => {
    const policies = [
      policy('low', { bandwidth: '10Mi', stallTimeoutSeconds: 30, allowPostCopy: true }, { priority: -5 }),
      policy('high', { bandwidth: '1Gi', downtimeTargetMs: 100 }, { priority: 10 }),
      policy('mid', { stallTimeoutSeconds: 45, downtimeTargetMs: 80 }),
    ];
    const { settings, sources } = resolveSettings(migration({ bandwidth: '2Mi' }), vm, policies, {});
    expect(settings).toMatchObject({
      bandwidth: '2Mi',
      downtimeTargetMs: 100,
      stallTimeoutSeconds: 45,
      allowPostCopy: true,
      maxDowntimeMs: DEFAULT_MIGRATION_SETTINGS.maxDowntimeMs,
    });
    expect(sources).toMatchObject({
      bandwidth: 'override',
      downtimeTargetMs: 'policy/high',
      stallTimeoutSeconds: 'policy/mid',
      allowPostCopy: 'policy/low',
      maxDowntimeMs: 'default',
    });
  });

  it('gives the default multifd channels up when post-copy is allowed (QEMU cannot combine them)', () => {
    expect(DEFAULT_MIGRATION_SETTINGS.multifdChannels).toBeGreaterThan(0);
    const fromPolicy = resolveSettings(migration(), vm, [policy('pc', { allowPostCopy: true })], {});
    expect(fromPolicy.settings).toMatchObject({ allowPostCopy: true, multifdChannels: 0 });
    expect(fromPolicy.sources.multifdChannels).toBe('default (post-copy allowed)');
    const fromOverride = resolveSettings(migration({ allowPostCopy: true }), vm, [], {});
    expect(toWirePolicy(fromOverride.settings)).toMatchObject({ allowPostCopy: true, multifdChannels: 0 });
    // Channels someone set stay: the daemon refuses the combination with its own message.
    const both = [policy('pc', { allowPostCopy: true }), policy('mfd', { multifdChannels: 4 })];
    expect(resolveSettings(migration(), vm, both, {}).settings.multifdChannels).toBe(4);
  });

  it('orders equal priorities by name, and an explicit false is a setting', () => {
    const policies = [
      policy('b', { allowAutoConverge: true, multifdChannels: 4 }),
      policy('a', { allowAutoConverge: false }),
    ];
    const { settings, sources } = resolveSettings(migration(), vm, policies, {});
    expect(settings.allowAutoConverge).toBe(false);
    expect(sources.allowAutoConverge).toBe('policy/a');
    expect(settings.multifdChannels).toBe(4);
    expect(resolveSettings(migration({ allowAutoConverge: true }), vm, policies, {}).settings).toMatchObject({
      allowAutoConverge: true,
    });
  });

  it('selects policies by VM labels and namespace labels together', () => {
    const policies = [
      policy(
        'prod-ns',
        { stallTimeoutSeconds: 11 },
        { namespaceSelector: { matchLabels: { stage: 'prod' } } },
      ),
      policy(
        'db',
        { completionTimeoutPerGiBSeconds: 22 },
        { vmSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['db', 'cache'] }] } },
      ),
    ];
    expect(resolveSettings(migration(), vm, policies, { stage: 'prod' }).settings).toMatchObject({
      stallTimeoutSeconds: 11,
      completionTimeoutPerGiBSeconds: 22,
    });
    expect(resolveSettings(migration(), vm, policies, { stage: 'dev' }).settings).toMatchObject({
      stallTimeoutSeconds: DEFAULT_MIGRATION_SETTINGS.stallTimeoutSeconds,
      completionTimeoutPerGiBSeconds: 22,
    });
  });

  it('lifts maxDowntimeMs to a downtime target from another level above it', () => {
    const { settings } = resolveSettings(
      migration({ downtimeTargetMs: 2_000 }),
      vm,
      [policy('p', { maxDowntimeMs: 500 })],
      {},
    );
    expect(settings).toMatchObject({ downtimeTargetMs: 2_000, maxDowntimeMs: 2_000 });
  });
});

describe('resolveSettings with ceilings', () => {
  const capped = (
    name: string,
    ceilings: MigrationCeilings,
    settings: MigrationSettings = {},
    priority = 0,
  ) => policy(name, settings, { ceilings, priority });

  it('without ceilings resolves as before and finds no violation', () => {
    const policies = [policy('p', { bandwidth: '1Gi', allowPostCopy: true })];
    const resolution = resolveSettings(migration({ multifdChannels: 16 }), vm, policies, {});
    expect(resolution.violations).toEqual([]);
    expect(resolution.ceilings).toEqual({});
    expect(resolution.settings).toEqual({
      ...DEFAULT_MIGRATION_SETTINGS,
      bandwidth: '1Gi',
      allowPostCopy: true,
      multifdChannels: 16,
    });
  });

  it('refuses an override above a ceiling, naming the field, the value, the ceiling and the policy', () => {
    const policies = [capped('tenant-limits', { maxBandwidth: '100Mi', maxMultifdChannels: 2 })];
    const { violations } = resolveSettings(
      migration({ bandwidth: '1Gi', multifdChannels: 2 }),
      vm,
      policies,
      {},
    );
    expect(violations).toEqual([
      expect.objectContaining({
        field: 'bandwidth',
        value: '1Gi',
        ceiling: 'maxBandwidth',
        limit: '100Mi',
        policy: 'tenant-limits',
      }),
    ]);
    expect(policyViolationMessage(violations)).toBe(
      'refused by MigrationPolicy ceilings: spec.overrides.bandwidth "1Gi" exceeds ceilings.maxBandwidth ' +
        '"100Mi" of MigrationPolicy tenant-limits',
    );
  });

  it.each<[string, MigrationSettings, MigrationCeilings, string]>([
    [
      'no bandwidth cap',
      { bandwidth: 'unlimited' },
      { maxBandwidth: 104857600 },
      'spec.overrides.bandwidth "unlimited" (no cap) exceeds ceilings.maxBandwidth 104857600 of MigrationPolicy p',
    ],
    [
      'a zero bandwidth (no cap)',
      { bandwidth: 0 },
      { maxBandwidth: '1Ti' },
      'spec.overrides.bandwidth 0 (no cap) exceeds ceilings.maxBandwidth "1Ti" of MigrationPolicy p',
    ],
    [
      'post-copy',
      { allowPostCopy: true },
      { allowPostCopy: false },
      'spec.overrides.allowPostCopy true is not allowed: MigrationPolicy p sets ceilings.allowPostCopy false',
    ],
    [
      'a downtime target',
      { downtimeTargetMs: 300 },
      { maxDowntimeMs: 200 },
      'spec.overrides.downtimeTargetMs 300 exceeds ceilings.maxDowntimeMs 200 of MigrationPolicy p',
    ],
    [
      'a max downtime',
      { maxDowntimeMs: 201 },
      { maxDowntimeMs: 200 },
      'spec.overrides.maxDowntimeMs 201 exceeds ceilings.maxDowntimeMs 200 of MigrationPolicy p',
    ],
    [
      'a completion timeout',
      { completionTimeoutPerGiBSeconds: 600 },
      { maxCompletionTimeoutPerGiBSeconds: 300 },
      'spec.overrides.completionTimeoutPerGiBSeconds 600 exceeds ceilings.maxCompletionTimeoutPerGiBSeconds 300 of MigrationPolicy p',
    ],
    [
      'a stall timeout',
      { stallTimeoutSeconds: 61 },
      { maxStallTimeoutSeconds: 60 },
      'spec.overrides.stallTimeoutSeconds 61 exceeds ceilings.maxStallTimeoutSeconds 60 of MigrationPolicy p',
    ],
  ])('refuses %s above its ceiling', (_name, overrides, ceilings, message) => {
    const { violations, settings } = resolveSettings(migration(overrides), vm, [capped('p', ceilings)], {});
    expect(violations.map((v) => v.message)).toEqual([message]);
    // Even refused, the settings returned stay within the ceilings.
    expect(settings.maxDowntimeMs).toBeLessThanOrEqual(ceilings.maxDowntimeMs ?? Infinity);
    expect(settings.allowPostCopy).toBe(ceilings.allowPostCopy === false ? false : settings.allowPostCopy);
  });

  it('grants overrides at or below the ceilings', () => {
    const ceilings: MigrationCeilings = {
      maxBandwidth: '1Gi',
      maxMultifdChannels: 4,
      allowPostCopy: false,
      maxDowntimeMs: 500,
      maxCompletionTimeoutPerGiBSeconds: 100,
      maxStallTimeoutSeconds: 60,
    };
    const overrides: MigrationSettings = {
      bandwidth: 1073741824,
      multifdChannels: 4,
      allowPostCopy: false,
      downtimeTargetMs: 500,
      maxDowntimeMs: 500,
      completionTimeoutPerGiBSeconds: 100,
      stallTimeoutSeconds: 60,
    };
    const { violations, settings } = resolveSettings(migration(overrides), vm, [capped('p', ceilings)], {});
    expect(violations).toEqual([]);
    expect(settings).toMatchObject(overrides);
  });

  it('lowers settings from policies and defaults to the ceilings', () => {
    const policies = [
      capped('limits', {
        maxBandwidth: '100Mi',
        maxMultifdChannels: 2,
        allowPostCopy: false,
        maxDowntimeMs: 200,
        maxCompletionTimeoutPerGiBSeconds: 60,
        maxStallTimeoutSeconds: 30,
      }),
      policy(
        'generous',
        { bandwidth: '1Gi', multifdChannels: 8, downtimeTargetMs: 300, stallTimeoutSeconds: 20 },
        { priority: 10 },
      ),
      policy('post-copy', { allowPostCopy: true }),
    ];
    const { settings, sources, violations } = resolveSettings(migration(), vm, policies, {});
    expect(violations).toEqual([]);
    expect(settings).toEqual({
      bandwidth: '100Mi',
      multifdChannels: 2,
      allowPostCopy: false,
      downtimeTargetMs: 200,
      maxDowntimeMs: 200, // the default 1000, lowered
      completionTimeoutPerGiBSeconds: 60, // the default 150, lowered
      stallTimeoutSeconds: 20, // within the ceiling: kept
      allowAutoConverge: true,
      multifdCompression: 'none',
    });
    expect(sources).toMatchObject({
      bandwidth: 'ceiling/limits',
      multifdChannels: 'ceiling/limits',
      allowPostCopy: 'ceiling/limits',
      downtimeTargetMs: 'ceiling/limits',
      maxDowntimeMs: 'ceiling/limits',
      completionTimeoutPerGiBSeconds: 'ceiling/limits',
      stallTimeoutSeconds: 'policy/generous',
    });
  });

  it('applies the strictest of two ceilings, whatever the priorities, and names its policy', () => {
    const policies = [
      capped('loose', { maxBandwidth: '1Gi', maxDowntimeMs: 100, allowPostCopy: true }, {}, 100),
      capped('strict', { maxBandwidth: '200Mi', maxDowntimeMs: 500, allowPostCopy: false }, {}, -100),
    ];
    const resolution = resolveSettings(migration({ bandwidth: '500Mi' }), vm, policies, {});
    expect(resolution.ceilings).toEqual({
      maxBandwidth: { value: '200Mi', policy: 'strict' },
      maxDowntimeMs: { value: 100, policy: 'loose' },
      allowPostCopy: { value: false, policy: 'strict' },
    });
    expect(resolution.violations.map((v) => v.message)).toEqual([
      'spec.overrides.bandwidth "500Mi" exceeds ceilings.maxBandwidth "200Mi" of MigrationPolicy strict',
    ]);
    expect(resolution.settings).toMatchObject({ maxDowntimeMs: 100, downtimeTargetMs: 50 });
    expect(resolveSettings(migration({ bandwidth: '200Mi' }), vm, policies, {}).violations).toEqual([]);
  });

  it('ignores the ceilings of policies that do not select the VM', () => {
    const policies = [
      policy('web', {}, { ceilings: { maxBandwidth: '1Mi' }, vmSelector: { matchLabels: { tier: 'web' } } }),
    ];
    const resolution = resolveSettings(migration({ bandwidth: 'unlimited' }), vm, policies, {});
    expect(resolution.violations).toEqual([]);
    expect(resolution.settings.bandwidth).toBe('unlimited');
  });

  it('lifts maxDowntimeMs to an override target only within the ceiling', () => {
    const policies = [capped('p', { maxDowntimeMs: 3_000 }, { maxDowntimeMs: 500 })];
    const { settings, violations } = resolveSettings(
      migration({ downtimeTargetMs: 2_000 }),
      vm,
      policies,
      {},
    );
    expect(violations).toEqual([]);
    expect(settings).toMatchObject({ downtimeTargetMs: 2_000, maxDowntimeMs: 2_000 });
  });
});

describe('matchesLabelSelector', () => {
  const labels = { tier: 'db', env: 'prod' };
  it.each<[Parameters<typeof matchesLabelSelector>[0], boolean]>([
    [undefined, true],
    [{}, true],
    [{ matchLabels: { tier: 'db' } }, true],
    [{ matchLabels: { tier: 'web' } }, false],
    [{ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, true],
    [{ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    [
      { matchLabels: { tier: 'db' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] },
      false,
    ],
  ])('%j → %s', (selector, expected) => {
    expect(matchesLabelSelector(selector, labels)).toBe(expected);
  });
});

describe('toWirePolicy', () => {
  it('turns the settings into the daemon policy; unlimited and 0 bandwidth mean no cap', () => {
    expect(bandwidthBytesPerSecond('unlimited')).toBe(0);
    expect(bandwidthBytesPerSecond(0)).toBe(0);
    expect(bandwidthBytesPerSecond('1Mi')).toBe(1_048_576);
    expect(toWirePolicy({ ...DEFAULT_MIGRATION_SETTINGS, bandwidth: '1Gi' })).toEqual({
      bandwidthBytesPerSec: 1_073_741_824,
      downtimeMs: 50,
      maxDowntimeMs: 1_000,
      allowAutoConverge: true,
      allowPostCopy: false,
      completionTimeoutPerGibSeconds: 150,
      stallTimeoutSeconds: 150,
      multifdChannels: 2,
      multifdCompression: 'none',
    });
  });

  it('sends the compression only with multifd channels (a ceiling may have lowered them to 0)', () => {
    const zstd = { ...DEFAULT_MIGRATION_SETTINGS, multifdCompression: 'zstd' as const };
    expect(toWirePolicy({ ...zstd, multifdChannels: 2 })).toMatchObject({
      multifdChannels: 2,
      multifdCompression: 'zstd',
    });
    expect(toWirePolicy({ ...zstd, multifdChannels: 0 })).toMatchObject({
      multifdChannels: 0,
      multifdCompression: 'none',
    });
  });
});
