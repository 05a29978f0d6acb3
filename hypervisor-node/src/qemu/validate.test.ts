// Per-namespace image roots and shared read-only roots (docs/images.md): what a guest of one namespace may name as
// its kernel, initrd and disks, and the explicit backing nodes a validated qcow2 overlay gets in QEMU's argv.
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildQemuArgv } from './argv.js';
import type { ImageHeader } from './image-header.js';
import { checkImageRoots, GuestSpecError, validateGuestSpec, type ValidationPolicy } from './validate.js';

let work: string;
let namespaces: string;
let shared: string;
let policy: ValidationPolicy;

beforeAll(async () => {
  work = await realpath(await mkdtemp(path.join(tmpdir(), 'tern-validate-')));
  namespaces = path.join(work, 'namespaces');
  shared = path.join(work, 'shared');
  for (const dir of [shared, path.join(namespaces, 'team-a'), path.join(namespaces, 'team-b')]) {
    await mkdir(dir, { recursive: true });
  }
  for (const file of ['vmlinuz', 'initrd.img', 'golden.raw']) await writeFile(path.join(shared, file), 'x');
  for (const ns of ['team-a', 'team-b']) {
    await writeFile(path.join(namespaces, ns, 'disk.raw'), Buffer.alloc(4096));
    await writeFile(path.join(namespaces, ns, 'vmlinuz'), 'x');
  }
  // Headers as qemu-img would report them (a fake inspector: the real one is tested on crafted images in
  // test/integration/hypervisor-node/image-header.int.test.ts); every other file reads as raw.
  const headers = new Map<string, ImageHeader>([
    [path.join(shared, 'base.qcow2'), { format: 'qcow2' }],
    [
      path.join(namespaces, 'team-a', 'overlay.qcow2'),
      { format: 'qcow2', backingFilename: path.join(shared, 'base.qcow2'), backingFormat: 'qcow2' },
    ],
  ]);
  for (const file of headers.keys()) await writeFile(file, 'x');
  // team-a's symlink to team-b's disk, and a namespace directory that is a symlink to team-b's.
  await symlink(path.join(namespaces, 'team-b', 'disk.raw'), path.join(namespaces, 'team-a', 'borrowed.raw'));
  await symlink(path.join(namespaces, 'team-b'), path.join(namespaces, 'team-c'));
  policy = {
    imageRoots: { namespaceRoot: namespaces, sharedRoots: [shared] },
    maxCpus: 2,
    maxMemoryMiB: 1024,
    inspectImage: (file) => Promise.resolve(headers.get(file) ?? { format: 'raw' }),
  };
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function spec(
  namespace: string | undefined,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: 'vm1',
    uuid: '6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b',
    ...(namespace !== undefined ? { namespace } : {}),
    cpus: 1,
    memoryMiB: 128,
    boot: { kernel: `${shared}/vmlinuz`, initrd: `${shared}/initrd.img`, cmdline: [] },
    disks: [],
    nics: [],
    ...overrides,
  };
}

function disk(diskPath: string, readOnly: boolean, format: 'raw' | 'qcow2' = 'raw'): Record<string, unknown> {
  const base = { name: 'root', path: diskPath, readOnly, format, bus: 'virtio', cache: 'writeback' };
  return { ...base, io: 'threads', storage: 'local', boot: false };
}

async function problems(input: unknown, p: ValidationPolicy = policy): Promise<[string, string][]> {
  try {
    await validateGuestSpec(input, p);
  } catch (error) {
    if (error instanceof GuestSpecError) return error.problems.map((q) => [q.field, q.message]);
    throw error;
  }
  return [];
}

describe('io: io_uring', () => {
  const withIo = (io: string) =>
    spec('team-a', { disks: [{ ...disk(`${namespaces}/team-a/disk.raw`, false), io }] });

  it('is accepted where QEMU can use io_uring', async () => {
    expect(await problems(withIo('io_uring'))).toEqual([]);
  });

  it('is refused, saying why, on a node where it cannot (before QEMU starts)', async () => {
    const why = 'the kernel disables io_uring for every process (kernel.io_uring_disabled=2)';
    expect(await problems(withIo('io_uring'), { ...policy, ioUringProblem: why })).toEqual([
      ['disks[0].io', `io_uring is not available on this node: ${why}; use "threads" or "native"`],
    ]);
    expect(await problems(withIo('threads'), { ...policy, ioUringProblem: why })).toEqual([]);
  });
});

describe('a guest of namespace team-a', () => {
  it('boots a shared kernel with a writable disk of its own and a read-only shared disk', async () => {
    const input = spec('team-a', {
      disks: [
        disk(`${namespaces}/team-a/disk.raw`, false),
        { ...disk(`${shared}/golden.raw`, true), name: 'gold' },
      ],
    });
    const valid = await validateGuestSpec(input, policy);
    expect(valid.namespace).toBe('team-a');
    expect(valid.disks.map((d) => d.path)).toEqual([`${namespaces}/team-a/disk.raw`, `${shared}/golden.raw`]);
  });

  it("may use a kernel from its own directory, never from team-b's", async () => {
    expect(
      await problems(spec('team-a', { boot: { kernel: `${namespaces}/team-a/vmlinuz`, cmdline: [] } })),
    ).toEqual([]);
    const refused = await problems(
      spec('team-a', { boot: { kernel: `${namespaces}/team-b/vmlinuz`, cmdline: [] } }),
    );
    expect(refused).toEqual([
      [
        'boot.kernel',
        `${namespaces}/team-b/vmlinuz is outside its namespace's image directory ${namespaces}/team-a and the shared image roots (${shared})`,
      ],
    ]);
  });

  it.each([
    ["team-b's disk", () => disk(`${namespaces}/team-b/disk.raw`, false), 'is outside its namespace'],
    [
      "team-b's disk, read-only",
      () => disk(`${namespaces}/team-b/disk.raw`, true),
      'is outside its namespace',
    ],
    [
      "a symlink to team-b's disk",
      () => disk(`${namespaces}/team-a/borrowed.raw`, true),
      '/namespaces/team-b/disk.raw, outside',
    ],
    [
      'a shared image, writable',
      () => disk(`${shared}/golden.raw`, false),
      'is a shared image, which is read-only',
    ],
    ['a host file', () => disk('/etc/passwd', true), 'is outside'],
  ])('may not use %s as a disk', async (_what, make, message) => {
    const refused = await problems(spec('team-a', { disks: [make()] }));
    expect(refused).toHaveLength(1);
    expect(refused[0]![0]).toBe('disks[0].path');
    expect(refused[0]![1]).toContain(message);
  });

  it("gets nothing through a namespace directory that is a symlink to team-b's", async () => {
    const refused = await problems(spec('team-c', { disks: [disk(`${namespaces}/team-c/disk.raw`, false)] }));
    expect(refused).toEqual([
      [
        'disks[0].path',
        `${namespaces}/team-c/disk.raw resolves to ${namespaces}/team-b/disk.raw, outside its namespace's image directory ${namespaces}/team-c`,
      ],
    ]);
  });

  it('runs a qcow2 overlay on a shared base with an explicit backing node, and no other', async () => {
    const valid = await validateGuestSpec(
      spec('team-a', { disks: [disk(`${namespaces}/team-a/overlay.qcow2`, false, 'qcow2')] }),
      policy,
    );
    expect(valid.disks[0]!.backingChain).toEqual([{ path: `${shared}/base.qcow2`, format: 'qcow2' }]);
    const argv = buildQemuArgv(valid, { stateRoot: '/run/tern', accel: 'tcg', nics: [] });
    const nodes = argv
      .filter((_, i) => argv[i - 1] === '-blockdev')
      .map((value) => JSON.parse(value) as Record<string, unknown>);
    expect(nodes).toEqual([
      {
        driver: 'file',
        'node-name': 'disk0-base0-file',
        filename: `${shared}/base.qcow2`,
        'read-only': true,
      },
      {
        driver: 'qcow2',
        'node-name': 'disk0-base0',
        file: 'disk0-base0-file',
        'read-only': true,
        backing: null,
      },
      {
        driver: 'file',
        'node-name': 'file0',
        filename: `${namespaces}/team-a/overlay.qcow2`,
        'read-only': false,
        aio: 'threads',
        cache: { direct: false, 'no-flush': false },
      },
      {
        driver: 'qcow2',
        'node-name': 'disk0',
        file: 'file0',
        'read-only': false,
        cache: { direct: false, 'no-flush': false },
        backing: 'disk0-base0',
      },
    ]);
  });
});

describe('a guest without a namespace', () => {
  it('may use shared images only', async () => {
    expect(await problems(spec(undefined, { disks: [disk(`${shared}/golden.raw`, true)] }))).toEqual([]);
    const refused = await problems(
      spec(undefined, { disks: [disk(`${namespaces}/team-a/disk.raw`, false)] }),
    );
    expect(refused).toEqual([
      [
        'disks[0].path',
        `${namespaces}/team-a/disk.raw is outside its namespace's image directory, and the guest has no namespace`,
      ],
    ]);
  });

  it('is told when the namespace is not a label', async () => {
    expect(await problems(spec('Team_A'))).toEqual([
      ['namespace', 'must be a DNS-1123 label (a Kubernetes namespace name)'],
    ]);
  });
});

describe('a node without --image-root', () => {
  it('refuses every writable disk, naming the missing flag', async () => {
    const sharedOnly: ValidationPolicy = { ...policy, imageRoots: { sharedRoots: [shared] } };
    const refused = await problems(
      spec('team-a', { disks: [disk(`${namespaces}/team-a/disk.raw`, false)] }),
      sharedOnly,
    );
    expect(refused[0]![1]).toContain('this node has none (--image-root is not set)');
  });
});

describe('checkImageRoots', () => {
  it('accepts separate roots and refuses overlapping ones', async () => {
    await expect(
      checkImageRoots({ namespaceRoot: namespaces, sharedRoots: [shared] }),
    ).resolves.toBeUndefined();
    await expect(checkImageRoots({ namespaceRoot: work, sharedRoots: [shared] })).rejects.toThrow('overlap');
    await expect(
      checkImageRoots({ namespaceRoot: `${namespaces}/team-a`, sharedRoots: [namespaces] }),
    ).rejects.toThrow('overlap');
    await expect(checkImageRoots({ sharedRoots: [`${work}/missing`] })).rejects.toThrow(
      'cannot be resolved: ENOENT',
    );
  });
});
