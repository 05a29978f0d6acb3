// What a migration target needs to know of a local disk's image to create its copy: the virtual size, and for a
// qcow2 overlay its backing (base) image and the base's format. Read from the file itself (a raw image's size, a
// qcow2 header), never from QEMU, so that it costs a stat or one small read and answers while QEMU is busy.
import { open, stat } from 'node:fs/promises';
import type { DiskFormat } from '../model/guest.js';

export interface ImageHeader {
  virtualSizeBytes: number;
  /** qcow2: the backing file as the header names it. */
  backingFile?: string;
  /** qcow2 with a backing file: its format, from the header's backing-format extension. */
  backingFormat?: DiskFormat;
}

/** A `storage: local` disk's image as its node holds it (the wire's LocalDiskImage). */
export interface LocalDiskImage extends ImageHeader {
  /** DiskSpec.name. */
  name: string;
}

const QCOW2_MAGIC = 0x514649fb; // 'QFI\xfb'
const BACKING_FORMAT_EXTENSION = 0xe2792aca;
/** Enough for the header, its extensions and the backing file name (qcow2 keeps them in the first cluster). */
const HEADER_READ_BYTES = 64 * 1024;

export async function readImageHeader(file: string, format: DiskFormat): Promise<ImageHeader> {
  if (format === 'raw') return { virtualSizeBytes: (await stat(file)).size };
  const handle = await open(file, 'r');
  let header: Buffer;
  try {
    const buffer = Buffer.alloc(HEADER_READ_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    header = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  return parseQcow2Header(header, file);
}

/** The fields of a qcow2 header (versions 2 and 3) that readImageHeader reports. */
export function parseQcow2Header(header: Buffer, file = 'the image'): ImageHeader {
  if (header.length < 72 || header.readUInt32BE(0) !== QCOW2_MAGIC)
    throw new Error(`${file} is not a qcow2 image`);
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Error(`${file} is qcow2 version ${version}, not 2 or 3`);
  const size = Number(header.readBigUInt64BE(24));
  const backingOffset = Number(header.readBigUInt64BE(8));
  const backingLength = header.readUInt32BE(16);
  const result: ImageHeader = { virtualSizeBytes: size };
  if (backingOffset === 0) return result;
  if (backingOffset + backingLength > header.length)
    throw new Error(`${file}: backing file name out of reach`);
  result.backingFile = header.toString('utf8', backingOffset, backingOffset + backingLength);
  // Header extensions follow the header (72 bytes in version 2, header_length in version 3).
  let at = version === 3 ? header.readUInt32BE(100) : 72;
  while (at + 8 <= header.length) {
    const type = header.readUInt32BE(at);
    const length = header.readUInt32BE(at + 4);
    if (type === 0) break;
    if (type === BACKING_FORMAT_EXTENSION) {
      const name = header.toString('utf8', at + 8, at + 8 + length);
      if (name !== 'raw' && name !== 'qcow2')
        throw new Error(`${file}: backing format ${name} is not raw or qcow2`);
      result.backingFormat = name;
    }
    at += 8 + Math.ceil(length / 8) * 8;
  }
  if (result.backingFormat === undefined)
    throw new Error(`${file} names no backing format for ${result.backingFile} (a format is never guessed)`);
  return result;
}
