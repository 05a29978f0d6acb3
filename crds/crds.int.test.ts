// The generated CRDs against a real kube-apiserver: they install, the examples apply, bad objects are
// rejected with messages that name the field and the rule, status is written only through its subresource,
// and `kubectl get` prints the columns users rely on.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startControlPlane } from '../test/harness/control-plane.js';
import type { ControlPlane } from '../test/harness/control-plane.js';
import { API_VERSION, DNS1123_LABEL_PATTERN, KIND_DEFINITIONS, crdName } from './index.js';
import type { TernKind } from './index.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLES_DIR = join(REPO_ROOT, 'examples');
const CRD_DIR = join(REPO_ROOT, 'crds', 'generated');

let cp: ControlPlane;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? undefined : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

async function getJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T;
}

/** Header and rows of `kubectl get`, split on runs of two or more spaces. */
async function table(args: string[]): Promise<string[][]> {
  const out = await kubectl(['get', ...args]);
  return out
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

function manifest(kind: TernKind, name: string, spec: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: API_VERSION, kind, metadata: { name }, spec, ...extra });
}

const vmSpec = {
  running: true,
  cpu: { cores: 1 },
  memory: '256Mi',
  boot: { kernel: { path: '/var/lib/tern/images/vmlinuz', initrdPath: '/var/lib/tern/images/initrd.img' } },
};

beforeAll(async () => {
  cp = await startControlPlane({ name: 'crds' });
  const applied = await cp.kubectl(['apply', '-f', CRD_DIR]);
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);
  await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd',
    ...KIND_DEFINITIONS.map((d) => crdName(d.kind as TernKind)),
  ]);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
});

describe('CRDs', () => {
  it('are Established with accepted names, and the apiserver has no warning for them', async () => {
    for (const def of KIND_DEFINITIONS) {
      const crd = await getJson<{ status: { conditions: { type: string; status: string }[] } }>([
        'crd',
        crdName(def.kind as TernKind),
      ]);
      const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
      expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    }
    // Re-applying unchanged CRDs is a no-op and must not print warnings (e.g. about CEL cost or unknown keys).
    const again = await cp.kubectl(['apply', '-f', CRD_DIR]);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(/unchanged/);
  });
});

describe('examples', () => {
  const files = readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it.each(files)('%s applies', async (file) => {
    const r = await cp.kubectl(['apply', '-f', join(EXAMPLES_DIR, file)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/created|configured|unchanged/);
  });

  it('the HypervisorNode example status is accepted through the status subresource', async () => {
    const doc = parse(readFileSync(join(EXAMPLES_DIR, 'hypervisornode.yaml'), 'utf8')) as { status: unknown };
    await kubectl(['apply', '-f', join(EXAMPLES_DIR, 'hypervisornode.yaml')]);
    await kubectl([
      'patch',
      'hypervisornode',
      'node-a',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: doc.status }),
    ]);
    const node = await getJson<{ status: unknown }>(['hypervisornode', 'node-a']);
    expect(node.status).toEqual(doc.status);
  });
});

/** A RegExp matching `text` literally. */
const literally = (text: string): RegExp => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** The apiserver's message for a value that fails an OpenAPI `pattern`: names the field and (part of) the pattern. */
const failsPattern = (field: string, patternFragment: string): RegExp =>
  new RegExp(`${literally(field).source} in body should match '[^']*${literally(patternFragment).source}`);

const QUANTITY_SUFFIXES = '(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$';
const DNS_LABEL = DNS1123_LABEL_PATTERN;

