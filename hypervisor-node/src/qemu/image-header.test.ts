// The header rules on qemu-img's JSON, and the chain walk with headers given by a fake inspector (the walk on images
// crafted with the real qemu-img: test/integration/hypervisor-node/image-header.int.test.ts).
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  backingFilePath,
  checkBackingChain,
  headerProblem,
  MAX_BACKING_DEPTH,
  parseImageHeader,
  type ChainContext,
  type ImageHeader,
} from './image-header.js';

describe('parseImageHeader', () => {
  it('reads the format, the backing file and format, and a data file', () => {
    const json = JSON.stringify({
      format: 'qcow2',
      'backing-filename': 'base.qcow2',
      'full-backing-filename': '/x/base.qcow2',
      'backing-filename-format': 'qcow2',
      'format-specific': { type: 'qcow2', data: { compat: '1.1', 'data-file': '/tmp/d.raw' } },
    });
    expect(parseImageHeader(json)).toEqual({
      format: 'qcow2',
      backingFilename: 'base.qcow2',
      backingFormat: 'qcow2',
      dataFile: '/tmp/d.raw',
    });
    expect(parseImageHeader('{"format":"raw","virtual-size":1}')).toEqual({ format: 'raw' });
  });

  it('refuses output without a format', () => {
    expect(() => parseImageHeader('{"virtual-size":1}')).toThrow('no image format');
    expect(() => parseImageHeader('[]')).toThrow('no image format');
  });
});

describe('headerProblem', () => {
  it('accepts a plain image of the declared format, and a qcow2 with an explicit raw or qcow2 base', () => {
    expect(headerProblem({ format: 'raw' }, 'raw')).toBeUndefined();
    expect(headerProblem({ format: 'qcow2' }, 'qcow2')).toBeUndefined();
    expect(
      headerProblem({ format: 'qcow2', backingFilename: 'b', backingFormat: 'raw' }, 'qcow2'),
    ).toBeUndefined();
  });

  it.each([
    [{ format: 'qcow2' }, 'raw', 'is declared raw but its contents start with a qcow2 header'],
    [{ format: 'vmdk' }, 'raw', 'is declared raw but its contents start with a vmdk header'],
    [{ format: 'raw' }, 'qcow2', 'is declared qcow2 but qemu-img reads it as raw'],
    [{ format: 'qcow2', dataFile: '/etc/shadow' }, 'qcow2', 'has an external data file ("/etc/shadow")'],
    [{ format: 'qcow2', backingFilename: '/b' }, 'qcow2', 'without an explicit backing format'],
    [
      { format: 'qcow2', backingFilename: '/b', backingFormat: 'vmdk' },
      'qcow2',
      'bases must be raw or qcow2',
    ],
  ] as const)('%j declared %s: %s', (header, declared, message) => {
    expect(headerProblem(header, declared)).toContain(message);
  });
});

describe('backingFilePath', () => {
  it('resolves a relative name against the directory of the image that names it', () => {
    expect(backingFilePath('base.qcow2', '/img/ns/top.qcow2')).toEqual({ path: '/img/ns/base.qcow2' });
    expect(backingFilePath('../shared/b.raw', '/img/ns/top.qcow2')).toEqual({ path: '/img/shared/b.raw' });
    expect(backingFilePath('/etc/passwd', '/img/ns/top.qcow2')).toEqual({ path: '/etc/passwd' });
    expect(backingFilePath('/a:b/c', '/img/top.qcow2')).toEqual({ path: '/a:b/c' });
  });

  it.each(['json:{"driver":"file","filename":"/etc/shadow"}', 'nbd://evil:10809/x', 'file:/etc/passwd', ''])(
    'refuses %j',
    (name) => {
      expect(backingFilePath(name, '/img/top.qcow2')).toHaveProperty('problem');
    },
  );
});

describe('checkBackingChain', () => {
  let work: string;
  let shared: string;
  const headers = new Map<string, ImageHeader>();
  let context: ChainContext;

  beforeAll(async () => {
    work = await realpath(await mkdtemp(path.join(tmpdir(), 'tern-chain-')));
    shared = path.join(work, 'shared');
    await mkdir(shared);
    for (let i = 0; i <= MAX_BACKING_DEPTH + 1; i++) {
      await writeFile(path.join(shared, `b${i}.qcow2`), 'x');
      headers.set(path.join(shared, `b${i}.qcow2`), {
        format: 'qcow2',
        backingFilename: `b${i + 1}.qcow2`,
        backingFormat: 'qcow2',
      });
    }
    await writeFile(path.join(shared, 'loop.qcow2'), 'x');
    headers.set(path.join(shared, 'loop.qcow2'), {
      format: 'qcow2',
      backingFilename: 'loop-link.qcow2',
      backingFormat: 'qcow2',
    });
    await symlink(path.join(shared, 'loop.qcow2'), path.join(shared, 'loop-link.qcow2'));
    await mkdir(path.join(shared, 'dir.qcow2'));
    await writeFile(path.join(shared, 'to-dir.qcow2'), 'x');
    headers.set(path.join(shared, 'to-dir.qcow2'), {
      format: 'qcow2',
      backingFilename: 'dir.qcow2',
      backingFormat: 'qcow2',
    });
    await writeFile(path.join(shared, 'to-missing.qcow2'), 'x');
    headers.set(path.join(shared, 'to-missing.qcow2'), {
      format: 'qcow2',
      backingFilename: 'missing.qcow2',
      backingFormat: 'raw',
    });
    context = {
      inspect: (file) => {
        const header = headers.get(file);
        return header ? Promise.resolve(header) : Promise.reject(new Error(`no such image ${file}`));
      },
      isShared: (real) => real.startsWith(`${shared}/`),
      sharedRoots: [shared],
    };
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it(`follows at most ${MAX_BACKING_DEPTH} bases`, async () => {
    headers.set(path.join(shared, `b${MAX_BACKING_DEPTH}.qcow2`), { format: 'qcow2' });
    const ok = await checkBackingChain(path.join(shared, 'b0.qcow2'), 'qcow2', context);
    expect((ok as { chain: unknown[] }).chain).toHaveLength(MAX_BACKING_DEPTH);
    headers.set(path.join(shared, `b${MAX_BACKING_DEPTH}.qcow2`), {
      format: 'qcow2',
      backingFilename: `b${MAX_BACKING_DEPTH + 1}.qcow2`,
      backingFormat: 'qcow2',
    });
    headers.set(path.join(shared, `b${MAX_BACKING_DEPTH + 1}.qcow2`), { format: 'qcow2' });
    expect(await checkBackingChain(path.join(shared, 'b0.qcow2'), 'qcow2', context)).toEqual({
      problem: `${path.join(shared, 'b0.qcow2')} has a backing chain deeper than ${MAX_BACKING_DEPTH} bases`,
    });
  });

  it.each([
    ['loop.qcow2', 'has a backing chain that loops at'],
    ['to-dir.qcow2', 'that is not a regular file'],
    ['to-missing.qcow2', 'that cannot be resolved: ENOENT'],
    ['unknown.qcow2', 'cannot be read by qemu-img: no such image'],
  ])('refuses %s: %s', async (file, message) => {
    const result = await checkBackingChain(path.join(shared, file), 'qcow2', context);
    expect((result as { problem: string }).problem).toContain(message);
  });
});
