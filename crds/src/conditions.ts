// metav1.Condition, with the validation the Kubernetes API types carry.
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { StringEnum, Timestamp } from './schema.js';

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

export const Condition = Type.Object({
  type: Type.String({
    description: 'Type of condition in CamelCase, e.g. Ready.',
    minLength: 1,
    maxLength: 316,
    pattern:
      '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
  }),
  status: StringEnum(CONDITION_STATUSES),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
  lastTransitionTime: Timestamp({ description: 'When the condition last changed status.' }),
  reason: Type.String({
    description: 'Machine-readable CamelCase reason for the last transition.',
    minLength: 1,
    maxLength: 1024,
    pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
  }),
  message: Type.String({ description: 'Human-readable details.', maxLength: 32768 }),
});
export type Condition = Static<typeof Condition>;

/** `status.conditions` of every Tern kind: a map list keyed by type. */
export const Conditions = () =>
  Type.Array(Condition, {
    maxItems: 32,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
