// Disk image files the daemon (root) creates or removes in a namespace's directory, which a user of the namespace
// may be able to write: between two calls by path that user could swap the file, or the directory, for a symlink
// and turn a root `chown`, `qemu-img create` or `rm` onto another file. So every step goes through handles:
// - the directory is opened once and named through its handle (/proc/self/fd/<dir>/<name>), checked inside the
//   roots after it was opened, so a directory swapped later is not the one written to;
// - a new image is created under a name of its own (`.<name>.tern-<id>.part`, O_EXCL), its dev/inode recorded
//   durably before anything fills it, filled through its descriptor (ftruncate, or `qemu-img create` on
//   /proc/self/fd/3 as the QEMU user), chowned with fchown, and only then linked to its path (link fails on any
//   existing name: never an overwrite) and the part name removed, the directory fsynced after each step;
// - a file is removed only when the name still points at the dev/inode recorded (never a file the daemon did not
//   create or record).
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { link, lstat, open, realpath, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { QemuUser } from '../../qemu/run-as.js';

/**
 * A file by its path and the identity it had when the daemon created or recorded it: st_dev, st_ino and the birth
 * time (ns; '0' where the filesystem keeps none), decimal. The birth time tells a file from a later one that got
 * the same (freed) inode number.
 */
export interface FileIdentity {
  path: string;
  dev?: string;
  ino?: string;
  born?: string;
}

interface BigStats {
  dev: bigint;
  ino: bigint;
  birthtimeNs: bigint;
}

const identity = (stat: BigStats): Required<Omit<FileIdentity, 'path'>> => ({
  dev: String(stat.dev),
  ino: String(stat.ino),
  born: String(stat.birthtimeNs),
});

const sameFile = (stat: BigStats, file: FileIdentity): boolean => {
  const now = identity(stat);
  return now.dev === file.dev && now.ino === file.ino && (file.born === undefined || now.born === file.born);
};

/**
 * A local disk image a target creates, as its record file keeps it: first only the intent (path and part name,
 * no identity), then the identity of the part file created, before anything is written into it.
 */
export interface CreatedImage extends FileIdentity {
  /** The name it is created under, next to path; linked to path once complete. */
  partPath: string;
}

/** The directory could not be used, or the name exists (`exists`: never overwritten). */
export class ImageFileError extends Error {
  constructor(
    message: string,
    readonly exists = false,
  ) {
    super(message);
  }
}

export const partPathOf = (file: string, migrationId: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.tern-${migrationId}.part`);

/** A directory held open: names inside it are resolved through the handle, never through its path again. */
class PinnedDir {
  private constructor(
    private readonly handle: FileHandle,
    readonly dir: string,
  ) {}

  static async open(dir: string): Promise<PinnedDir> {
    return new PinnedDir(await open(dir, constants.O_RDONLY | constants.O_DIRECTORY), dir);
  }

  /** The opened directory's path now (it may have been renamed since it was opened). */
  realpath(): Promise<string> {
    return realpath(this.proc);
  }

  at(name: string): string {
    return `${this.proc}/${name}`;
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  private get proc(): string {
    return `/proc/self/fd/${this.handle.fd}`;
  }
}

export interface CreateImageOptions {
  /** The image's path; its directory symlink-free. */
  file: string;
  migrationId: string;
  /** True when a symlink-free directory lies inside the allowed roots (checked again on the opened directory). */
  allowed: (dir: string) => boolean;
  qemuUser: QemuUser | undefined;
  /** Writes the record durably; called with the intent first, then with the identity, before the file is filled. */
  record: (image: CreatedImage) => Promise<void>;
  /** Fills the new file through its descriptor (it is already the QEMU user's). */
  fill: (handle: FileHandle) => Promise<void>;
}

/** Creates an image file as the header comment says; throws ImageFileError (exists: true when the name is taken). */
export async function createImageFile(options: CreateImageOptions): Promise<void> {
  const { file, qemuUser } = options;
  const name = path.basename(file);
  const partPath = partPathOf(file, options.migrationId);
  const dir = await PinnedDir.open(path.dirname(file)).catch((error: Error) => {
    throw new ImageFileError(`cannot open the directory of ${file}: ${error.message}`);
  });
  try {
    const opened = await dir.realpath();
    if (opened !== path.dirname(file) || !options.allowed(opened))
      throw new ImageFileError(`the directory of ${file} changed while it was opened (now ${opened})`);
    if (await exists(dir.at(name)))
      throw new ImageFileError(`${file} already exists on this node; it is never overwritten`, true);
    const image: CreatedImage = { path: file, partPath };
    await options.record(image);
    let handle: FileHandle;
    try {
      // O_CREAT|O_EXCL (no symlink followed), owner-only until it is the QEMU user's.
      handle = await open(dir.at(path.basename(partPath)), 'wx', 0o600);
    } catch (error) {
      throw new ImageFileError(`cannot create ${partPath}: ${(error as Error).message}`);
    }
    try {
      const stat = await handle.stat({ bigint: true });
      await options.record({ ...image, ...identity(stat) });
      await dir.sync();
      if (qemuUser !== undefined) await handle.chown(qemuUser.uid, qemuUser.gid);
      await options.fill(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(dir.at(path.basename(partPath)), dir.at(name));
    } catch (error) {
      const taken = (error as NodeJS.ErrnoException).code === 'EEXIST';
      throw new ImageFileError(
        taken
          ? `${file} already exists on this node; it is never overwritten`
          : `cannot link ${partPath} to ${file}: ${(error as Error).message}`,
        taken,
      );
    }
    await dir.sync();
    await unlink(dir.at(path.basename(partPath)));
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * `qemu-img <args>` with `handle` as its fd 3 (name it /proc/self/fd/3), as the QEMU user when there is one: it
 * writes into the file the daemon created, whatever its path points at meanwhile, with no root rights.
 */
export function qemuImgOnHandle(
  args: readonly string[],
  handle: FileHandle,
  qemuUser: QemuUser | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-img', args, {
      stdio: ['ignore', 'ignore', 'pipe', handle.fd],
      ...(qemuUser !== undefined ? { uid: qemuUser.uid, gid: qemuUser.gid } : {}),
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    // Not spawn's own timeout: its timer outlives a spawn that failed (ENOENT).
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(stderr.trim().replace(/^qemu-img: /, '') || `exited ${code ?? signal}`));
    });
  });
}

/** What removeImageFile did with one name. */
export type Removal = 'removed' | 'absent' | 'not-ours';

/**
 * Removes `file` if its name still points at the recorded identity; a name pointing at anything else is left (and
 * reported `not-ours`). Without an identity (only the intent was recorded) only a part file can be ours: it is
 * removed when it is an empty regular file of the daemon's own user (which nobody else can create).
 */
export async function removeImageFile(file: FileIdentity, part = false): Promise<Removal> {
  let dir: PinnedDir;
  try {
    dir = await PinnedDir.open(path.dirname(file.path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  try {
    const at = dir.at(path.basename(file.path));
    let stat;
    try {
      stat = await lstat(at, { bigint: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
      throw error;
    }
    const ours =
      file.ino !== undefined
        ? sameFile(stat, file)
        : part && stat.isFile() && stat.size === 0n && stat.uid === BigInt(process.getuid?.() ?? -1);
    if (!ours) return 'not-ours';
    await unlink(at);
    await dir.sync();
    return 'removed';
  } finally {
    await dir.close();
  }
}

/** Removes a created image's path and part name (see removeImageFile); returns the names it left as not its own. */
export async function removeCreatedImage(image: CreatedImage): Promise<string[]> {
  const left: string[] = [];
  // Without an identity the link to `path` was never made (it comes after the identity is recorded).
  if (image.ino !== undefined && (await removeImageFile(image)) === 'not-ours') left.push(image.path);
  if ((await removeImageFile({ ...image, path: image.partPath }, true)) === 'not-ours')
    left.push(image.partPath);
  return left;
}

/** The identity of the file at `file` now (lstat: a symlink is not followed). */
export async function identityOf(file: string): Promise<FileIdentity> {
  return { path: file, ...identity(await lstat(file, { bigint: true })) };
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
