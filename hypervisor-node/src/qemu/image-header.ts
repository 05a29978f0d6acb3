// What a disk image's header says, read with `qemu-img info` before QEMU ever opens the image, and the rules it must
// pass: a qcow2 header can name other host files (a backing file, an external data file) that QEMU would open with
// the daemon's rights. Each level of a backing chain is read on its own (qemu-img opens no backing or data file in
// `info` without --backing-chain), and the daemon decides which base it follows, so no file outside the roots is
// ever opened, not even by qemu-img. The chain found here is what QEMU gets as explicit nodes (argv.ts).
import { execFile } from 'node:child_process';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BackingImage, DiskFormat } from '../model/guest.js';
import type { QemuUser } from './run-as.js';

/** The fields of `qemu-img info --output=json` (one level, no --backing-chain) that the rules look at. */
export interface ImageHeader {
  /** The format qemu-img probed from the contents ('raw' when no format's magic matched). */
  format: string;
  /** The backing file name as written in the header (relative to the image's directory unless absolute). */
  backingFilename?: string;
  /** The backing format the header declares; absent when the header leaves QEMU to probe it. */
  backingFormat?: string;
  /** qcow2's external data file, as written in the header. */
  dataFile?: string;
}

/** Reads one image's header; rejects with an Error whose message says why it could not. */
export type ImageInspector = (file: string) => Promise<ImageHeader>;

/** Longest backing chain accepted (bases below the disk's own image). */
export const MAX_BACKING_DEPTH = 8;
const INSPECT_TIMEOUT_MS = 10_000;
/** Address space and CPU seconds of one qemu-img run: a crafted header cannot make it eat the node. */
const INSPECT_MEMORY_BYTES = 512 * 1024 * 1024;
const INSPECT_CPU_SECONDS = 10;
const MAX_OUTPUT_BYTES = 1024 * 1024;

/** Parses `qemu-img info --output=json` of one image; throws when the output is not what qemu-img writes. */
export function parseImageHeader(json: string): ImageHeader {
  const info: unknown = JSON.parse(json);
  if (!isRecord(info) || typeof info.format !== 'string') {
    throw new Error('qemu-img info gave no image format');
  }
  const header: ImageHeader = { format: info.format };
  if (typeof info['backing-filename'] === 'string') header.backingFilename = info['backing-filename'];
  if (typeof info['backing-filename-format'] === 'string') {
    header.backingFormat = info['backing-filename-format'];
  }
  const specific = info['format-specific'];
  if (isRecord(specific) && isRecord(specific.data) && typeof specific.data['data-file'] === 'string') {
    header.dataFile = specific.data['data-file'];
  }
  return header;
}

/**
 * Why an image whose header is `header` may not be used as format `declared`, or undefined when it may. Only the
 * image itself is judged here; where its backing file lies is checkBackingChain's business.
 */
export function headerProblem(header: ImageHeader, declared: DiskFormat): string | undefined {
  if (header.format !== declared) {
    return declared === 'raw'
      ? `is declared raw but its contents start with a ${header.format} header (a raw image is never probed; give its real format)`
      : `is declared ${declared} but qemu-img reads it as ${header.format}`;
  }
  if (header.dataFile !== undefined) {
    return `has an external data file (${JSON.stringify(header.dataFile)}): qcow2 data files are refused`;
  }
  if (header.backingFilename !== undefined && header.backingFormat === undefined) {
    return `has a backing file (${JSON.stringify(header.backingFilename)}) without an explicit backing format (QEMU would probe it)`;
  }
  if (
    header.backingFormat !== undefined &&
    header.backingFormat !== 'raw' &&
    header.backingFormat !== 'qcow2'
  ) {
    return `has a backing file of format ${JSON.stringify(header.backingFormat)}; bases must be raw or qcow2`;
  }
  return undefined;
}

/**
 * The host path a header's backing file name stands for, or a reason it stands for none: QEMU reads `proto:...` and
 * `json:{...}` names as protocols and options rather than files. A relative name is relative to the directory of
 * the image (its symlink-free path) that names it.
 */
export function backingFilePath(name: string, imagePath: string): { path: string } | { problem: string } {
  // QEMU's path_has_protocol: a ':' before the first '/'.
  const colon = name.indexOf(':');
  if (colon >= 0 && (name.indexOf('/') < 0 || colon < name.indexOf('/'))) {
    return { problem: `names a protocol or options (${JSON.stringify(name)}), not a file` };
  }
  if (name === '') return { problem: 'has an empty backing file name' };
  return { path: path.resolve(path.dirname(imagePath), name) };
}

