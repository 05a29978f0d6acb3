import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiskSpec, GuestDefinition } from '../../model/guest.js';
import { readImageHeader } from '../../qemu/local-image.js';
import {
  createTargetImage,
  diskCopyAllowanceMs,
  planTargetImages,
  retainedImagePath,
  retainImage,
  TargetImageError,
  TargetImageExistsError,
} from './local-disks.js';

const MiB = 2 ** 20;
let root: string;
let outside: string;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tern-local-disks-'));
  outside = mkdtempSync(path.join(tmpdir(), 'tern-local-disks-outside-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const disk = (name: string, file: string, extra: Partial<DiskSpec> = {}): DiskSpec => ({
  name,
  path: file,
  readOnly: false,
  format: 'raw',
  bus: 'virtio',
  cache: 'writeback',
  io: 'threads',
  storage: 'local',
  boot: false,
  ...extra,
});

const spec = (disks: DiskSpec[]): GuestDefinition => ({
  name: 'g',
  uuid: '00000000-0000-4000-8000-000000000000',
  cpus: 1,
  memoryMiB: 128,
  boot: { kernel: '/k', cmdline: [] },
  disks,
  nics: [],
});

describe('planTargetImages', () => {
  test('pairs each local disk with its image; shared disks need none', () => {
    const plan = planTargetImages(
      spec([disk('os', '/r/os.raw', { storage: 'shared' }), disk('data', '/r/data.raw')]),
      [{ name: 'data', virtualSizeBytes: MiB }],
    );
    expect(plan.map((entry) => [entry.disk.name, entry.image.virtualSizeBytes])).toEqual([['data', MiB]]);
  });

  test('refuses a read-only local disk (its target node could not take the mirror)', () => {
    expect(() =>
      planTargetImages(spec([disk('seed', '/r/seed.raw', { readOnly: true })]), [
        { name: 'seed', virtualSizeBytes: MiB },
      ]),
    ).toThrow(/read-only: migrating read-only local disks is not supported/);
  });

  test.each([
    [[], /data has no image description/],
    [[{ name: 'data', virtualSizeBytes: 0 }], /not a positive integer/],
    [
      [{ name: 'data', virtualSizeBytes: MiB, backingFile: '/b', backingFormat: 'raw' as const }],
      /is raw but/,
    ],
    [
      [
        { name: 'data', virtualSizeBytes: MiB },
        { name: 'other', virtualSizeBytes: MiB },
      ],
      /other, which is not a local disk/,
    ],
  ])('refuses %j', (images, message) => {
    expect(() => planTargetImages(spec([disk('data', '/r/data.raw')]), images)).toThrow(message);
  });
});

