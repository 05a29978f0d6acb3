// MigrationPolicy: cluster-wide migration settings for the VMs its selectors match.
import { CloneType, Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { PLURALS, scopeOf } from './api.js';
import { Conditions } from './conditions.js';
import { AGE_COLUMN } from './definition.js';
import type { KindDefinition } from './definition.js';
import { MigrationSettings } from './migrationsettings.js';
import { LabelSelector } from './selectors.js';

export const POLICY_PRIORITY_MIN = -1000;
export const POLICY_PRIORITY_MAX = 1000;

export const MigrationPolicySpec = Type.Object({
  vmSelector: Type.Optional(
    LabelSelector('VirtualMachines (by their labels) this policy applies to; absent: all.'),
  ),
  namespaceSelector: Type.Optional(
    LabelSelector('Namespaces (by their labels) whose VirtualMachines this policy applies to; absent: all.'),
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
});
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
