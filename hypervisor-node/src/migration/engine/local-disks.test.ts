import {
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DiskSpec, GuestDefinition } from '../../model/guest.js';
import { baseIdentity, readImageHeader, type LocalDiskImage } from '../../qemu/local-image.js';
import type { QemuUser } from '../../qemu/run-as.js';
import type { CreatedImage } from './image-files.js';
import {
  createTargetImage,
  diskCopyAllowanceMs,
  planTargetImages,
  removeCreatedImages,
  retainImage,
  TargetImageError,
  TargetImageExistsError,
} from './local-disks.js';
import { retainedImagePath } from '../../../../proto/index.js';

const MiB = 2 ** 20;
/** An unprivileged user to run QEMU's tools as (the tests run as root). */
const nobody: QemuUser = { uid: 65534, gid: 65534, configured: 'nobody' };
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
  /** Every record write, as the record file would hold it after each one. */
  const create = async (
    file: string,
    size = 2 * MiB,
    extra: Partial<DiskSpec> = {},
    backing?: string,
    options: { user?: QemuUser; record?: (image: CreatedImage) => Promise<void>; identity?: string } = {},
  ) => {
    const records: CreatedImage[] = [];
    const image: LocalDiskImage =
      backing === undefined
        ? { name: 'data', virtualSizeBytes: size }
        : {
            name: 'data',
            virtualSizeBytes: size,
            backingFile: backing,
            backingFormat: 'raw',
            backingIdentity: options.identity ?? (await baseIdentity(backing, undefined)),
          };
    await createTargetImage(
      { disk: disk('data', file, extra), image },
      [root],
      options.user,
      'm-1',
      async (entry) => {
        records.push({ ...entry });
        await options.record?.(entry);
      },
    );
    return records;
  };

  test('raw: a sparse file of the virtual size; the intent, then the identity, recorded before it is filled', async () => {
    const file = path.join(root, 'new.raw');
    const records = await create(file);
    expect(statSync(file).size).toBe(2 * MiB);
    const part = path.join(root, '.new.raw.tern-m-1.part');
    expect(records).toEqual([
      { path: file, partPath: part },
      {
        path: file,
        partPath: part,
        dev: String(statSync(file, { bigint: true }).dev),
        ino: String(statSync(file, { bigint: true }).ino),
        born: String(statSync(file, { bigint: true }).birthtimeNs),
      },
    ]);
    // The part name is gone once the image is at its path.
    expect(existsSync(part)).toBe(false);
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

  test("with a QEMU user: the image is that user's, and qemu-img wrote it as that user", async () => {
    const base = path.join(root, 'base-user.raw');
    writeFileSync(base, Buffer.alloc(MiB));
    const file = path.join(root, 'user.qcow2');
    await create(file, 8 * MiB, { format: 'qcow2' }, base, { user: nobody });
    expect(statSync(file)).toMatchObject({ uid: nobody.uid, gid: nobody.gid, mode: 0o100600 });
    expect((await readImageHeader(file, 'qcow2')).virtualSizeBytes).toBe(8 * MiB);
  });

  test('a directory swapped for a symlink while the image is made: everything happens in the directory opened', async () => {
    const dir = path.join(root, 'swapped');
    mkdirSync(dir);
    const aside = path.join(root, 'swapped-aside');
    const base = path.join(root, 'base-swap.raw');
    writeFileSync(base, Buffer.alloc(MiB));
    let swapped = false;
    await create(path.join(dir, 'disk.qcow2'), 4 * MiB, { format: 'qcow2' }, base, {
      user: nobody,
      record: async (entry) => {
        if (entry.ino === undefined || swapped) return;
        // A namespace user who can write the root swaps the directory for a link to a root-only place.
        renameSync(dir, aside);
        symlinkSync(outside, dir);
        swapped = true;
      },
    });
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(aside)).toEqual(['disk.qcow2']);
    expect(statSync(path.join(aside, 'disk.qcow2')).uid).toBe(nobody.uid);
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

  test('a file appearing at the path while the image is made is not overwritten; the image is removed by identity', async () => {
    const file = path.join(root, 'late.raw');
    const records: CreatedImage[] = [];
    await expect(
      create(file, MiB, {}, undefined, {
        record: async (entry) => {
          records.push(entry);
          if (entry.ino !== undefined) writeFileSync(file, 'theirs');
        },
      }),
    ).rejects.toThrow(TargetImageExistsError);
    expect(readFileSync(file, 'utf8')).toBe('theirs');
    expect(await removeCreatedImages([records.at(-1)!])).toEqual([file]);
    expect(readFileSync(file, 'utf8')).toBe('theirs');
    expect(existsSync(records.at(-1)!.partPath)).toBe(false);
  });

  test('refuses a path outside the roots (also through a symlinked directory) or without its directory', async () => {
    await expect(create(path.join(outside, 'x.raw'))).rejects.toThrow(/outside the allowed roots/);
    symlinkSync(outside, path.join(root, 'escape'));
    await expect(create(path.join(root, 'escape', 'x.raw'))).rejects.toThrow(/outside the allowed roots/);
    await expect(create(path.join(root, 'missing', 'x.raw'))).rejects.toThrow(/directory does not exist/);
    await expect(create(`${root}/../x.raw`)).rejects.toThrow(TargetImageError);
    expect(() => statSync(path.join(outside, 'x.raw'))).toThrow(/ENOENT/);
  });

  test('an overlay whose base differs here (or is missing, or has no identity from the source) is refused', async () => {
    const base = path.join(root, 'golden.raw');
    writeFileSync(base, Buffer.alloc(MiB, 1));
    const sourceIdentity = await baseIdentity(base, undefined);
    writeFileSync(base, Buffer.alloc(MiB, 2)); // same path and size, other contents
    const file = path.join(root, 'overlay.qcow2');
    await expect(create(file, MiB, { format: 'qcow2' }, base, { identity: sourceIdentity })).rejects.toThrow(
      /its base image .*golden.raw differs on this node from the source's/,
    );
    expect(existsSync(file)).toBe(false);
    await expect(
      create(file, MiB, { format: 'qcow2' }, path.join(root, 'absent.raw'), { identity: sourceIdentity }),
    ).rejects.toThrow(/cannot be read on this node/);
    await expect(
      createTargetImage(
        {
          disk: disk('data', file, { format: 'qcow2' }),
          image: { name: 'data', virtualSizeBytes: MiB, backingFile: base, backingFormat: 'raw' },
        },
        [root],
        undefined,
        'm-1',
        async () => undefined,
      ),
    ).rejects.toThrow(/sent no identity of its base/);
    expect(existsSync(file)).toBe(false);
  });
});

describe('removeCreatedImages', () => {
  test('removes the created file and leaves one put at its path since', async () => {
    const mine = path.join(root, 'mine.raw');
    const records = await createRecords(mine);
    expect(await removeCreatedImages([records.at(-1)!])).toEqual([]);
    expect(existsSync(mine)).toBe(false);

    const replaced = path.join(root, 'replaced.raw');
    const again = await createRecords(replaced);
    rmSync(replaced);
    writeFileSync(replaced, 'a file the daemon did not create');
    expect(await removeCreatedImages([again.at(-1)!])).toEqual([replaced]);
    expect(readFileSync(replaced, 'utf8')).toBe('a file the daemon did not create');
  });

  test('a crash after the part file was created but before its identity was recorded: the part goes, nothing else', async () => {
    const file = path.join(root, 'crashed.raw');
    const intent: CreatedImage[] = [];
    await expect(
      createTargetImage(
        { disk: disk('data', file), image: { name: 'data', virtualSizeBytes: MiB } },
        [root],
        undefined,
        'm-2',
        async (entry) => {
          if (entry.ino !== undefined) throw new Error('the daemon died here');
          intent.push(entry);
        },
      ),
    ).rejects.toThrow(/died here/);
    expect(intent).toEqual([{ path: file, partPath: path.join(root, '.crashed.raw.tern-m-2.part') }]);
    expect(existsSync(intent[0]!.partPath)).toBe(true);
    expect(await removeCreatedImages(intent)).toEqual([]);
    expect(existsSync(intent[0]!.partPath)).toBe(false);
    // A part name holding somebody else's file (not the daemon's user's, or not empty) is left.
    writeFileSync(intent[0]!.partPath, '');
    chownSync(intent[0]!.partPath, nobody.uid, nobody.gid);
    expect(await removeCreatedImages(intent)).toEqual([intent[0]!.partPath]);
    expect(existsSync(intent[0]!.partPath)).toBe(true);
  });

  const createRecords = async (file: string): Promise<CreatedImage[]> => {
    const records: CreatedImage[] = [];
    await createTargetImage(
      { disk: disk('data', file), image: { name: 'data', virtualSizeBytes: MiB } },
      [root],
      undefined,
      'm-3',
      async (entry) => void records.push(entry),
    );
    return records;
  };
});

test("diskCopyAllowanceMs: the policy's completion timeout per GiB of local disk (default 150 s), none without", () => {
  expect(diskCopyAllowanceMs([])).toBe(0);
  expect(diskCopyAllowanceMs([{ name: 'a', virtualSizeBytes: MiB }])).toBe(150_000);
  expect(diskCopyAllowanceMs([{ name: 'a', virtualSizeBytes: 4 * 2 ** 30 }])).toBe(600_000);
  // A policy that allows 600 s/GiB: the token must outlive the source's own bound for the copy.
  expect(diskCopyAllowanceMs([{ name: 'a', virtualSizeBytes: 4 * 2 ** 30 }], 600)).toBe(2_400_000);
  expect(
    diskCopyAllowanceMs(
      [
        { name: 'a', virtualSizeBytes: 2 ** 30 },
        { name: 'b', virtualSizeBytes: 2 ** 29 },
      ],
      40,
    ),
  ).toBe(60_000);
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