describe('createTargetImage', () => {
  const create = async (file: string, size = 2 * MiB, extra: Partial<DiskSpec> = {}, backing?: string) => {
    const created: string[] = [];
    const image =
      backing === undefined
        ? { name: 'data', virtualSizeBytes: size }
        : { name: 'data', virtualSizeBytes: size, backingFile: backing, backingFormat: 'raw' as const };
    await createTargetImage({ disk: disk('data', file, extra), image }, [root], undefined, async (f) => {
      created.push(f);
    });
    return created;
  };

  test('raw: a sparse file of the virtual size, reported as created', async () => {
    const file = path.join(root, 'new.raw');
    expect(await create(file)).toEqual([file]);
    expect(statSync(file).size).toBe(2 * MiB);
  });

  test('qcow2 overlay: a new overlay of the size on the same base', async () => {
    const base = path.join(root, 'base.raw');
    writeFileSync(base, Buffer.alloc(MiB));
    const file = path.join(root, 'new.qcow2');
    await create(file, 8 * MiB, { format: 'qcow2' }, base);
    expect(await readImageHeader(file, 'qcow2')).toEqual({
      virtualSizeBytes: 8 * MiB,
      backingFile: base,
      backingFormat: 'raw',
    });
  });

  test('never overwrites: an existing file (or symlink) is refused and left as it was', async () => {
    const file = path.join(root, 'taken.raw');
    writeFileSync(file, 'mine');
    await expect(create(file)).rejects.toThrow(TargetImageExistsError);
    expect(readFileSync(file, 'utf8')).toBe('mine');
    const link = path.join(root, 'link.raw');
    symlinkSync(path.join(outside, 'victim'), link);
    await expect(create(link)).rejects.toThrow(TargetImageExistsError);
    expect(() => statSync(path.join(outside, 'victim'))).toThrow(/ENOENT/);
  });

  test('refuses a path outside the roots (also through a symlinked directory) or without its directory', async () => {
    await expect(create(path.join(outside, 'x.raw'))).rejects.toThrow(/outside the allowed roots/);
    symlinkSync(outside, path.join(root, 'escape'));
    await expect(create(path.join(root, 'escape', 'x.raw'))).rejects.toThrow(/outside the allowed roots/);
    await expect(create(path.join(root, 'missing', 'x.raw'))).rejects.toThrow(/directory does not exist/);
    await expect(create(`${root}/../x.raw`)).rejects.toThrow(TargetImageError);
    expect(() => statSync(path.join(outside, 'x.raw'))).toThrow(/ENOENT/);
  });

  test('a missing base fails qemu-img; the caller learnt of the file first, so it can remove it', async () => {
    mkdirSync(path.join(root, 'sub'));
    const file = path.join(root, 'sub', 'orphan.qcow2');
    const created: string[] = [];
    await expect(
      createTargetImage(
        {
          disk: disk('data', file, { format: 'qcow2' }),
          image: {
            name: 'data',
            virtualSizeBytes: MiB,
            backingFile: '/nonexistent/base',
            backingFormat: 'raw',
          },
        },
        [root],
        undefined,
        async (f) => void created.push(f),
      ),
    ).rejects.toThrow(/qemu-img create .* failed/);
    expect(created).toEqual([file]);
  });
});

test('diskCopyAllowanceMs: the default completion timeout per GiB of local disk, none without', () => {
  expect(diskCopyAllowanceMs([])).toBe(0);
  expect(diskCopyAllowanceMs([{ name: 'a', virtualSizeBytes: MiB }])).toBe(150_000);
  expect(diskCopyAllowanceMs([{ name: 'a', virtualSizeBytes: 4 * 2 ** 30 }])).toBe(600_000);
});

describe('retainImage', () => {
  it('moves the image aside next to it, so that its path is free', async () => {
    const file = path.join(root, 'kept.img');
    writeFileSync(file, 'the disk');
    const retained = await retainImage(file, 'm1');
    expect(retained).toBe(retainedImagePath(file, 'm1'));
    expect(retained).toBe(`${file}.tern-retained-m1`);
    expect(existsSync(file)).toBe(false);
    expect(readFileSync(retained, 'utf8')).toBe('the disk');
  });

  it('is idempotent: a repeated call, or one after only the link, finishes the move', async () => {
    const file = path.join(root, 'again.img');
    writeFileSync(file, 'the disk');
    linkSync(file, retainedImagePath(file, 'm2'));
    await retainImage(file, 'm2');
    expect(existsSync(file)).toBe(false);
    await retainImage(file, 'm2');
    expect(readFileSync(retainedImagePath(file, 'm2'), 'utf8')).toBe('the disk');
  });

  it('never replaces another file at the retained path, and then leaves the image at its path', async () => {
    const file = path.join(root, 'taken.img');
    writeFileSync(file, 'the disk');
    writeFileSync(retainedImagePath(file, 'm3'), 'someone else');
    await expect(retainImage(file, 'm3')).rejects.toThrow(/already exists and is not/);
    expect(readFileSync(file, 'utf8')).toBe('the disk');
    expect(readFileSync(retainedImagePath(file, 'm3'), 'utf8')).toBe('someone else');
  });

  it('refuses when neither the image nor a retained copy exists', async () => {
    await expect(retainImage(path.join(root, 'never.img'), 'm4')).rejects.toThrow(/nothing to retain/);
  });
});
