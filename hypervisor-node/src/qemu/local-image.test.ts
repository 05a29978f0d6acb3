import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseQcow2Header, readImageHeader } from './local-image.js';

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
