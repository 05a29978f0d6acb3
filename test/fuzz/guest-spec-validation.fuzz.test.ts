// Property: whatever a caller sends as a guest spec (any JSON-ish value, wrong types, commas and control
// characters in paths, paths out of the image roots), validateGuestSpec either returns a spec whose QEMU command
// line keeps every user string out of QEMU's option syntax, or throws a GuestSpecError naming the problems. It
// never throws anything else. (The CRD-side property, which starts from VirtualMachine objects, is
// guest-spec.fuzz.test.ts.)
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { checkProperty } from './settings.js';
import { createHostFile, expectSafeArgv, fileNameArb } from './qemu-argv.js';
import { buildQemuArgv } from '../../hypervisor-node/src/qemu/argv.js';
import {
  GuestSpecError,
  validateGuestSpec,
  type ValidationPolicy,
} from '../../hypervisor-node/src/qemu/validate.js';
import type { ImageHeader } from '../../hypervisor-node/src/qemu/image-header.js';

let work: string;
let root: string;
let shared: string;
let policy: ValidationPolicy;
/** What the fake qemu-img reports for a symlink-free path (by default a raw image). */
const headers = new Map<string, ImageHeader>();

beforeAll(async () => {
  work = await realpath(await mkdtemp(path.join(tmpdir(), 'tern-fuzz-validate-')));
  root = path.join(work, 'ns', 'images');
  shared = path.join(work, 'shared');
  await createHostFile(work, ['ns', 'images', 'vmlinux'], { as: 'file' });
  await createHostFile(work, ['outside'], { as: 'file' });
  // Specs name the namespace "images" (mostly): root is its directory. Image headers come from a fake qemu-img
  // (the header rules have tests of their own: image-header.test.ts): a qcow2 disk may have a base, with any
  // characters in its name, under the shared root.
  policy = {
    imageRoots: { namespaceRoot: path.join(work, 'ns'), sharedRoots: [shared] },
    maxCpus: 4,
    maxMemoryMiB: 8192,
    inspectImage: (file) => Promise.resolve(headers.get(file) ?? { format: 'raw' }),
  };
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Mostly `valid`, sometimes `other` (a near miss), now and then anything at all or nothing. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 24, arbitrary: valid },
    { weight: 2, arbitrary: other },
    { weight: 1, arbitrary: fc.anything() },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

/** A path: mostly an existing file under the root with any characters in its name (commas included). */
const imagePath: fc.Arbitrary<() => Promise<unknown>> = fc.oneof(
  {
    weight: 24,
    arbitrary: fc
      .array(fileNameArb(), { minLength: 1, maxLength: 2 })
      .map((segments) => () => createHostFile(root, segments, { as: 'file' })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'vmlinux', '/', `/images/../outside`).map((p) => () => Promise.resolve(p)),
  },
  { weight: 1, arbitrary: fc.string().map((p) => () => Promise.resolve(`${root}/${p}`)) },
  { weight: 1, arbitrary: fc.anything().map((v) => () => Promise.resolve(v)) },
);

const specCase = fc.record({
  name: mostly(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/), fc.string()),
  uuid: mostly(fc.uuid(), fc.string()),
  namespace: mostly(fc.constant('images'), fc.constantFrom('other', 'Images', '')),
  cpus: mostly(fc.integer({ min: 1, max: 4 }), fc.oneof(fc.integer(), fc.double())),
  memoryMiB: mostly(fc.integer({ min: 64, max: 4096 }), fc.oneof(fc.integer(), fc.double())),
  machine: fc.option(
    mostly(
      fc.constantFrom('q35', 'pc', 'pc-q35-10.0'),
      fc.oneof(fc.constantFrom('help', 'q35,accel=kvm'), fc.string()),
    ),
    {
      nil: undefined,
    },
  ),
  cpuModel: fc.option(
    mostly(
      fc.constantFrom('max', 'host', 'qemu64'),
      fc.oneof(fc.constantFrom('help', 'max,+vmx'), fc.string()),
    ),
    {
      nil: undefined,
    },
  ),
  kernel: imagePath,
  initrd: fc.option(imagePath, { nil: undefined }),
  cmdline: mostly(
    fc.array(
      fc.oneof(
        fc.constantFrom('panic=-1', 'a,b=c', 'console=ttyS1', 'x="y', '-append'),
        fileNameArb((c) => c > ' ' && c !== '\u007f' && c !== '\u0085' && c !== '\u00a0' && c !== '\u2028'),
      ),
      { maxLength: 6 },
    ),
    fc.array(fc.oneof(fc.constantFrom('', ' ', 'x\ny'), fc.string()), { maxLength: 3 }),
  ),
  disks: mostly(
    fc.array(
      fc.record({
        name: mostly(fc.constantFrom('root', 'data', 'scratch'), fc.constantFrom('Root', '', 'a_b')),
        path: imagePath,
        readOnly: mostly(fc.boolean(), fc.constantFrom('true', 1)),
        format: mostly(fc.constantFrom('raw', 'qcow2', undefined), fc.constantFrom('vmdk', 'RAW')),
        bus: mostly(fc.constantFrom('virtio', 'sata'), fc.constantFrom('scsi', undefined)),
        cache: mostly(
          fc.constantFrom('writeback', 'none', 'writethrough'),
          fc.constantFrom('unsafe', undefined),
        ),
        io: mostly(fc.constantFrom('threads', 'native', 'io_uring'), fc.constantFrom('aio', undefined)),
        storage: mostly(fc.constantFrom('shared', 'local'), fc.constantFrom('nfs', undefined)),
        // Mostly false: materialise marks one disk of a disk-boot case; a stray true makes two boot disks (refused).
        boot: fc.oneof(
          { weight: 8, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant('yes') },
        ),
        // Not a spec field: the name of the base a qcow2 image's header names, if any.
        base: fc.option(fileNameArb(), { nil: undefined }),
      }),
      { maxLength: 4 },
    ),
    fc.constant('disk'),
  ),
  nics: mostly(
    fc.array(
      fc.record({ mac: mostly(fc.stringMatching(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/), fc.string()) }),
      { maxLength: 3 },
    ),
    fc.constant({}),
  ),
  /** No kernel boot: the firmware boots the disk marked boot (materialise marks the first disk). */
  diskBoot: fc.boolean(),
  notAnObject: fc.oneof(
    { weight: 30, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
});

type SpecCase = typeof specCase extends fc.Arbitrary<infer T> ? T : never;

async function materialise(c: SpecCase): Promise<unknown> {
  if (c.notAnObject) return c.name;
  // A disk generated as a record has a path still to create; anything else is passed as it is.
  const disks = Array.isArray(c.disks)
    ? await Promise.all(
        (c.disks as unknown[]).map(async (disk) => {
          if (typeof disk !== 'object' || disk === null || !('base' in disk)) return disk;
          const { base, ...rest } = disk as { base?: string; path: () => Promise<unknown>; format?: unknown };
          const diskPath = await rest.path();
          if (typeof diskPath === 'string') await describeImage(diskPath, rest.format, base);
          return { ...rest, path: diskPath };
        }),
      )
    : c.disks;
  const boot: Record<string, unknown> = { kernel: await c.kernel(), cmdline: c.cmdline };
  if (c.initrd !== undefined) boot.initrd = await c.initrd();
  const spec: Record<string, unknown> = {
    name: c.name,
    uuid: c.uuid,
    namespace: c.namespace,
    cpus: c.cpus,
    memoryMiB: c.memoryMiB,
    disks,
    nics: c.nics,
  };
  if (!c.diskBoot) spec.boot = boot;
  else if (Array.isArray(disks) && typeof disks[0] === 'object' && disks[0] !== null) {
    (disks[0] as { boot?: unknown }).boot = true;
  }
  if (c.machine !== undefined) spec.machine = c.machine;
  if (c.cpuModel !== undefined) spec.cpuModel = c.cpuModel;
  return spec;
}

/** Makes the fake qemu-img report `declared` for the file, a qcow2 with a base named `base` under the shared root. */
async function describeImage(file: string, declared: unknown, base: string | undefined): Promise<void> {
  const real = await realpath(file).catch(() => undefined);
  if (real === undefined || declared !== 'qcow2') return;
  if (base === undefined) {
    headers.set(real, { format: 'qcow2' });
    return;
  }
  const basePath = await createHostFile(shared, [base], { as: 'file' });
  headers.set(real, { format: 'qcow2', backingFilename: basePath, backingFormat: 'raw' });
}

describe('fuzz: validateGuestSpec and buildQemuArgv on any input', () => {
  it('accepts with a safe argv or refuses with a GuestSpecError, never anything else', async () => {
    let accepted = 0;
    let withBase = 0;
    await checkProperty(
      'guest-spec-validation',
      fc.asyncProperty(specCase, async (c) => {
        const input = await materialise(c);
        let spec;
        try {
          spec = await validateGuestSpec(input, policy);
        } catch (error) {
          if (!(error instanceof GuestSpecError)) throw error;
          expect(error.problems.length).toBeGreaterThan(0);
          for (const problem of error.problems) expect(problem.message).not.toBe('');
          return;
        }
        accepted++;
        if (spec.disks.some((disk) => (disk.backingChain ?? []).length > 0)) withBase++;
        const launch = {
          stateRoot: '/run/tern',
          accel: 'kvm' as const,
          incoming: true,
          nics: spec.nics.map((_, i) => ({
            kind: 'user' as const,
            hostAddress: '127.0.0.1',
            hostPort: 20000 + i,
            guestPort: 22,
          })),
        };
        expectSafeArgv(buildQemuArgv(spec, launch), spec, launch);
      }),
    );
    process.stdout.write(
      `fuzz guest-spec-validation: ${accepted} accepted, ${withBase} with a qcow2 disk on a base\n`,
    );
    expect(accepted).toBeGreaterThan(0);
  });
});
