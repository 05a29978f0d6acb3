import type { Migration, MigrationPolicy, MigrationSettings } from '../../../crds/index.js';
import {
  DEFAULT_MIGRATION_SETTINGS,
  bandwidthBytesPerSecond,
  matchesLabelSelector,
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
      multifdChannels: 0,
    });
  });
});
