// The chain walk on images crafted with the real qemu-img (the rules themselves: the unit tests in
// hypervisor-node/src/qemu/image-header.test.ts): each refusal names what the header points at.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkBackingChain,
  qemuImgInspector,
  type ChainContext,
} from '../../../hypervisor-node/src/qemu/image-header.js';

/**
 * qemu-img no longer creates an overlay without a backing format, but older ones did and anyone can write the
 * header: rename the backing format header extension (magic 0xe2792aca) to an unknown one, which QEMU skips.
 */
async function dropBackingFormat(file: string): Promise<void> {
  const image = await readFile(file);
  const at = image.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  if (at < 0) throw new Error(`${file} has no backing format extension`);
  image.writeUInt32BE(0x7e570001, at);
  await writeFile(file, image);
}

describe('checkBackingChain on crafted images (real qemu-img)', () => {
  let work: string;
  let shared: string;
  let ns: string;
  let context: ChainContext;
  const img = (...args: string[]): void => {
    execFileSync('qemu-img', ['create', '-q', ...args]);
  };

  beforeAll(async () => {
    work = await realpath(await mkdtemp(path.join(tmpdir(), 'tern-image-header-')));
    shared = path.join(work, 'shared');
    ns = path.join(work, 'ns');
    await mkdir(shared);
    await mkdir(ns);
    img('-f', 'raw', path.join(shared, 'base.raw'), '1M');
    img('-f', 'qcow2', '-b', path.join(shared, 'base.raw'), '-F', 'raw', path.join(shared, 'mid.qcow2'));
    img('-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', path.join(shared, 'top-base.qcow2'));
    img(
      '-f',
      'qcow2',
      '-b',
      path.join(shared, 'top-base.qcow2'),
      '-F',
      'qcow2',
      path.join(ns, 'overlay.qcow2'),
    );
    img('-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', '-u', path.join(ns, 'passwd.qcow2'), '1M');
    img('-f', 'qcow2', '-o', `data_file=${path.join(ns, 'data.raw')}`, path.join(ns, 'datafile.qcow2'), '1M');
    img('-f', 'qcow2', '-b', path.join(shared, 'base.raw'), '-F', 'raw', path.join(ns, 'nofmt.qcow2'));
    await dropBackingFormat(path.join(ns, 'nofmt.qcow2'));
    // A base under the shared root whose own base is outside it.
    img('-f', 'raw', path.join(ns, 'private.raw'), '1M');
    img('-f', 'qcow2', '-b', path.join(ns, 'private.raw'), '-F', 'raw', path.join(shared, 'leaky.qcow2'));
    img('-f', 'qcow2', '-b', path.join(shared, 'leaky.qcow2'), '-F', 'qcow2', path.join(ns, 'deep.qcow2'));
    // A symlink in the shared root pointing out of it.
    await symlink('/etc/hostname', path.join(shared, 'link.raw'));
    img(
      '-f',
      'qcow2',
      '-b',
      path.join(shared, 'link.raw'),
      '-F',
      'raw',
      '-u',
      path.join(ns, 'symlink.qcow2'),
      '1M',
    );
    img('-f', 'qcow2', path.join(ns, 'plain.qcow2'), '1M');
    await writeFile(path.join(ns, 'plain.raw'), Buffer.alloc(4096));
    context = {
      inspect: qemuImgInspector(),
      isShared: (real) => real.startsWith(`${shared}/`),
      sharedRoots: [shared],
    };
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('accepts an overlay on a shared chain and returns every base, nearest first', async () => {
    expect(await checkBackingChain(path.join(ns, 'overlay.qcow2'), 'qcow2', context)).toEqual({
      chain: [
        { path: path.join(shared, 'top-base.qcow2'), format: 'qcow2' },
        { path: path.join(shared, 'mid.qcow2'), format: 'qcow2' },
        { path: path.join(shared, 'base.raw'), format: 'raw' },
      ],
    });
  });

  it('accepts a qcow2 and a raw image without bases', async () => {
    expect(await checkBackingChain(path.join(ns, 'plain.qcow2'), 'qcow2', context)).toEqual({ chain: [] });
    expect(await checkBackingChain(path.join(ns, 'plain.raw'), 'raw', context)).toEqual({ chain: [] });
  });

  it.each([
    ['passwd.qcow2', 'qcow2', 'has a backing file /etc/passwd outside the shared image roots'],
    ['datafile.qcow2', 'qcow2', 'has an external data file'],
    ['nofmt.qcow2', 'qcow2', 'without an explicit backing format'],
    [
      'deep.qcow2',
      'qcow2',
      `its base ${'SHARED'}/leaky.qcow2 has a backing file ${'NS'}/private.raw outside`,
    ],
    ['symlink.qcow2', 'qcow2', '(resolves to /etc/hostname) outside the shared image roots'],
    ['plain.qcow2', 'raw', 'is declared raw but its contents start with a qcow2 header'],
    ['plain.raw', 'qcow2', 'is declared qcow2 but qemu-img reads it as raw'],
  ] as const)('refuses %s declared %s: %s', async (file, declared, message) => {
    const result = await checkBackingChain(path.join(ns, file), declared, context);
    expect(result).toHaveProperty('problem');
    const problem = (result as { problem: string }).problem;
    expect(problem).toContain(message.replace('SHARED', shared).replace('NS', ns));
  });

  it('says why qemu-img could not read an image', async () => {
    const result = await checkBackingChain(path.join(ns, 'missing.qcow2'), 'qcow2', context);
    expect((result as { problem: string }).problem).toContain('cannot be read by qemu-img');
  });
});
