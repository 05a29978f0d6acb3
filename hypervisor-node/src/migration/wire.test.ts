import { resolveMigrationPolicy, DEFAULT_MIGRATION_POLICY } from './engine/policy.js';
import { policyOverridesFromWire } from './wire.js';

describe('policyOverridesFromWire', () => {
  it('keeps only the fields the request set, so the defaults fill the rest', () => {
    const overrides = policyOverridesFromWire({
      bandwidthBytesPerSec: 20 << 20,
      allowAutoConverge: false,
      cpuThrottleSteps: [],
      completionTimeoutPerGibSeconds: 40,
    });
    expect(overrides).toEqual({
      bandwidthBytesPerSec: 20 << 20,
      allowAutoConverge: false,
      completionTimeoutPerGiBSeconds: 40,
    });
    expect(resolveMigrationPolicy(overrides)).toEqual({ ...DEFAULT_MIGRATION_POLICY, ...overrides });
  });

  it('an absent policy or explicit zero values are kept apart', () => {
    expect(policyOverridesFromWire(null)).toEqual({});
    expect(policyOverridesFromWire({ bandwidthBytesPerSec: 0, cpuThrottleSteps: [50, 90] })).toEqual({
      bandwidthBytesPerSec: 0,
      cpuThrottleSteps: [50, 90],
    });
  });
});
