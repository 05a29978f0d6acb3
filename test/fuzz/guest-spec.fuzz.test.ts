// Property: a VirtualMachine the CRD accepts, turned into a GuestSpec by the operator (toGuestSpec) and sent over
// the wire, is accepted by the daemon's validation or refused with a GuestSpecError naming each problem; nothing
// on the way throws anything else; and an accepted spec gives a QEMU command line where no user string reaches
// QEMU's option syntax (test/fuzz/qemu-argv.ts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import {
  DNS1123_LABEL_PATTERN,
  VM_CPU_CORES_MAX,
  VM_CPU_CORES_MIN,
  VM_DISKS_MAX,
  VirtualMachineSpec,
  registerFormats,
  type VirtualMachine,
} from '../../crds/index.js';
import { loadControlProto } from '../../proto/index.js';
import { toGuestSpec } from '../../operator/src/virtualmachine/guest-spec.js';
import { fromWireSpec } from '../../hypervisor-node/src/rpc/guest-wire.js';
import { buildQemuArgv, type QemuLaunchOptions } from '../../hypervisor-node/src/qemu/argv.js';
import {
  GuestSpecError,
  validateGuestSpec,
  type ValidationPolicy,
} from '../../hypervisor-node/src/qemu/validate.js';
import { checkProperty } from './settings.js';
import { compareQuantity, dnsLabel, exactQuantity } from './crd-arbitraries.js';
import { createHostFile, expectSafeArgv, fileNameArb } from './qemu-argv.js';

registerFormats();
const createGuest = loadControlProto().GuestControl.service.CreateGuest;
const STATE_ROOT = '/var/lib/tern/guests';
const MiB = 1024n * 1024n;

let work: string;
let root: string;
let outside: string;
let policy: ValidationPolicy;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'tern-fuzz-spec-'));
  // The VMs' namespace is "default": root is its image directory, outside another namespace's.
  root = path.join(work, 'default');
  outside = path.join(work, 'elsewhere');
  await createHostFile(work, ['default', 'kernel'], { as: 'file' });
  await createHostFile(work, ['elsewhere', 'secret'], { as: 'file' });
  await writeFile(path.join(outside, 'secret'), 'not an image');
  // Limits below the CRD's, so that the node's own refusals are exercised too.
  // Every image reads as raw (the header rules have tests of their own: image-header.test.ts).
  policy = {
    imageRoots: { namespaceRoot: work, sharedRoots: [] },
    maxCpus: 8,
    maxMemoryMiB: 16384,
    inspectImage: () => Promise.resolve({ format: 'raw' }),
  };
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** HostPath's pattern and CEL rule (crds/src/virtualmachine.ts). */
const hostPathAccepted = (value: string): boolean =>
  value.length >= 2 &&
  value.length <= 4096 &&
  /^\/[^,]*$/.test(value) &&
  !value.includes('/../') &&
  !value.endsWith('/..');

/**
 * A host path as a user might write one, with what it names created on the way: a file in the namespace's root, a
 * missing one, a directory, a symlink out of the root, a file outside it, or any string the CRD allows.
 */
