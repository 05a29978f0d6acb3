import { readFileSync } from 'node:fs';
import { KIND_DEFINITIONS, MIGRATION_FAILURE_REASONS, virtualMachineDefinition } from './index.js';
import type { JsonSchema } from './openapi.js';
import { fieldRows, kindReferenceFile, renderKindReference, renderReference } from './reference.js';
import { objectSchema } from './render.js';

const schema: JsonSchema = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', description: 'The name.', minLength: 1, maxLength: 63, pattern: '^a|b$' },
    mode: { type: 'string', enum: ['Fast', 'Safe'], default: 'Safe' },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 1024 } },
    tags: { type: 'array', maxItems: 4, items: { type: 'string', maxLength: 8 } },
    disks: {
      type: 'array',
      maxItems: 2,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: {
        type: 'object',
        'x-kubernetes-validations': [{ rule: 'self.a || self.b', message: 'a or b', fieldPath: '.a' }],
        required: ['name'],
        properties: { name: { type: 'string', maxLength: 8 }, size: { 'x-kubernetes-int-or-string': true } },
      },
    },
  },
};

describe('fieldRows', () => {
  const rows = fieldRows(schema, 'spec', true);
  const byPath = new Map(rows.map((r) => [r.path, r]));

  it('lists every field depth first with array items as [] and maps as one row', () => {
    expect(rows.map((r) => r.path)).toEqual([
      'spec',
      'spec.name',
      'spec.mode',
      'spec.labels',
      'spec.tags',
      'spec.disks',
      'spec.disks[]',
      'spec.disks[].name',
      'spec.disks[].size',
    ]);
  });

  it('carries type, required, default, enum and limits', () => {
    expect(byPath.get('spec.name')).toMatchObject({
      type: 'string',
      required: true,
      constraints: ['1–63 characters', 'pattern `^a|b$`'],
      description: 'The name.',
    });
    expect(byPath.get('spec.mode')).toMatchObject({
      required: false,
      default: '"Safe"',
      values: 'Fast, Safe',
    });
    expect(byPath.get('spec.labels')?.type).toBe('map of string');
    expect(byPath.get('spec.tags')).toMatchObject({
      type: 'array of string',
      constraints: ['≤ 4 items', 'each item ≤ 8 characters'],
    });
    expect(byPath.get('spec.disks')?.constraints).toEqual(['≤ 2 items', 'list keyed by name']);
    expect(byPath.get('spec.disks[].name')?.required).toBe(true);
    expect(byPath.get('spec.disks[].size')?.type).toBe('integer or string');
  });

  it("puts an item's CEL rules on the item row", () => {
    expect(byPath.get('spec.disks[]')?.rules).toEqual([
      { rule: 'self.a || self.b', message: 'a or b', fieldPath: '.a' },
    ]);
  });
});

describe('renderKindReference', () => {
  const page = renderKindReference(virtualMachineDefinition);

  it('has a row for every spec and status field of the CRD schema', () => {
    const props = objectSchema(virtualMachineDefinition).properties as Record<string, JsonSchema>;
    for (const part of ['spec', 'status'] as const) {
      for (const row of fieldRows(props[part] as JsonSchema, part))
        expect(page).toContain(`| \`${row.path}\` |`);
    }
  });

  it('lists each CEL rule with its message, pipes escaped so the table holds', () => {
    expect(page).toContain(
      '| `spec.boot` | boot must set exactly one of kernel or disk | `has(self.kernel) != has(self.disk)` |',
    );
    expect(page).toContain('| `spec.disks[].io` | io: native needs cache: none');
    expect(page).toContain("\\|\\| self.io != 'native'");
    // The rule on metadata.name sits on the whole object.
    expect(page).toContain('| `<object>` | metadata.name must be a DNS-1123 label');
  });

  it('escapes < in prose, where GitHub would read an HTML tag', () => {
    expect(page).toContain('moved aside to &lt;path>.tern-retained-&lt;migration id>');
  });

  it('every table row has the same number of cells as its header', () => {
    for (const line of page.split('\n').filter((l) => l.startsWith('|'))) {
      const cells = line.replace(/\\\|/g, '').split('|').length;
      expect([7, 5]).toContain(cells);
    }
  });

  it('writes one page per kind into docs/reference', () => {
    expect([...renderReference().keys()].sort()).toEqual(
      KIND_DEFINITIONS.map((d) => kindReferenceFile(d)).sort(),
    );
    expect(kindReferenceFile(virtualMachineDefinition)).toBe('docs/reference/virtualmachine.md');
  });
});

describe('docs/failures.md', () => {
  const doc = readFileSync(new URL('../docs/failures.md', import.meta.url), 'utf8');
  // The first cell of each table row: `| \`Reason\` | …`.
  const documented = [...doc.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);

  it('has one row for every Migration failure reason, and no other', () => {
    expect([...documented].sort()).toEqual([...MIGRATION_FAILURE_REASONS].sort());
  });

  it('fills every column of every reason', () => {
    for (const line of doc.split('\n').filter((l) => /^\| `[A-Za-z]+` \|/.test(l))) {
      const cells = line.split(' | ').slice(1);
      expect(cells).toHaveLength(3); // what it means, the guest, what to do
      for (const c of cells) expect(c.replace(/\|$/, '').trim()).not.toBe('');
    }
  });
});