describe('validation', () => {
  type Case = [name: string, kind: TernKind, spec: unknown, expected: RegExp[], objectName?: string];
  const vm = (patch: Record<string, unknown>) => ({ ...vmSpec, ...patch });
  const mig = (patch: Record<string, unknown>) => ({ vmName: 'vm01', ...patch });

  const cases: Case[] = [
    [
      'cpu.cores of the wrong type',
      'VirtualMachine',
      vm({ cpu: { cores: 'two' } }),
      [/spec\.cpu\.cores/, /must be of type integer/],
    ],
    [
      'cpu.cores 0',
      'VirtualMachine',
      vm({ cpu: { cores: 0 } }),
      [/spec\.cpu\.cores/, /greater than or equal to 1/],
    ],
    [
      'cpu.cores 65',
      'VirtualMachine',
      vm({ cpu: { cores: 65 } }),
      [/spec\.cpu\.cores/, /less than or equal to 64/],
    ],
    [
      'negative memory',
      'VirtualMachine',
      vm({ memory: '-1Gi' }),
      [failsPattern('spec.memory', QUANTITY_SUFFIXES)],
    ],
    [
      'negative integer memory',
      'VirtualMachine',
      vm({ memory: -5 }),
      [/spec\.memory/, /memory must be between 64Mi and 1Ti/],
    ],
    [
      'unparsable memory',
      'VirtualMachine',
      vm({ memory: 'lots' }),
      [failsPattern('spec.memory', QUANTITY_SUFFIXES)],
    ],
    [
      'memory below the minimum',
      'VirtualMachine',
      vm({ memory: '16Mi' }),
      [/spec\.memory/, /between 64Mi and 1Ti/],
    ],
    [
      'memory above the maximum',
      'VirtualMachine',
      vm({ memory: '2Ti' }),
      [/spec\.memory/, /between 64Mi and 1Ti/],
    ],
    [
      'memory not a whole MiB',
      'VirtualMachine',
      vm({ memory: '100.5Mi' }),
      [/spec\.memory/, /whole number of MiB/],
    ],
    [
      'an unknown evictionStrategy',
      'VirtualMachine',
      vm({ evictionStrategy: 'Migrate' }),
      [/spec\.evictionStrategy/, /Unsupported value: "Migrate"/, /"LiveMigrate"/],
    ],
    [
      'a missing running',
      'VirtualMachine',
      { ...vmSpec, running: undefined },
      [/spec\.running/, /Required value/],
    ],
    [
      'both kernel and disk boot',
      'VirtualMachine',
      vm({
        boot: { kernel: { path: '/k' }, disk: 'root' },
        disks: [{ name: 'root', path: '/d.img', storage: 'shared' }],
      }),
      [/spec\.boot/, /exactly one of kernel or disk/],
    ],
    [
      'a boot disk that is not in disks',
      'VirtualMachine',
      vm({ boot: { disk: 'root' } }),
      [/spec\.boot\.disk/, /must name an entry of disks/],
    ],
    [
      'a path with ".."',
      'VirtualMachine',
      vm({ boot: { kernel: { path: '/var/lib/tern/../../etc/shadow' } } }),
      [/spec\.boot\.kernel\.path/, /must not contain "\.\." segments/],
    ],
    [
      'a relative path',
      'VirtualMachine',
      vm({ boot: { kernel: { path: 'vmlinuz' } } }),
      [failsPattern('spec.boot.kernel.path', '^/[^,]*$')],
    ],
    [
      'duplicate disk names',
      'VirtualMachine',
      vm({
        disks: [
          { name: 'a', path: '/a.img', storage: 'shared' },
          { name: 'a', path: '/b.img', storage: 'shared' },
        ],
      }),
      [/spec\.disks\[1\]/, /Duplicate value/],
    ],
    [
      'seven SATA disks (q35 has six AHCI ports)',
      'VirtualMachine',
      vm({
        disks: Array.from({ length: 7 }, (_, i) => ({
          name: `d${i}`,
          path: `/d${i}.img`,
          storage: 'shared',
          bus: 'sata',
        })),
      }),
      [/spec\.disks/, /at most 6 disks on bus sata/],
    ],
    [
      'a read-only local disk (a migration cannot mirror into it)',
      'VirtualMachine',
      vm({ disks: [{ name: 'seed', path: '/seed.img', storage: 'local', readOnly: true }] }),
      [/spec\.disks\[0\]\.readOnly/, /a storage: local disk cannot be readOnly/],
    ],
    [
      'nodeLossPolicy Restart with a local disk (its only copy is on the lost node)',
      'VirtualMachine',
      vm({
        nodeLossPolicy: 'Restart',
        disks: [
          { name: 'base', path: '/base.img', storage: 'shared', readOnly: true },
          { name: 'data', path: '/data.img', storage: 'local' },
        ],
      }),
      [/spec\.nodeLossPolicy/, /nodeLossPolicy: Restart needs disks every node sees/],
    ],
    [
      'sourceCopyAfterMigration on a shared disk',
      'VirtualMachine',
      vm({
        disks: [{ name: 'data', path: '/data.img', storage: 'shared', sourceCopyAfterMigration: 'Retain' }],
      }),
      [
        /spec\.disks\[0\]\.sourceCopyAfterMigration/,
        /sourceCopyAfterMigration applies to storage: local disks only/,
      ],
    ],
    [
      'a globally administered MAC',
      'VirtualMachine',
      vm({ network: { macAddress: '00:11:22:33:44:55' } }),
      [/spec\.network\.macAddress/, /must be locally administered/],
    ],
    [
      'post-copy with multifd channels',
      'Migration',
      mig({ overrides: { allowPostCopy: true, multifdChannels: 2 } }),
      [/spec\.overrides\.allowPostCopy/, /cannot be combined with multifdChannels/],
    ],
    [
      'a multicast MAC',
      'VirtualMachine',
      vm({ network: { macAddress: '01:00:5e:00:00:01' } }),
      [/spec\.network\.macAddress/, /must be a unicast address/],
    ],
    [
      'a name that is not a DNS label',
      'VirtualMachine',
      vmSpec,
      [/metadata\.name must be a DNS-1123 label/],
      'vm.one',
    ],
    ['a missing vmName', 'Migration', {}, [/spec\.vmName/, /Required value/]],
    ['an invalid vmName', 'Migration', { vmName: 'VM_01' }, [failsPattern('spec.vmName', DNS_LABEL)]],
    [
      'an invalid targetNode',
      'Migration',
      mig({ targetNode: 'Node_A' }),
      [failsPattern('spec.targetNode', '(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')],
    ],
    [
      'downtimeTargetMs 0',
      'Migration',
      mig({ overrides: { downtimeTargetMs: 0 } }),
      [/spec\.overrides\.downtimeTargetMs/, /greater than or equal to 1/],
    ],
    [
      'downtimeTargetMs above 10000',
      'Migration',
      mig({ overrides: { downtimeTargetMs: 10001 } }),
      [/spec\.overrides\.downtimeTargetMs/, /less than or equal to 10000/],
    ],
    [
      'maxDowntimeMs below downtimeTargetMs',
      'Migration',
      mig({ overrides: { downtimeTargetMs: 100, maxDowntimeMs: 50 } }),
      [/spec\.overrides\.maxDowntimeMs/, /maxDowntimeMs must be greater than or equal to downtimeTargetMs/],
    ],
    [
      'zstd without multifd channels',
      'Migration',
      mig({ overrides: { multifdCompression: 'zstd', multifdChannels: 0 } }),
      [/spec\.overrides\.multifdCompression/, /needs multifdChannels > 0/],
    ],
    [
      'a compression QEMU has but Tern does not offer',
      'Migration',
      mig({ overrides: { multifdCompression: 'zlib' } }),
      [/spec\.overrides\.multifdCompression/, /Unsupported value: "zlib"/],
    ],
    [
      '17 multifd channels',
      'Migration',
      mig({ overrides: { multifdChannels: 17 } }),
      [/spec\.overrides\.multifdChannels/, /less than or equal to 16/],
    ],
    [
      'a 1k bandwidth',
      'Migration',
      mig({ overrides: { bandwidth: '1k' } }),
      [/spec\.overrides\.bandwidth/, /at least 1Mi bytes per second/],
    ],
    [
      // Found by test/fuzz/migration-policy.fuzz.test.ts: the schema accepted it, and the operator's toWirePolicy
      // threw a plain Error (not a safe integer) after the target was prepared.
      'an int64 bandwidth',
      'Migration',
      mig({ overrides: { bandwidth: 2 ** 62 } }),
      [/spec\.overrides\.bandwidth/, /at most 1Ti bytes per second/],
    ],
    [
      'a 10E bandwidth in a policy',
      'MigrationPolicy',
      { settings: { bandwidth: '10E' } },
      [/spec\.settings\.bandwidth/, /at most 1Ti bytes per second/],
    ],
    [
      'a bandwidth word',
      'Migration',
      mig({ overrides: { bandwidth: 'fast' } }),
      [failsPattern('spec.overrides.bandwidth', '|^unlimited$')],
    ],
    [
      'allowPostCopy of the wrong type',
      'Migration',
      mig({ overrides: { allowPostCopy: 'yes' } }),
      [/spec\.overrides\.allowPostCopy/, /must be of type boolean/],
    ],
    ['a policy without settings', 'MigrationPolicy', {}, [/spec\.settings/, /Required value/]],
    [
      'a policy priority of 5000',
      'MigrationPolicy',
      { settings: {}, priority: 5000 },
      [/spec\.priority/, /less than or equal to 1000/],
    ],
    [
      'an In selector without values',
      'MigrationPolicy',
      { settings: {}, vmSelector: { matchExpressions: [{ key: 'tier', operator: 'In' }] } },
      [/spec\.vmSelector\.matchExpressions\[0\]/, /values must be non-empty for the In and NotIn operators/],
    ],
    [
      'an unknown selector operator',
      'MigrationPolicy',
      { settings: {}, vmSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } },
      [literally('spec.vmSelector.matchExpressions[0].operator: Unsupported value: "Near"')],
    ],
    [
      'a policy bandwidth above its own ceiling',
      'MigrationPolicy',
      { settings: { bandwidth: '2Gi' }, ceilings: { maxBandwidth: '1Gi' } },
      [
        /spec\.settings\.bandwidth/,
        literally(
          'settings.bandwidth must be a cap no larger than ceilings.maxBandwidth (0 and "unlimited" mean no cap)',
        ),
      ],
    ],
    [
      'a policy without a bandwidth cap under a bandwidth ceiling',
      'MigrationPolicy',
      { settings: { bandwidth: 'unlimited' }, ceilings: { maxBandwidth: 1073741824 } },
      [/spec\.settings\.bandwidth/, /must be a cap no larger than ceilings\.maxBandwidth/],
    ],
    [
      'an "unlimited" bandwidth ceiling',
      'MigrationPolicy',
      { settings: {}, ceilings: { maxBandwidth: 'unlimited' } },
      [failsPattern('spec.ceilings.maxBandwidth', QUANTITY_SUFFIXES)],
    ],
    [
      'a zero bandwidth ceiling',
      'MigrationPolicy',
      { settings: {}, ceilings: { maxBandwidth: 0 } },
      [/spec\.ceilings\.maxBandwidth/, /maxBandwidth must be from 1Mi to 1Ti bytes per second/],
    ],
    [
      'a 2Ti bandwidth ceiling',
      'MigrationPolicy',
      { settings: {}, ceilings: { maxBandwidth: '2Ti' } },
      [/spec\.ceilings\.maxBandwidth/, /maxBandwidth must be from 1Mi to 1Ti bytes per second/],
    ],
    [
      'a policy allowing post-copy under its own post-copy ban',
      'MigrationPolicy',
      { settings: { allowPostCopy: true }, ceilings: { allowPostCopy: false } },
      [
        /spec\.settings\.allowPostCopy/,
        /settings\.allowPostCopy cannot be true when ceilings\.allowPostCopy is false/,
      ],
    ],
    [
      'a policy downtime target and max downtime above its own ceiling',
      'MigrationPolicy',
      { settings: { downtimeTargetMs: 300, maxDowntimeMs: 400 }, ceilings: { maxDowntimeMs: 200 } },
      [
        /spec\.settings\.downtimeTargetMs/,
        /settings\.downtimeTargetMs must be at most ceilings\.maxDowntimeMs/,
        /spec\.settings\.maxDowntimeMs/,
        /settings\.maxDowntimeMs must be at most ceilings\.maxDowntimeMs/,
      ],
    ],
    [
      'policy multifd channels and timeouts above their own ceilings',
      'MigrationPolicy',
      {
        settings: { multifdChannels: 8, completionTimeoutPerGiBSeconds: 600, stallTimeoutSeconds: 90 },
        ceilings: {
          maxMultifdChannels: 4,
          maxCompletionTimeoutPerGiBSeconds: 300,
          maxStallTimeoutSeconds: 60,
        },
      },
      [
        /spec\.settings\.multifdChannels.*must be at most ceilings\.maxMultifdChannels/,
        /spec\.settings\.completionTimeoutPerGiBSeconds.*must be at most ceilings\.maxCompletionTimeoutPerGiBSeconds/,
        /spec\.settings\.stallTimeoutSeconds.*must be at most ceilings\.maxStallTimeoutSeconds/,
      ],
    ],
    [
      '17 multifd channels as a ceiling',
      'MigrationPolicy',
      { settings: {}, ceilings: { maxMultifdChannels: 17 } },
      [/spec\.ceilings\.maxMultifdChannels/, /less than or equal to 16/],
    ],
    [
      'drain of the wrong type',
      'HypervisorNode',
      { drain: 'yes' },
      [/spec\.drain/, /must be of type boolean/],
    ],
  ];

  it('has at least 15 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('rejects %s', async (_name, kind, spec, expected, objectName = 'bad') => {
    const r = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
      input: manifest(kind, objectName, spec),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is invalid/);
    for (const pattern of expected) expect(r.stderr).toMatch(pattern);
  });

  it('accepts the smallest valid objects and fills in defaults', async () => {
    await kubectl(['create', '-f', '-'], manifest('VirtualMachine', 'minimal', vmSpec));
    const vm = await getJson<{ spec: Record<string, unknown> }>(['virtualmachine', 'minimal']);
    expect(vm.spec).toMatchObject({ evictionStrategy: 'LiveMigrate', restartPolicy: 'Always' });
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('VirtualMachine', 'bytes', { ...vmSpec, memory: 1073741824 }),
    );
    // Read-only is for shared disks; a local disk may say readOnly: false.
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('VirtualMachine', 'disks', {
        ...vmSpec,
        disks: [
          { name: 'base', path: '/base.img', storage: 'shared', readOnly: true },
          { name: 'data', path: '/data.img', storage: 'local', readOnly: false },
          { name: 'kept', path: '/kept.img', storage: 'local', sourceCopyAfterMigration: 'Retain' },
        ],
      }),
    );
    // nodeLossPolicy Restart with shared disks only.
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('VirtualMachine', 'restartable', {
        ...vmSpec,
        nodeLossPolicy: 'Restart',
        disks: [{ name: 'data', path: '/data.img', storage: 'shared' }],
      }),
    );
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('Migration', 'ok', { vmName: 'minimal', overrides: { bandwidth: 0 } }),
    );
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('MigrationPolicy', 'empty', { settings: {} }),
    );
    // Settings at their ceilings, and settings a ceiling does not bound, are accepted.
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('MigrationPolicy', 'at-ceilings', {
        settings: {
          bandwidth: 1073741824,
          multifdChannels: 4,
          multifdCompression: 'zstd',
          allowPostCopy: false,
          downtimeTargetMs: 200,
          maxDowntimeMs: 200,
          completionTimeoutPerGiBSeconds: 300,
          stallTimeoutSeconds: 60,
        },
        ceilings: {
          maxBandwidth: '1Gi',
          maxMultifdChannels: 4,
          allowPostCopy: false,
          maxDowntimeMs: 200,
          maxCompletionTimeoutPerGiBSeconds: 300,
          maxStallTimeoutSeconds: 60,
        },
      }),
    );
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      manifest('MigrationPolicy', 'ceilings-only', {
        settings: { allowPostCopy: true, bandwidth: 'unlimited' },
        ceilings: { maxDowntimeMs: 100, maxMultifdChannels: 0 },
      }),
    );
    await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      JSON.stringify({ apiVersion: API_VERSION, kind: 'HypervisorNode', metadata: { name: 'bare' } }),
    );
  });
});

