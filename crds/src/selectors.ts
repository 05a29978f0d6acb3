// metav1.LabelSelector.
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { StringEnum, StringMap, cel } from './schema.js';

export const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317 }),
    operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 64 })),
  },
  cel({
    rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
    message: 'values must be non-empty for the In and NotIn operators and empty for Exists and DoesNotExist',
  }),
);

export const LabelSelector = (description: string) =>
  Type.Object(
    {
      matchLabels: Type.Optional(StringMap()),
      matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirement, { maxItems: 32 })),
    },
    { description },
  );
export type LabelSelector = Static<ReturnType<typeof LabelSelector>>;
