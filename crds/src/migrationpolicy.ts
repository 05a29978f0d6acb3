// MigrationPolicy: cluster-wide migration settings for the VMs its selectors match.
import { CloneType, Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { PLURALS, scopeOf } from './api.js';
import { Conditions } from './conditions.js';
import { AGE_COLUMN } from './definition.js';
import type { KindDefinition } from './definition.js';
import { MigrationCeilings, MigrationSettings } from './migrationsettings.js';
import { cel } from './schema.js';
import { LabelSelector } from './selectors.js';

export const POLICY_PRIORITY_MIN = -1000;
export const POLICY_PRIORITY_MAX = 1000;

/** A CEL condition: the ceiling `ceiling` is set and the setting `setting` is set. */
const both = (setting: string, ceiling: string) =>
  `has(self.ceilings) && has(self.ceilings.${ceiling}) && has(self.settings.${setting})`;
const BANDWIDTH = 'string(self.settings.bandwidth)';
const MAX_BANDWIDTH = 'string(self.ceilings.maxBandwidth)';

/** A policy's own settings stay within its own ceilings (other policies' settings are lowered at resolution). */
const OWN_CEILINGS = cel(
  {
    // 0 and "unlimited" mean no cap, which exceeds any ceiling; an unparsable value is left to the pattern error.
    rule:
      `!(${both('bandwidth', 'maxBandwidth')}) || !isQuantity(${MAX_BANDWIDTH}) || ` +
      `(isQuantity(${BANDWIDTH}) && quantity(${BANDWIDTH}).isGreaterThan(quantity('0')) && ` +
      `quantity(${BANDWIDTH}).compareTo(quantity(${MAX_BANDWIDTH})) <= 0)`,
    message:
      'settings.bandwidth must be a cap no larger than ceilings.maxBandwidth (0 and "unlimited" mean no cap)',
    fieldPath: '.settings.bandwidth',
  },
  {
    rule:
      `!(${both('multifdChannels', 'maxMultifdChannels')}) || ` +
      'self.settings.multifdChannels <= self.ceilings.maxMultifdChannels',
    message: 'settings.multifdChannels must be at most ceilings.maxMultifdChannels',
    fieldPath: '.settings.multifdChannels',
  },
  {
    rule: `!(${both('allowPostCopy', 'allowPostCopy')}) || self.ceilings.allowPostCopy || !self.settings.allowPostCopy`,
    message: 'settings.allowPostCopy cannot be true when ceilings.allowPostCopy is false',
    fieldPath: '.settings.allowPostCopy',
  },
  {
    rule: `!(${both('downtimeTargetMs', 'maxDowntimeMs')}) || self.settings.downtimeTargetMs <= self.ceilings.maxDowntimeMs`,
    message: 'settings.downtimeTargetMs must be at most ceilings.maxDowntimeMs',
    fieldPath: '.settings.downtimeTargetMs',
  },
  {
    rule: `!(${both('maxDowntimeMs', 'maxDowntimeMs')}) || self.settings.maxDowntimeMs <= self.ceilings.maxDowntimeMs`,
    message: 'settings.maxDowntimeMs must be at most ceilings.maxDowntimeMs',
    fieldPath: '.settings.maxDowntimeMs',
  },
  {
    rule:
      `!(${both('completionTimeoutPerGiBSeconds', 'maxCompletionTimeoutPerGiBSeconds')}) || ` +
      'self.settings.completionTimeoutPerGiBSeconds <= self.ceilings.maxCompletionTimeoutPerGiBSeconds',
    message:
      'settings.completionTimeoutPerGiBSeconds must be at most ceilings.maxCompletionTimeoutPerGiBSeconds',
    fieldPath: '.settings.completionTimeoutPerGiBSeconds',
  },
  {
    rule:
      `!(${both('stallTimeoutSeconds', 'maxStallTimeoutSeconds')}) || ` +
      'self.settings.stallTimeoutSeconds <= self.ceilings.maxStallTimeoutSeconds',
    message: 'settings.stallTimeoutSeconds must be at most ceilings.maxStallTimeoutSeconds',
    fieldPath: '.settings.stallTimeoutSeconds',
  },
);

export const MigrationPolicySpec = Type.Object(
  {
    vmSelector: Type.Optional(
      LabelSelector('VirtualMachines (by their labels) this policy applies to; absent: all.'),
    ),
    namespaceSelector: Type.Optional(
      LabelSelector(
        'Namespaces (by their labels) whose VirtualMachines this policy applies to; absent: all.',
      ),
    ),
    priority: Type.Optional(
      Type.Integer({
        description:
          'When several policies match a VM, each setting comes from the matching policy with the highest ' +
          'priority that sets it; equal priorities are ordered by name.',
        minimum: POLICY_PRIORITY_MIN,
        maximum: POLICY_PRIORITY_MAX,
        default: 0,
      }),
    ),
    settings: CloneType(MigrationSettings, { description: 'The settings this policy applies.' }),
    ceilings: Type.Optional(MigrationCeilings),
  },
  OWN_CEILINGS,
);
export type MigrationPolicySpec = Static<typeof MigrationPolicySpec>;

export const MigrationPolicyStatus = Type.Object({
  conditions: Type.Optional(Conditions()),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
});
export type MigrationPolicyStatus = Static<typeof MigrationPolicyStatus>;

export const migrationPolicyDefinition: KindDefinition = {
  kind: 'MigrationPolicy',
  singular: 'migrationpolicy',
  plural: PLURALS.MigrationPolicy,
  // KubeVirt's MigrationPolicy has no short name; "tmp" would read as "temporary", hence "migpol".
  shortNames: ['migpol'],
  scope: scopeOf('MigrationPolicy'),
  description: 'Migration settings applied to the VirtualMachines selected by labels.',
  spec: MigrationPolicySpec,
  status: MigrationPolicyStatus,
  specRequired: true,
  printerColumns: [
    { name: 'Priority', type: 'integer', jsonPath: '.spec.priority' },
    { name: 'Bandwidth', type: 'string', jsonPath: '.spec.settings.bandwidth' },
    { name: 'Max-Downtime-ms', type: 'integer', jsonPath: '.spec.settings.maxDowntimeMs' },
    { name: 'Post-Copy', type: 'boolean', jsonPath: '.spec.settings.allowPostCopy' },
    AGE_COLUMN,
  ],
};