describe('Migration spec', () => {
  it('cannot be changed after creation, while labels can', async () => {
    await kubectl(
      ['create', '-f', '-'],
      manifest('Migration', 'fixed', { vmName: 'vm01', targetNode: 'node-b' }),
    );
    const r = await cp.kubectl([
      'patch',
      'migration',
      'fixed',
      '--type=merge',
      '-p',
      '{"spec":{"targetNode":"node-c"}}',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Migration "fixed" is invalid: spec: Invalid value: spec is immutable/);
    const overrides = await cp.kubectl([
      'patch',
      'migration',
      'fixed',
      '--type=merge',
      '-p',
      '{"spec":{"overrides":{"allowPostCopy":true}}}',
    ]);
    expect(overrides.code).not.toBe(0);
    expect(overrides.stderr).toMatch(/spec is immutable/);
    await kubectl(['label', 'migration', 'fixed', 'team=storage']);
    const mig = await getJson<{ spec: unknown }>(['migration', 'fixed']);
    expect(mig.spec).toEqual({ vmName: 'vm01', targetNode: 'node-b' });
  });
});

describe('status', () => {
  it('written through the main resource is ignored', async () => {
    const status = { phase: 'Running', node: 'node-a', epoch: 7 };
    await kubectl(['create', '-f', '-'], manifest('VirtualMachine', 'status-drop', vmSpec, { status }));
    expect((await getJson(['virtualmachine', 'status-drop'])).status).toBeUndefined();
    await kubectl([
      'patch',
      'virtualmachine',
      'status-drop',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    expect((await getJson(['virtualmachine', 'status-drop'])).status).toBeUndefined();
  });

  it('written through the subresource is stored, and validated', async () => {
    await kubectl(['create', '-f', '-'], manifest('VirtualMachine', 'status-ok', vmSpec));
    const status = { phase: 'Running', node: 'node-a', epoch: 3, guestAddress: '10.0.0.5' };
    await kubectl([
      'patch',
      'virtualmachine',
      'status-ok',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    expect((await getJson(['virtualmachine', 'status-ok'])).status).toEqual(status);

    const bad = await cp.kubectl([
      'patch',
      'virtualmachine',
      'status-ok',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Teleporting","epoch":-1}}',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/status\.phase: Unsupported value: "Teleporting"/);
    expect(bad.stderr).toMatch(
      /status\.epoch: Invalid value: -1: epoch in body should be greater than or equal to 0/,
    );
  });

  it('rejects an unknown Migration failureReason', async () => {
    await kubectl(['create', '-f', '-'], manifest('Migration', 'failing', { vmName: 'vm01' }));
    const r = await cp.kubectl([
      'patch',
      'migration',
      'failing',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Failed","failureReason":"Gremlins"}}',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/status\.failureReason: Unsupported value: "Gremlins"/);
  });
});

describe('kubectl get', () => {
  it('shows VirtualMachine phase, node, CPUs, memory and age', async () => {
    await kubectl(['apply', '-f', join(EXAMPLES_DIR, 'virtualmachine.yaml')]);
    await kubectl([
      'patch',
      'tvm',
      'vm01',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Running","node":"node-a","epoch":1}}',
    ]);
    const [header, row] = await table(['tvm', 'vm01']);
    expect(header).toEqual(['NAME', 'PHASE', 'NODE', 'CPUS', 'MEMORY', 'AGE']);
    expect(row?.slice(0, 5)).toEqual(['vm01', 'Running', 'node-a', '2', '1Gi']);
    const [wide] = await table(['tvm', 'vm01', '-o', 'wide']);
    expect(wide).toEqual(['NAME', 'PHASE', 'NODE', 'CPUS', 'MEMORY', 'AGE', 'ADDRESS', 'EPOCH']);
  });

  it('shows Migration VM, phase, source, target, progress, downtime and age', async () => {
    await kubectl(['apply', '-f', join(EXAMPLES_DIR, 'migration.yaml')]);
    const status = {
      phase: 'Succeeded',
      sourceNode: 'node-a',
      targetNode: 'node-b',
      progress: { round: 4, percent: 100, transferredBytes: 1073741824, remainingBytes: 0 },
      downtime: { qemuMs: 41, guestGapMs: 45 },
      phaseTimings: [{ phase: 'Copying', startedAt: '2026-11-28T23:00:00Z', durationMs: 930 }],
    };
    await kubectl([
      'patch',
      'mig',
      'vm01-to-node-b',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const [header, row] = await table(['mig', 'vm01-to-node-b']);
    expect(header).toEqual(['NAME', 'VM', 'PHASE', 'SOURCE', 'TARGET', 'PROGRESS', 'DOWNTIME-MS', 'AGE']);
    expect(row?.slice(0, 7)).toEqual([
      'vm01-to-node-b',
      'vm01',
      'Succeeded',
      'node-a',
      'node-b',
      '100',
      '41',
    ]);
  });

  it('shows HypervisorNode readiness, accelerator, VMs and allocatable memory', async () => {
    const [header, row] = await table(['hvn', 'node-a']);
    expect(header).toEqual([
      'NAME',
      'READY',
      'ACCELERATOR',
      'VMS',
      'ALLOCATABLE-MEMORY',
      'UNSCHEDULABLE',
      'AGE',
    ]);
    expect(row?.slice(0, 6)).toEqual(['node-a', 'True', 'tcg', '0', '20Gi', 'false']);
  });

  it('shows MigrationPolicy priority and main settings', async () => {
    const [header, row] = await table(['migpol', 'databases']);
    expect(header).toEqual(['NAME', 'PRIORITY', 'BANDWIDTH', 'MAX-DOWNTIME-MS', 'POST-COPY', 'AGE']);
    expect(row?.slice(0, 5)).toEqual(['databases', '100', '1Gi', '300', 'false']);
  });

  it('lists all kinds under the tern category', async () => {
    const out = await kubectl(['get', 'tern', '-A', '-o', 'name']);
    for (const prefix of [
      'virtualmachine.tern.dev/',
      'migration.tern.dev/',
      'migrationpolicy.tern.dev/',
      'hypervisornode.tern.dev/',
    ]) {
      expect(out).toContain(prefix);
    }
  });
});
