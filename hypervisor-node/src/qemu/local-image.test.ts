import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { baseIdentity, parseQcow2Header, readImageHeader } from './local-image.js';

const MiB = 2 ** 20;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tern-image-header-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const qemuImg = (...args: string[]): void => void execFileSync('qemu-img', args);

describe('readImageHeader', () => {
  test('raw: the file size', async () => {
    const file = path.join(dir, 'a.raw');
    writeFileSync(file, Buffer.alloc(3 * MiB));
    expect(await readImageHeader(file, 'raw')).toEqual({ virtualSizeBytes: 3 * MiB });
  });

  test('qcow2 without a backing file (as qemu-img writes it)', async () => {
    const file = path.join(dir, 'plain.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', file, '100M');
    expect(await readImageHeader(file, 'qcow2')).toEqual({ virtualSizeBytes: 100 * MiB });
  });

  test('qcow2 overlay: its size, backing file and backing format', async () => {
    const base = path.join(dir, 'base.raw');
    writeFileSync(base, Buffer.alloc(MiB));
    const overlay = path.join(dir, 'overlay.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, '64M');
    expect(await readImageHeader(overlay, 'qcow2')).toEqual({
      virtualSizeBytes: 64 * MiB,
      backingFile: base,
      backingFormat: 'raw',
    });
    const chained = path.join(dir, 'chained.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'overlay.qcow2', '-F', 'qcow2', chained);
    expect(await readImageHeader(chained, 'qcow2')).toEqual({
      virtualSizeBytes: 64 * MiB,
      backingFile: 'overlay.qcow2',
      backingFormat: 'qcow2',
    });
  });

  test('refuses a file that is not qcow2', async () => {
    const raw = path.join(dir, 'b.raw');
    writeFileSync(raw, Buffer.alloc(4096));
    await expect(readImageHeader(raw, 'qcow2')).rejects.toThrow(/is not a qcow2 image/);
  });

  const header = (backingOffset: number, backingName: string): Buffer => {
    const buffer = Buffer.alloc(512);
    buffer.writeUInt32BE(0x514649fb, 0);
    buffer.writeUInt32BE(3, 4);
    buffer.writeBigUInt64BE(BigInt(backingOffset), 8);
    buffer.writeUInt32BE(Buffer.byteLength(backingName), 16);
    buffer.writeBigUInt64BE(BigInt(MiB), 24);
    buffer.writeUInt32BE(104, 100); // header_length; no extensions follow (end marker 0)
    buffer.write(backingName, 256);
    return buffer;
  };

  test('parseQcow2Header: an overlay without a backing format is refused (a format is never guessed)', () => {
    expect(() => parseQcow2Header(header(256, '/base.raw'))).toThrow(/names no backing format/);
  });

  test('parseQcow2Header: a backing file name beyond the bytes read is an error, not garbage', () => {
    expect(() => parseQcow2Header(header(4096, '/base.raw'))).toThrow(/out of reach/);
  });
});

describe('baseIdentity', () => {
  const nobody = { uid: 65534, gid: 65534, configured: 'nobody' };
  const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

  test('the size and sha256 of the file, hashed as the QEMU user', async () => {
    chmodSync(dir, 0o755);
    const file = path.join(dir, 'golden.raw');
    const bytes = Buffer.alloc(3 * MiB, 7);
    writeFileSync(file, bytes, { mode: 0o644 });
    expect(await baseIdentity(file, nobody)).toBe(`${3 * MiB}:sha256:${sha(bytes)}`);
    // A base the QEMU user cannot read cannot be its base either.
    const hidden = path.join(dir, 'hidden.raw');
    writeFileSync(hidden, bytes, { mode: 0o600 });
    await expect(baseIdentity(hidden, nobody)).rejects.toThrow(/Permission denied/);
  });

  test('hashed once per file version: the same file is not read again, a changed one is', async () => {
    const file = path.join(dir, 'cached.raw');
    writeFileSync(file, Buffer.alloc(MiB, 1));
    const first = await baseIdentity(file, undefined);
    // With no sha256sum to be found, only a cached identity can be answered.
    const noTools = path.join(dir, 'no-tools');
    mkdirSync(noTools);
    chmodSync(noTools, 0o755);
    const pathBefore = process.env.PATH;
    process.env.PATH = noTools;
    try {
      expect(await baseIdentity(file, undefined)).toBe(first);
      writeFileSync(file, Buffer.alloc(MiB, 2));
      await expect(baseIdentity(file, undefined)).rejects.toThrow(/sha256sum|ENOENT/);
    } finally {
      process.env.PATH = pathBefore;
    }
    expect(await baseIdentity(file, undefined)).toBe(`${MiB}:sha256:${sha(Buffer.alloc(MiB, 2))}`);
  });
});
