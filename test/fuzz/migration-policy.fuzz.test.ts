// Property: Migration overrides and MigrationPolicy settings the CRDs accept, resolved by the operator
// (operator/src/migration/policy.ts) and sent as StartMigration's policy, are accepted by the daemon's
// resolveMigrationPolicy (hypervisor-node/src/migration/engine/policy.ts) with the settings the operator resolved,
// or refused with a MigrationPolicyError naming the fields; nothing on the way throws anything else. The settings
// resolved never exceed the ceilings of the policies that select the VM, and only overrides are refused for them.
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import {
  MigrationPolicySpec,
  MigrationSettings,
  registerFormats,
  type Migration,
  type MigrationCeilings,
  type MigrationPolicy,
} from '../../crds/index.js';
import { loadMigrationProto } from '../../proto/index.js';
import {
  bandwidthBytesPerSecond,
  resolveSettings,
  toWirePolicy,
} from '../../operator/src/migration/policy.js';
import {
  DEFAULT_MIGRATION_POLICY,
  MigrationPolicyError,
  resolveMigrationPolicy,
} from '../../hypervisor-node/src/migration/engine/policy.js';
import { policyOverridesFromWire } from '../../hypervisor-node/src/migration/wire.js';
import { checkProperty } from './settings.js';
import {
  dnsLabel,
  migrationSettings,
  policyPriority,
  policySettingsAndCeilings,
  settingsAboveOwnCeilings,
} from './crd-arbitraries.js';

registerFormats();
const startMigration = loadMigrationProto().Migration.service.StartMigration;
const VM_LABELS = { tier: 'db' };

const policyArb: fc.Arbitrary<MigrationPolicy> = fc
  .record({
    name: dnsLabel,
    priority: policyPriority,
    selects: fc.constantFrom('all', 'vm', 'other'),
    own: policySettingsAndCeilings,
  })
  .map(({ name, priority, selects, own: { settings, ceilings } }) => ({
    apiVersion: 'tern.dev/v1alpha1' as const,
    kind: 'MigrationPolicy' as const,
    metadata: { name },
    spec: {
      ...(priority === undefined ? {} : { priority }),
      ...(selects === 'all'
        ? {}
        : { vmSelector: { matchLabels: selects === 'vm' ? VM_LABELS : { tier: 'web' } } }),
      settings,
      ...(ceilings === undefined ? {} : { ceilings }),
    },
  }));

/** What travels from the operator to the daemon: StartMigrationRequest through protobuf and back. */
function overWire(request: Parameters<typeof startMigration.requestSerialize>[0]) {
  return startMigration.requestDeserialize(startMigration.requestSerialize(request));
}

/** Cases whose overrides a ceiling refused (PolicyViolation at admission). */
let aboveCeilings = 0;

type Outcome = { kind: 'accepted' } | { kind: 'refused'; error: MigrationPolicyError };

function sendToDaemon(overrides: Migration['spec']['overrides'], policies: MigrationPolicy[]): Outcome {
  const migration: Pick<Migration, 'spec'> = {
    spec: { vmName: 'vm1', ...(overrides === undefined ? {} : { overrides }) },
  };
  const vm = { metadata: { name: 'vm1', labels: VM_LABELS } };
  const { settings, ceilings, violations } = resolveSettings(migration, vm, policies, {});
  // Within every ceiling that applies, and refused only for what the overrides asked.
  expect(settingsAboveOwnCeilings(settings, ceilingValues(ceilings))).toEqual([]);
  if (violations.length > 0) aboveCeilings++;
  for (const violation of violations) {
    expect(overrides?.[violation.field]).toBe(violation.value);
    expect(violation.message).toContain(`MigrationPolicy ${violation.policy}`);
  }
  const request = overWire({
    migrationId: 'm-1',
    guest: 'vm1',
    targetDataEndpoint: '127.0.0.1:1',
    token: 'x',
    policy: toWirePolicy(settings),
  });
  try {
    const policy = resolveMigrationPolicy(policyOverridesFromWire(request.policy));
    // Accepted: the daemon runs with what the operator resolved, not a default or a rounded value.
    expect(policy).toMatchObject({
      bandwidthBytesPerSec: bandwidthBytesPerSecond(settings.bandwidth),
      downtimeMs: settings.downtimeTargetMs,
      maxDowntimeMs: settings.maxDowntimeMs,
      allowAutoConverge: settings.allowAutoConverge,
      allowPostCopy: settings.allowPostCopy,
      completionTimeoutPerGiBSeconds: settings.completionTimeoutPerGiBSeconds,
      stallTimeoutSeconds: settings.stallTimeoutSeconds,
      multifdChannels: settings.multifdChannels,
    });
    return { kind: 'accepted' };
  } catch (error) {
    if (!(error instanceof MigrationPolicyError)) throw error;
    return { kind: 'refused', error };
  }
}

function ceilingValues(ceilings: ReturnType<typeof resolveSettings>['ceilings']): MigrationCeilings {
  return Object.fromEntries(
    Object.entries(ceilings).map(([name, ceiling]) => [name, ceiling.value]),
  ) as MigrationCeilings;
}

function expectNamedRefusal(error: MigrationPolicyError): void {
  expect(error.problems.length).toBeGreaterThan(0);
  for (const problem of error.problems) {
    expect([...Object.keys(DEFAULT_MIGRATION_POLICY), 'policy']).toContain(problem.field);
    expect(problem.message).not.toBe('');
  }
}

describe('fuzz: migration settings from the CRDs to the daemon', () => {
  it('accepted or refused with MigrationPolicyError naming fields, never another exception', async () => {
    let refused = 0;
    await checkProperty(
      'migration-policy',
      fc.property(
        fc.option(migrationSettings, { nil: undefined }),
        fc.array(policyArb, { maxLength: 3 }),
        (overrides, policies) => {
          if (overrides !== undefined) expect(Value.Check(MigrationSettings, overrides)).toBe(true);
          for (const policy of policies) expect(Value.Check(MigrationPolicySpec, policy.spec)).toBe(true);
          const outcome = sendToDaemon(overrides, policies);
          if (outcome.kind === 'refused') {
            refused++;
            expectNamedRefusal(outcome.error);
          }
        },
      ),
    );
    process.stdout.write(
      `fuzz migration-policy: ${refused} refused by the daemon with a reason, ` +
        `${aboveCeilings} overrides refused for a MigrationPolicy ceiling\n`,
    );
  });
});