export interface ChainContext {
  inspect: ImageInspector;
  /** True when a symlink-free path lies inside a shared image root (the only place bases may come from). */
  isShared: (realPath: string) => boolean;
  /** The shared image roots, for messages. */
  sharedRoots: string[];
}

/**
 * Checks the image at `realPath` (symlink-free) declared as `declared`, then each base its header names, down the
 * chain. Returns the bases (nearest first; empty for an image without one) or the first problem, phrased to
 * follow the field name ("disks[0].path: /x.qcow2 has ...").
 */
export async function checkBackingChain(
  realPath: string,
  declared: DiskFormat,
  context: ChainContext,
): Promise<{ chain: BackingImage[] } | { problem: string }> {
  const chain: BackingImage[] = [];
  const seen = new Set<string>([realPath]);
  let current = realPath;
  let format = declared;
  for (;;) {
    let header: ImageHeader;
    try {
      header = await context.inspect(current);
    } catch (err) {
      return {
        problem: `${subject(current, realPath)}cannot be read by qemu-img: ${(err as Error).message}`,
      };
    }
    const problem = headerProblem(header, format);
    if (problem !== undefined) return { problem: `${subject(current, realPath)}${problem}` };
    if (header.backingFilename === undefined) return { chain };
    const base = backingFilePath(header.backingFilename, current);
    if ('problem' in base) return { problem: `${subject(current, realPath)}${base.problem}` };
    let baseReal: string;
    try {
      baseReal = await realpath(base.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return {
        problem: `${subject(current, realPath)}has a backing file ${base.path} that cannot be resolved: ${code}`,
      };
    }
    if (!context.isShared(baseReal)) {
      const resolved = baseReal === base.path ? '' : ` (resolves to ${baseReal})`;
      return {
        problem: `${subject(current, realPath)}has a backing file ${base.path}${resolved} outside the shared image roots (${context.sharedRoots.join(', ') || 'none configured'}); a backing file must be an admin-provided base`,
      };
    }
    if (seen.has(baseReal))
      return { problem: `${subject(current, realPath)}has a backing chain that loops at ${baseReal}` };
    if (chain.length === MAX_BACKING_DEPTH) {
      return { problem: `${realPath} has a backing chain deeper than ${MAX_BACKING_DEPTH} bases` };
    }
    if (!(await stat(baseReal)).isFile()) {
      return {
        problem: `${subject(current, realPath)}has a backing file ${baseReal} that is not a regular file`,
      };
    }
    seen.add(baseReal);
    format = header.backingFormat as DiskFormat;
    chain.push({ path: baseReal, format });
    current = baseReal;
  }
}

/** Who a problem is about: "<image> " for the disk's own image, "<image>: its base <base> " for a base. */
function subject(current: string, top: string): string {
  return current === top ? `${top} ` : `${top}: its base ${current} `;
}

export interface QemuImgOptions {
  /** Default 'qemu-img'. */
  binary?: string;
  /** Run qemu-img as this user (the daemon's --qemu-user): a crafted header meets no root process. */
  user?: QemuUser;
}

/**
 * `qemu-img info -U --output=json <file>`: -U (force-share) reads an image a running QEMU holds locked; the format
 * is probed (never given), so that a declared format can be compared with the contents; bounded by a timeout,
 * prlimit's address-space and CPU limits, and an output cap.
 */
export function qemuImgInspector(options: QemuImgOptions = {}): ImageInspector {
  const binary = options.binary ?? 'qemu-img';
  return (file) =>
    new Promise((resolve, reject) => {
      execFile(
        'prlimit',
        [
          `--as=${INSPECT_MEMORY_BYTES}`,
          `--cpu=${INSPECT_CPU_SECONDS}`,
          '--',
          binary,
          'info',
          '-U',
          '--output=json',
          file,
        ],
        {
          timeout: INSPECT_TIMEOUT_MS,
          killSignal: 'SIGKILL',
          maxBuffer: MAX_OUTPUT_BYTES,
          ...(options.user !== undefined ? { uid: options.user.uid, gid: options.user.gid } : {}),
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
        },
        (error, stdout, stderr) => {
          if (error !== null) {
            const why = error.killed
              ? `no answer within ${INSPECT_TIMEOUT_MS / 1000} s`
              : firstLine(stderr) || error.message;
            reject(
              new Error(options.user !== undefined ? `${why} (run as ${options.user.configured})` : why),
            );
            return;
          }
          try {
            resolve(parseImageHeader(stdout));
          } catch (err) {
            reject(new Error(`unexpected qemu-img output: ${(err as Error).message}`));
          }
        },
      );
    });
}

function firstLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')[0]
      ?.replace(/^qemu-img: /, '') ?? ''
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
