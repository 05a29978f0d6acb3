// What a migration target needs to know of a local disk's image to create its copy: the virtual size, and for a
// qcow2 overlay its backing (base) image and the base's format. Read from the file itself (a raw image's size, a
// qcow2 header), never from QEMU, so that it costs a stat or one small read and answers while QEMU is busy.
import { spawn } from 'node:child_process';
import { open, realpath, stat } from 'node:fs/promises';
import type { DiskFormat } from '../model/guest.js';
import type { QemuUser } from './run-as.js';

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
  /** qcow2 overlay: baseIdentity() of its base as the source node holds it. */
  backingIdentity?: string;
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

const identities = new Map<string, { key: string; identity: Promise<string> }>();
const HASH_TIMEOUT_MS = 30 * 60_000;

/**
 * A base image's identity, `<bytes>:sha256:<hex>` of the file: two nodes whose base at one path gives the same
 * identity hold the same base, so an overlay on it reads the same data on both. Hashed once per file version (its
 * dev, inode, size, mtime and ctime; a hash under way is shared), by sha256sum as the QEMU user (who must be able
 * to read a base anyway; root reads nothing a header names).
 */
export async function baseIdentity(file: string, qemuUser: QemuUser | undefined): Promise<string> {
  const real = await realpath(file);
  const info = await stat(real, { bigint: true });
  if (!info.isFile()) throw new Error(`${file} is not a regular file`);
  const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  const cached = identities.get(real);
  if (cached?.key === key) return cached.identity;
  const identity = sha256File(real, qemuUser).then((hex) => `${info.size}:sha256:${hex}`);
  identities.set(real, { key, identity });
  identity.catch(() => {
    if (identities.get(real)?.identity === identity) identities.delete(real);
  });
  return identity;
}

function sha256File(file: string, qemuUser: QemuUser | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sha256sum', ['--', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(qemuUser !== undefined ? { uid: qemuUser.uid, gid: qemuUser.gid } : {}),
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), HASH_TIMEOUT_MS);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const hex = /^([0-9a-f]{64}) /.exec(stdout)?.[1];
      if (code === 0 && hex !== undefined) resolve(hex);
      else reject(new Error(`sha256sum ${file} failed: ${stderr.trim() || `exit ${code}`}`));
    });
  });
}
