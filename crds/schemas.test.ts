// Offline checks of the schemas with TypeBox's validator: the examples conform, and the OpenAPI-level rules
// (types, enums, bounds, patterns) reject what they should. CEL rules are exercised in crds.int.test.ts.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import {
  ownershipMovedTo,
  API_VERSION,
  HypervisorNodeSpec,
  HypervisorNodeStatus,
  HypervisorNodes,
  MigrationPolicySpec,
  MigrationSpec,
  Migrations,
  VirtualMachineSpec,
  VirtualMachines,
  collectionPath,
  isTerminalMigrationPhase,
  objectPath,
  registerFormats,
} from './index.js';

registerFormats();

const EXAMPLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');
const SCHEMAS: Record<string, { spec: TSchema; status?: TSchema }> = {
  VirtualMachine: { spec: VirtualMachineSpec },
  Migration: { spec: MigrationSpec },
  MigrationPolicy: { spec: MigrationPolicySpec },
  HypervisorNode: { spec: HypervisorNodeSpec, status: HypervisorNodeStatus },
};

function errors(schema: TSchema, value: unknown): string[] {
  return [...Value.Errors(schema, value)].map((e) => `${e.path} ${e.message}`);
}

const examples = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml'));

describe('examples', () => {
  it('cover every kind', () => {
    const kinds = examples.map(
      (f) => (parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8')) as { kind: string }).kind,
    );
    expect(new Set(kinds)).toEqual(new Set(Object.keys(SCHEMAS)));
  });

  it.each(examples)('%s conforms to its schema', (file) => {
    const doc = parse(readFileSync(join(EXAMPLES_DIR, file), 'utf8')) as Record<string, unknown>;
    expect(doc.apiVersion).toBe(API_VERSION);
    const schemas = SCHEMAS[doc.kind as string];
    expect(schemas).toBeDefined();
    expect(errors(schemas!.spec, doc.spec)).toEqual([]);
    if (doc.status !== undefined) expect(errors(schemas!.status!, doc.status)).toEqual([]);
  });
});

describe('schema validation (OpenAPI level)', () => {
  const vm = {
    running: true,
    cpu: { cores: 1 },
    memory: '256Mi',
    boot: { kernel: { path: '/var/lib/tern/images/vmlinuz' } },
  };

  it('accepts a minimal VirtualMachine spec, with memory as integer bytes too', () => {
    expect(errors(VirtualMachineSpec, vm)).toEqual([]);
    expect(errors(VirtualMachineSpec, { ...vm, memory: 268435456 })).toEqual([]);
  });

  const bad: [string, TSchema, unknown, RegExp][] = [
    ['cpu cores 0', VirtualMachineSpec, { ...vm, cpu: { cores: 0 } }, /\/cpu\/cores/],
    ['cpu cores 65', VirtualMachineSpec, { ...vm, cpu: { cores: 65 } }, /\/cpu\/cores/],
    ['memory with exponent', VirtualMachineSpec, { ...vm, memory: '1e9' }, /\/memory/],
    ['memory negative', VirtualMachineSpec, { ...vm, memory: '-1Gi' }, /\/memory/],
    [
      'relative kernel path',
      VirtualMachineSpec,
      { ...vm, boot: { kernel: { path: 'vmlinuz' } } },
      /\/boot\/kernel\/path/,
    ],
    [
      'comma in a path',
      VirtualMachineSpec,
      { ...vm, boot: { kernel: { path: '/a,b' } } },
      /\/boot\/kernel\/path/,
    ],
    [
      'control character in cmdline',
      VirtualMachineSpec,
      { ...vm, boot: { kernel: { path: '/k', cmdline: 'a\nb' } } },
      /\/boot\/kernel\/cmdline/,
    ],
    [
      'unknown evictionStrategy',
      VirtualMachineSpec,
      { ...vm, evictionStrategy: 'Migrate' },
      /\/evictionStrategy/,
    ],
    ['malformed MAC', VirtualMachineSpec, { ...vm, network: { macAddress: '52:54:00:12:34' } }, /macAddress/],
    ['Migration without vmName', MigrationSpec, {}, /\/vmName/],
    ['uppercase targetNode', MigrationSpec, { vmName: 'vm01', targetNode: 'Node_A' }, /\/targetNode/],
    [
      'downtime target 0',
      MigrationSpec,
      { vmName: 'v', overrides: { downtimeTargetMs: 0 } },
      /downtimeTargetMs/,
    ],
    [
      '17 multifd channels',
      MigrationSpec,
      { vmName: 'v', overrides: { multifdChannels: 17 } },
      /multifdChannels/,
    ],
    ['bandwidth "fast"', MigrationSpec, { vmName: 'v', overrides: { bandwidth: 'fast' } }, /bandwidth/],
    ['policy without settings', MigrationPolicySpec, {}, /\/settings/],
    ['unknown accelerator', HypervisorNodeStatus, { accelerator: 'hvf' }, /\/accelerator/],
    ['endpoint without port', HypervisorNodeStatus, { endpoint: '10.0.0.1' }, /\/endpoint/],
  ];

  it.each(bad)('rejects %s', (_name, schema, value, path) => {
    expect(errors(schema, value).join('\n')).toMatch(path);
  });
});

describe('helpers', () => {
  it('build API paths', () => {
    expect(objectPath(Migrations, 'm1', 'default', 'status')).toBe(
      '/apis/tern.dev/v1alpha1/namespaces/default/migrations/m1/status',
    );
    expect(collectionPath(HypervisorNodes)).toBe('/apis/tern.dev/v1alpha1/hypervisornodes');
    expect(collectionPath(VirtualMachines, 'ns')).toBe(
      '/apis/tern.dev/v1alpha1/namespaces/ns/virtualmachines',
    );
    // A cluster-scoped kind has no namespace in its path, whatever the caller passes.
    expect(collectionPath(HypervisorNodes, 'default')).toBe('/apis/tern.dev/v1alpha1/hypervisornodes');
    expect(() => objectPath(VirtualMachines, 'vm01')).toThrow(/namespace required/);
  });

  it('know the terminal Migration phases', () => {
    expect(['Succeeded', 'Failed', 'Aborted'].every((p) => isTerminalMigrationPhase(p as 'Failed'))).toBe(
      true,
    );
    expect(isTerminalMigrationPhase('Freezing')).toBe(false);
    expect(isTerminalMigrationPhase(undefined)).toBe(false);
  });

  it('move the ownership record to a node with the next epoch', () => {
    expect(ownershipMovedTo(undefined, 'node-a')).toEqual({ node: 'node-a', epoch: 1 });
    expect(ownershipMovedTo({ node: 'node-a', epoch: 4, phase: 'Running' }, 'node-b')).toEqual({
      node: 'node-b',
      epoch: 5,
    });
  });
});
