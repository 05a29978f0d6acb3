// Live migration of `storage: local` disks, QEMU's supported way (docs/interop/live-block-operations.rst, "QMP
// invocation for live storage migration with blockdev-mirror + NBD"; libvirt's qemu_migration.c does the same):
// the target creates an empty image per local disk (a new overlay on the same base for a qcow2 overlay), starts
// its incoming QEMU on them and exports each one, writable, from QEMU's NBD server behind the migration's TLS-PSK
// credentials; the source adds an NBD client node per disk and mirrors its disk into it (`blockdev-mirror`, sync
// `full`, or `top` for an overlay), waits until every mirror is READY, switches them to write-blocking (each guest
// write reaches both copies before it completes), and only then migrates the memory. At the switchover (guest
// paused) each mirror is completed with a non-forced `block-job-cancel` (a READY mirror then concludes with a
// point-in-time copy), its NBD node removed, and the target stops its NBD server before `cont`.
//
// Block node names come from qemu/argv.ts: `file<i>` (protocol) and `disk<i>` (format) per disk index, identical on
// both nodes. The export, the NBD client node and the mirror job are named after the disk index too.
import { link, realpath, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { DiskFormat, DiskSpec, GuestDefinition } from '../../model/guest.js';
import { backingFilePath } from '../../qemu/image-header.js';
import { baseIdentity, readImageHeader, type LocalDiskImage } from '../../qemu/local-image.js';
import type { QmpClient, QmpEvent } from '../../qemu/qmp-client.js';
import type { QemuUser } from '../../qemu/run-as.js';
import {
  createImageFile,
  ImageFileError,
  qemuImgOnHandle,
  removeCreatedImage,
  type CreatedImage,
} from './image-files.js';
import { DEFAULT_MIGRATION_POLICY } from './policy.js';
import { retainedImagePath } from '../../../../proto/index.js';

export const exportName = (index: number): string => `disk${index}`;
export const nbdNodeName = (index: number): string => `tern-nbd${index}`;
export const mirrorJobId = (index: number): string => `tern-mirror${index}`;
const exportId = (index: number): string => `tern-export${index}`;

/** The indices (in spec.disks, i.e. argv's disk<i>) of the guest's `storage: local` disks. */
export function localDiskIndices(spec: GuestDefinition): number[] {
  return spec.disks.flatMap((disk, index) => (disk.storage === 'local' ? [index] : []));
}

// ----- target -----

/** The target cannot create a local disk's image (outside the roots, no directory, no base image, qemu-img). */
export class TargetImageError extends Error {}
/** A file exists where the target would create a local disk's image: it is never overwritten. */
export class TargetImageExistsError extends TargetImageError {}

/** A local disk the target creates: its spec entry and the source's image. */
export interface TargetImage {
  disk: DiskSpec;
  image: LocalDiskImage;
}

/**
 * Pairs each local disk of `spec` with the source's image of it; throws saying what is missing or inconsistent
 * (an image for a disk the spec does not name as local, a qcow2 backing file on a raw disk).
 */
export function planTargetImages(spec: GuestDefinition, images: readonly LocalDiskImage[]): TargetImage[] {
  const byName = new Map(images.map((image) => [image.name, image]));
  const local = spec.disks.filter((disk) => disk.storage === 'local');
  for (const image of images) {
    if (!local.some((disk) => disk.name === image.name))
      throw new Error(`local_disks names ${image.name}, which is not a local disk of the guest`);
  }
  return local.map((disk) => {
    const image = byName.get(disk.name);
    if (image === undefined)
      throw new Error(
        `local disk ${disk.name} has no image description (size) from the source in local_disks`,
      );
    if (!Number.isSafeInteger(image.virtualSizeBytes) || image.virtualSizeBytes <= 0)
      throw new Error(
        `local disk ${disk.name}: virtual size ${image.virtualSizeBytes} is not a positive integer`,
      );
    // The incoming QEMU opens a read-only disk read-only, and a read-only node cannot take the mirror's writes.
    if (disk.readOnly)
      throw new Error(
        `local disk ${disk.name} is read-only: migrating read-only local disks is not supported`,
      );
    if ((disk.format ?? 'raw') === 'raw' && image.backingFile !== undefined)
      throw new Error(`local disk ${disk.name} is raw but its image names a backing file`);
    return { disk, image };
  });
}

/**
 * Creates the target's empty image for one local disk at the disk's path, which must lie inside an allowed root
 * (its directory must exist there, symlinks resolved). Never overwrites: a file already there is refused, and only
 * a file this call created is ever written (image-files.ts: by handle, dev/inode recorded through `record` before
 * it is filled). Raw: a sparse file of the virtual size; qcow2: an image of the virtual size, on the same backing
 * file (and format) as the source's overlay, whose base must exist here with the source's identity.
 */
export async function createTargetImage(
  target: TargetImage,
  roots: readonly string[],
  qemuUser: QemuUser | undefined,
  migrationId: string,
  record: (image: CreatedImage) => Promise<void>,
): Promise<void> {
  const { disk, image } = target;
  const { file, allowed } = await creatablePath(disk.path, roots);
  const qcow2 = disk.format === 'qcow2';
  if (qcow2 && image.backingFile !== undefined) await checkBase(disk, image, file, qemuUser);
  try {
    await createImageFile({
      file,
      migrationId,
      allowed,
      qemuUser,
      record,
      fill: async (handle) => {
        if (!qcow2) return handle.truncate(image.virtualSizeBytes);
        const args = ['create', '-q', '-f', 'qcow2'];
        // -u: the base is not opened through the fd's name (checkBase found it); the header names it as the
        // source's overlay does (relative names: next to the overlay).
        if (image.backingFile !== undefined)
          args.push('-u', '-b', image.backingFile, '-F', image.backingFormat as DiskFormat);
        args.push('/proc/self/fd/3', String(image.virtualSizeBytes));
        await qemuImgOnHandle(args, handle, qemuUser).catch((error: Error) => {
          throw new TargetImageError(`qemu-img create ${file} failed: ${error.message}`);
        });
      },
    });
  } catch (error) {
    if (error instanceof ImageFileError) {
      const message = `local disk ${disk.name}: ${error.message}`;
      throw error.exists ? new TargetImageExistsError(message) : new TargetImageError(message);
    }
    throw error;
  }
}

/**
 * A qcow2 overlay's base must be here and be the source's: the same path with other contents would make the
 * migrated overlay read other data under the guest (silent corruption). Compared by baseIdentity.
 */
async function checkBase(
  disk: DiskSpec,
  image: LocalDiskImage,
  file: string,
  qemuUser: QemuUser | undefined,
): Promise<void> {
  const base = backingFilePath(image.backingFile!, file);
  if ('problem' in base)
    throw new TargetImageError(`local disk ${disk.name}: the source's overlay ${base.problem}`);
  if (image.backingIdentity === undefined)
    throw new TargetImageError(
      `local disk ${disk.name}: the source sent no identity of its base ${base.path}, so this node cannot tell whether its own base is the same`,
    );
  let here: string;
  try {
    here = await baseIdentity(base.path, qemuUser);
  } catch (error) {
    throw new TargetImageError(
      `local disk ${disk.name}: its base image ${base.path} cannot be read on this node: ${(error as Error).message}`,
    );
  }
  if (here !== image.backingIdentity)
    throw new TargetImageError(
      `local disk ${disk.name}: its base image ${base.path} differs on this node from the source's (here ${here}, source ${image.backingIdentity}): the overlay would read other data; not migrating`,
    );
}

/**
 * The path to create for `wanted`: its directory resolved (it must exist inside a root), the name as given; and the
 * check of a resolved directory against the roots, for the directory once it is open.
 */
async function creatablePath(
  wanted: string,
  roots: readonly string[],
): Promise<{ file: string; allowed: (dir: string) => boolean }> {
  if (!path.isAbsolute(wanted) || path.normalize(wanted) !== wanted || wanted.split('/').includes('..'))
    throw new TargetImageError(
      `local disk path ${JSON.stringify(wanted)} must be a normalised absolute path`,
    );
  const resolvedRoots = await Promise.all(roots.map((root) => realpath(root).catch(() => undefined)));
  const inside = (file: string, root: string | undefined): boolean =>
    root !== undefined && (file === root || file.startsWith(root.endsWith('/') ? root : `${root}/`));
  const dir = await realpath(path.dirname(wanted)).catch(() => {
    throw new TargetImageError(`local disk path ${wanted}: its directory does not exist on this node`);
  });
  const allowed = (resolved: string): boolean => resolvedRoots.some((root) => inside(resolved, root));
  if (!allowed(dir))
    throw new TargetImageError(
      `local disk path ${wanted} is outside the allowed roots (${roots.join(', ')})`,
    );
  return { file: path.join(dir, path.basename(wanted)), allowed };
}

/**
 * How much longer than its token's TTL a target with local disks accepts the memory stream: the source copies the
 * disks first, bounded by its policy's completion timeout per GiB of disk (`perGiBSeconds`, PrepareIncoming's
 * disk_copy_timeout_per_gib_seconds; 0: the default policy's), the same bound the source applies to the disks'
 * total virtual size, and the memory stream's TLS handshake needs the key file after that. 0 without local disks.
 */
export function diskCopyAllowanceMs(images: readonly LocalDiskImage[], perGiBSeconds = 0): number {
  if (images.length === 0) return 0;
  const bytes = images.reduce((sum, image) => sum + image.virtualSizeBytes, 0);
  const perGiB = perGiBSeconds > 0 ? perGiBSeconds : DEFAULT_MIGRATION_POLICY.completionTimeoutPerGiBSeconds;
  return Math.ceil(perGiB * 1000 * Math.max(1, bytes / 2 ** 30));
}

/**
 * Removes the images this daemon created for a migration that did not reach the hand-over: each name only while it
 * still points at the file created (removeCreatedImage). Returns the names left because they were not its own.
 */
export async function removeCreatedImages(images: readonly CreatedImage[]): Promise<string[]> {
  const left: string[] = [];
  for (const image of images) left.push(...(await removeCreatedImage(image)));
  return left;
}

/**
 * Moves a source's local disk image aside to retainedImagePath (ReleaseSource with retain_local_disks): a hard link,
 * then the old name unlinked, so that a file already at the retained path is never replaced. Idempotent: a call
 * repeated after the move (or after only the link) finishes it. Throws, leaving the image where it is, when
 * another file holds the retained path.
 */
export async function retainImage(file: string, migrationId: string): Promise<string> {
  const retained = retainedImagePath(file, migrationId);
  try {
    await link(file, retained);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // Moved by an earlier call; anything else (no image, no retained copy) is not ours to explain away.
      await stat(retained).catch(() => {
        throw new Error(`${file} is gone and ${retained} does not exist: nothing to retain`);
      });
      return retained;
    }
    if (code !== 'EEXIST') throw error;
    const [image, there] = await Promise.all([stat(file), stat(retained)]);
    if (image.ino !== there.ino || image.dev !== there.dev)
      throw new Error(`${retained} already exists and is not ${file}: the image stays at its path`);
  }
  await unlink(file);
  return retained;
}