const hostPath: fc.Arbitrary<() => Promise<string>> = fc
  .oneof(
    {
      weight: 20,
      arbitrary: fc.record({
        kind: fc.constant('file' as const),
        segments: fc.array(
          fileNameArb((c) => c !== ','),
          { minLength: 1, maxLength: 3 },
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('missing' as const),
        segments: fc.array(
          fileNameArb((c) => c !== ','),
          { minLength: 1, maxLength: 2 },
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('directory' as const),
        segments: fc.array(
          fileNameArb((c) => c !== ','),
          { minLength: 1, maxLength: 2 },
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('escape' as const),
        segments: fc.array(
          fileNameArb((c) => c !== ','),
          { minLength: 1, maxLength: 2 },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('outside' as const), segments: fc.constant([]) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('raw' as const),
        segments: fc.array(
          fc.oneof(
            fc.constantFrom('', '.', '..', 'images', 'kernel'),
            fileNameArb((c) => c !== ','),
          ),
          { maxLength: 4 },
        ),
      }),
    },
  )
  .map(({ kind, segments }) => async () => {
    switch (kind) {
      case 'file':
        return createHostFile(root, segments, { as: 'file' });
      case 'missing':
        return `${root}/missing-${segments.join('/')}`;
      case 'directory':
        return createHostFile(root, segments, { as: 'directory' });
      case 'escape':
        return createHostFile(root, segments, { as: 'symlink', target: path.join(outside, 'secret') });
      case 'outside':
        return path.join(outside, 'secret');
      case 'raw':
        return `${root}/${segments.join('/')}`;
    }
  });

/** Memory as the CRD accepts it: int-or-string, 64Mi..1Ti, a whole number of MiB, at most 32 characters. */
const memory: fc.Arbitrary<string | number> = fc
  .oneof(
    { weight: 6, arbitrary: fc.integer({ min: 64, max: 4096 }) },
    { weight: 1, arbitrary: fc.integer({ min: 64, max: 1024 * 1024 }) },
  )
  .chain((mib) =>
    fc.constantFrom<string | number>(
      `${mib}Mi`,
      mib * 1024 * 1024,
      String(mib * 1024 * 1024),
      `${mib / 1024}Gi`,
      `${(mib * 1024 * 1024) / 1000}k`,
      `${(mib * 1024 * 1024) / 1e9}G`,
      `${mib * 1024}Ki`,
    ),
  )
  .filter((q) => {
    if (
      typeof q === 'string' &&
      (q.length > 32 || !/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.test(q))
    )
      return false;
    const { num, den } = exactQuantity(q);
    return (
      num % den === 0n &&
      (num / den) % MiB === 0n &&
      compareQuantity(q, '64Mi') >= 0 &&
      compareQuantity(q, '1Ti') <= 0
    );
  });

/** The kernel command line: what the CRD allows (no C0 control characters or DEL, at most 2000 characters). */
const cmdline: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          'panic=-1',
          'console=ttyS1',
          'tern.ip=10.0.0.2/24',
          'a,b=c',
          'x="y z"',
          '-append',
          ' ',
        ),
        fileNameArb((c) => c >= ' ' && c !== '\u007f'),
      ),
      { maxLength: 8 },
    )
    .map((words) => words.join(' ')),
  fc.string({
    unit: fc.constantFrom('a', ' ', '\u00a0', '\u2028', '\u0085', ',', '=', '"', 'é'),
    maxLength: 40,
  }),
  fc.constant('x'.repeat(1999) + ' '),
  fc.constant('é'.repeat(2000)),
);

/** Unicast MACs (the CRD's rule); mostly locally administered ones, as the operator derives them. */
const mac = fc
  .oneof(
    fc.stringMatching(/^[0-9A-Fa-f][26aeAE](:[0-9A-Fa-f]{2}){5}$/),
    fc.stringMatching(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/),
  )
  .filter((m) => /^.[02468aceACE]/.test(m));

interface VmCase {
  name: string;
  uid: string;
  cores: number;
  memory: string | number;
  boot:
    { kernel: () => Promise<string>; initrd?: () => Promise<string>; cmdline?: string } | { disk: number };
  disks: {
    name: string;
    path: () => Promise<string>;
    storage: 'shared' | 'local';
    format?: 'raw' | 'qcow2';
    readOnly?: boolean;
    bus?: 'virtio' | 'sata';
    cache?: 'writeback' | 'none' | 'writethrough';
    io?: 'threads' | 'native' | 'io_uring';
  }[];
  mac?: string;
}

const vmCase: fc.Arbitrary<VmCase> = fc
  .record(
    {
      name: dnsLabel,
      uid: fc.uuid(),
      // Mostly within the test node's limits (8 vCPUs, 16 GiB), sometimes up to the CRD's.
      cores: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: VM_CPU_CORES_MIN, max: 8 }) },
        { weight: 1, arbitrary: fc.integer({ min: VM_CPU_CORES_MIN, max: VM_CPU_CORES_MAX }) },
      ),
      memory,
      boot: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record({ kernel: hostPath, initrd: hostPath, cmdline }, { requiredKeys: ['kernel'] }),
        },
        { weight: 1, arbitrary: fc.record({ disk: fc.nat() }) },
      ),
      disks: fc.uniqueArray(
        fc.record(
          {
            name: fc.stringMatching(new RegExp(DNS1123_LABEL_PATTERN)).filter((n) => n.length <= 63),
            path: hostPath,
            format: fc.constantFrom('raw' as const, 'qcow2' as const),
            readOnly: fc.boolean(),
            storage: fc.constantFrom('shared' as const, 'local' as const),
            bus: fc.constantFrom('virtio' as const, 'sata' as const),
            cache: fc.constantFrom('writeback' as const, 'none' as const, 'writethrough' as const),
            io: fc.constantFrom('threads' as const, 'native' as const, 'io_uring' as const),
          },
          { requiredKeys: ['name', 'path', 'storage'] },
        ),
        { maxLength: VM_DISKS_MAX, selector: (disk) => disk.name, size: 'xsmall' },
      ),
      mac,
    },
    { requiredKeys: ['name', 'uid', 'cores', 'memory', 'boot', 'disks'] },
  )
  // boot.disk must name an entry of disks (the spec's CEL rule).
  .filter((c) => !('disk' in c.boot) || c.disks.length > 0);