/**
 * Starts QEMU's NBD server on `host` behind the TLS credentials `tlsCredsId` (the migration's PSK) and exports
 * each local disk (`disk<i>`) writable under its node name. Returns the port: a free one the daemon picked
 * (QEMU 10 cannot report the port it bound), tried again if another process took it meanwhile.
 */
export async function exportTargetDisks(
  qmp: QmpClient,
  host: string,
  indices: readonly number[],
  tlsCredsId: string,
): Promise<number> {
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort(host);
    try {
      await qmp.execute('nbd-server-start', {
        addr: { type: 'inet', data: { host, port: String(port) } },
        'tls-creds': tlsCredsId,
      });
      break;
    } catch (error) {
      if (attempt >= 3) throw new Error(`nbd-server-start failed: ${(error as Error).message}`);
    }
  }
  for (const index of indices) {
    // An export of an inactive node (the incoming QEMU's) activates it (QEMU's block-export-add).
    await qmp.execute('block-export-add', {
      type: 'nbd',
      id: exportId(index),
      'node-name': `disk${index}`,
      name: exportName(index),
      writable: true,
    });
  }
  return port;
}

/** Before `cont` on the target: the exports and the NBD server go, so nothing but the guest writes its disks. */
export async function stopTargetExports(qmp: QmpClient, indices: readonly number[]): Promise<void> {
  for (const index of indices) {
    await qmp.execute('block-export-del', { id: exportId(index) }).catch(() => undefined);
  }
  // nbd-server-stop also closes any export left; an error other than "not running" keeps the guest paused.
  await qmp.execute('nbd-server-stop').catch((error: Error) => {
    if (!/not running/i.test(error.message)) throw error;
  });
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ----- source -----

export interface MirroredDisk {
  index: number;
  /** `top` for a qcow2 overlay on a base image (only the overlay is copied), `full` otherwise. */
  sync: 'full' | 'top';
}

/** The local disks of the running guest `spec` and how each is mirrored (a qcow2 overlay: `top`). */
export async function mirroredDisks(spec: GuestDefinition): Promise<MirroredDisk[]> {
  return Promise.all(
    localDiskIndices(spec).map(async (index) => {
      const disk = spec.disks[index]!;
      if (disk.format !== 'qcow2') return { index, sync: 'full' as const };
      const header = await readImageHeader(disk.path, 'qcow2');
      return { index, sync: header.backingFile === undefined ? ('full' as const) : ('top' as const) };
    }),
  );
}

export interface DiskCopyProgress {
  transferredBytes: number;
  totalBytes: number;
  /** Every mirror is READY (source and target in sync; each write from now on reaches both). */
  ready: boolean;
  /** Set when a mirror job ended on its own (an error, or the job vanished): the copy failed. */
  failure?: string;
}

interface QmpBlockJob {
  device: string;
  len: number;
  offset: number;
  ready: boolean;
  status: string;
  error?: string;
}

/** The source's mirror jobs of one migration, and their NBD client nodes. */
export class DiskMirror {
  private readonly started = new Set<number>();
  private readonly nodes = new Set<number>();

  constructor(
    private readonly qmp: QmpClient,
    private readonly disks: readonly MirroredDisk[],
    private readonly target: { host: string; port: number },
    private readonly tlsCredsId: string,
    /** Bytes/s for each mirror job; 0 = unlimited. */
    private readonly speed: number,
  ) {}

  get count(): number {
    return this.disks.length;
  }

  /** Adds the NBD client nodes and starts one mirror per disk (background copy mode). */
  async start(): Promise<void> {
    for (const { index, sync } of this.disks) {
      await this.qmp.execute('blockdev-add', {
        driver: 'nbd',
        'node-name': nbdNodeName(index),
        server: { type: 'inet', host: this.target.host, port: String(this.target.port) },
        export: exportName(index),
        'tls-creds': this.tlsCredsId,
      });
      this.nodes.add(index);
      await this.qmp.execute('blockdev-mirror', {
        'job-id': mirrorJobId(index),
        device: `disk${index}`,
        target: nbdNodeName(index),
        sync,
        speed: this.speed,
        // Concluded jobs stay listed until dismissed, so their end (and error) is read, not raced for.
        'auto-dismiss': false,
      });
      this.started.add(index);
    }
  }

  async progress(): Promise<DiskCopyProgress> {
    const jobs = await this.jobs();
    let transferredBytes = 0;
    let totalBytes = 0;
    let ready = true;
    let failure: string | undefined;
    for (const index of this.started) {
      const job = jobs.get(mirrorJobId(index));
      if (job === undefined || job.status === 'concluded' || job.status === 'null') {
        failure ??= `the mirror of disk${index} ended${job?.error ? `: ${job.error}` : ' unexpectedly'}`;
        ready = false;
        continue;
      }
      transferredBytes += job.offset;
      totalBytes += job.len;
      ready &&= job.ready;
    }
    return { transferredBytes, totalBytes, ready, ...(failure !== undefined ? { failure } : {}) };
  }

  /** After READY: each guest write completes only once it reached the target too, so the copy cannot fall behind. */
  async writeBlocking(): Promise<void> {
    for (const index of this.started) {
      await this.qmp.execute('block-job-change', {
        id: mirrorJobId(index),
        type: 'mirror',
        'copy-mode': 'write-blocking',
      });
    }
  }

  /**
   * At the switchover (guest paused): completes every mirror (non-forced `block-job-cancel` of a READY mirror
   * concludes with the target a point-in-time copy) and removes the NBD client nodes. Returns what the concluded
   * jobs copied (each job's final offset, which equals its length: everything it had to copy). Throws when a mirror
   * is not READY or concludes with an error; the caller then fails the migration (abandon() cleans up).
   */
  async complete(timeoutMs: number): Promise<{ transferredBytes: number; totalBytes: number }> {
    const before = await this.jobs();
    for (const index of this.started) {
      const job = before.get(mirrorJobId(index));
      if (job === undefined || !job.ready)
        throw new Error(`the mirror of disk${index} is not in sync (${job?.status ?? 'gone'})`);
    }
    // The guest is paused and waits for this: each job's status change wakes the check at once (the poll below
    // only backs the events up).
    const changes = new JobChanges(this.qmp);
    let copied = { transferredBytes: 0, totalBytes: 0 };
    try {
      for (const index of this.started)
        await this.qmp.execute('block-job-cancel', { device: mirrorJobId(index) });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const jobs = await this.jobs();
        const pending = [...this.started].filter(
          (index) => jobs.get(mirrorJobId(index))?.status !== 'concluded',
        );
        if (pending.length === 0) {
          const failed = [...this.started].find((index) => jobs.get(mirrorJobId(index))?.error !== undefined);
          if (failed !== undefined)
            throw new Error(
              `the mirror of disk${failed} failed at completion: ${jobs.get(mirrorJobId(failed))!.error}`,
            );
          for (const index of this.started) {
            const job = jobs.get(mirrorJobId(index))!;
            copied = {
              transferredBytes: copied.transferredBytes + job.offset,
              totalBytes: copied.totalBytes + job.len,
            };
          }
          break;
        }
        if (Date.now() >= deadline)
          throw new Error(
            `the mirrors of ${pending.map((i) => `disk${i}`).join(', ')} did not complete in ${timeoutMs} ms`,
          );
        await changes.next(Math.min(100, deadline - Date.now()));
      }
    } finally {
      changes.close();
    }
    await this.dismissAndRemove();
    return copied;
  }

  /**
   * The migration did not complete: every mirror is cancelled (forced: the target's copy is dropped anyway), the
   * jobs dismissed and the NBD client nodes removed; the source's own disk is untouched. Best effort, bounded.
   */
  async abandon(timeoutMs = 10_000): Promise<void> {
    // Out of band, first: a hung NBD connection (a link that drops packets) would hold the cancel until TCP gives
    // up; yanked, its requests fail at once and the jobs conclude.
    if (this.nodes.size > 0) {
      const instances = [...this.nodes].map((index) => ({
        type: 'block-node',
        'node-name': nbdNodeName(index),
      }));
      await this.qmp.executeOob('yank', { instances }).catch(() => undefined);
    }
    for (const index of this.started) {
      await this.qmp
        .execute('block-job-cancel', { device: mirrorJobId(index), force: true })
        .catch(() => undefined);
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const jobs = await this.jobs().catch(() => undefined);
      if (jobs === undefined) break;
      const live = [...this.started].filter((index) => {
        const status = jobs.get(mirrorJobId(index))?.status;
        return status !== undefined && status !== 'concluded' && status !== 'null';
      });
      if (live.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.dismissAndRemove().catch(() => undefined);
  }

  /**
   * After a daemon restart: removes whatever mirror jobs and NBD nodes of ours the guest's QEMU holds (a migration
   * the previous daemon left copying is cancelled anyway).
   */
  static async abandonAll(qmp: QmpClient, spec: GuestDefinition): Promise<void> {
    const disks = localDiskIndices(spec).map((index) => ({ index, sync: 'full' as const }));
    const mirror = new DiskMirror(qmp, disks, { host: '', port: 0 }, '', 0);
    for (const { index } of disks) {
      mirror.started.add(index);
      mirror.nodes.add(index);
    }
    await mirror.abandon();
  }

  private async dismissAndRemove(): Promise<void> {
    for (const index of [...this.started]) {
      await this.qmp.execute('job-dismiss', { id: mirrorJobId(index) }).catch(() => undefined);
      this.started.delete(index);
    }
    for (const index of [...this.nodes]) {
      await this.qmp.execute('blockdev-del', { 'node-name': nbdNodeName(index) }).catch(() => undefined);
      this.nodes.delete(index);
    }
  }

  private async jobs(): Promise<Map<string, QmpBlockJob>> {
    const list = await this.qmp.execute<QmpBlockJob[]>('query-block-jobs');
    return new Map(list.map((job) => [job.device, job]));
  }
}

/** Block-job status changes (QMP's JOB_STATUS_CHANGE) of a QEMU, from construction until close(). */
class JobChanges {
  private seen = false;
  private wake: (() => void) | undefined;
  private readonly listener = (event: QmpEvent): void => {
    if (event.event !== 'JOB_STATUS_CHANGE') return;
    this.seen = true;
    this.wake?.();
  };

  constructor(private readonly qmp: QmpClient) {
    qmp.on('event', this.listener);
  }

  /** Resolves at the next change, at once if one came since the last call, or after `timeoutMs`. */
  next(timeoutMs: number): Promise<void> {
    if (this.seen) {
      this.seen = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.seen = false;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.wake = done;
    });
  }

  close(): void {
    this.qmp.off('event', this.listener);
    this.wake?.();
  }
}