async function virtualMachine(c: VmCase): Promise<VirtualMachine> {
  const disks = [];
  for (const disk of c.disks) {
    const { path: diskPath, ...rest } = disk;
    disks.push({ ...rest, path: await diskPath() });
  }
  const boot =
    'disk' in c.boot
      ? { disk: c.disks[c.boot.disk % c.disks.length]!.name }
      : {
          kernel: {
            path: await c.boot.kernel(),
            ...(c.boot.initrd ? { initrdPath: await c.boot.initrd() } : {}),
            ...(c.boot.cmdline === undefined ? {} : { cmdline: c.boot.cmdline }),
          },
        };
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: c.name, namespace: 'default', uid: c.uid },
    spec: {
      running: true,
      cpu: { cores: c.cores },
      memory: c.memory,
      boot,
      ...(disks.length > 0 ? { disks } : {}),
      ...(c.mac === undefined ? {} : { network: { macAddress: c.mac } }),
    },
  };
}

/** Every HostPath the VM carries satisfies the CRD (else the case is not one the apiserver would store). */
function crdAccepts(vm: VirtualMachine): boolean {
  if (!Value.Check(VirtualMachineSpec, vm.spec)) return false;
  const paths = [
    vm.spec.boot.kernel?.path,
    vm.spec.boot.kernel?.initrdPath,
    ...(vm.spec.disks ?? []).map((disk) => disk.path),
  ].filter((p): p is string => p !== undefined);
  return paths.every(hostPathAccepted);
}

const launch = (nics: number): QemuLaunchOptions => ({
  stateRoot: STATE_ROOT,
  accel: 'tcg',
  nics: Array.from({ length: nics }, (_, i) => ({ kind: 'tap' as const, ifname: `tern${i}` })),
});

describe('fuzz: VirtualMachine specs from the CRD to QEMU argv', () => {
  it('are accepted with a safe argv or refused with a GuestSpecError naming each problem', async () => {
    const outcomes = { accepted: 0, refused: 0, notCrdAccepted: 0 };
    const refusedFields = new Map<string, number>();
    await checkProperty(
      'vm-spec-to-argv',
      fc.asyncProperty(vmCase, async (c) => {
        const vm = await virtualMachine(c);
        if (!crdAccepts(vm)) {
          outcomes.notCrdAccepted++;
          return;
        }
        const wire = createGuest.requestDeserialize(createGuest.requestSerialize({ spec: toGuestSpec(vm) }));
        let spec;
        try {
          spec = await validateGuestSpec(fromWireSpec(wire.spec!), policy);
        } catch (error) {
          if (!(error instanceof GuestSpecError)) throw error;
          expect(error.problems.length).toBeGreaterThan(0);
          for (const problem of error.problems) {
            expect(problem.field).toMatch(
              /^(name|uuid|cpus|memoryMiB|machine|cpuModel|boot|boot\.\w+|boot\.cmdline\[\d+\]|disks|disks\[\d+\](\.\w+)?|nics|nics\[\d+\]\.mac)$/,
            );
            expect(problem.message).not.toBe('');
          }
          outcomes.refused++;
          for (const problem of error.problems) {
            const key = problem.field.replace(/\[\d+\]/g, '[]');
            refusedFields.set(key, (refusedFields.get(key) ?? 0) + 1);
          }
          return;
        }
        outcomes.accepted++;
        const options = launch(spec.nics.length);
        expectSafeArgv(buildQemuArgv(spec, options), spec, options);
      }),
    );
    process.stdout.write(
      `fuzz vm-spec-to-argv: ${outcomes.accepted} accepted, ${outcomes.refused} refused with a reason, ` +
        `${outcomes.notCrdAccepted} not accepted by the CRD (skipped); refusals by field: ` +
        `${JSON.stringify(Object.fromEntries(refusedFields))}\n`,
    );
    expect(outcomes.accepted).toBeGreaterThan(0);
  });
});
