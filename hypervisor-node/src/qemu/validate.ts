// Validation of a GuestDefinition before anything reaches QEMU. Every user string that later lands on QEMU's command
// line passes through here; argv.ts relies on these guarantees (no commas where QEMU's option parser would see
// them, paths that are real, absolute and inside the image roots the guest's namespace may use: docs/images.md).
import { realpath, stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import path from 'node:path';
import type {
  DiskBus,
  DiskCache,
  DiskFormat,
  DiskIo,
  DiskSpec,
  DiskStorage,
  GuestDefinition,
  KernelBoot,
  NicSpec,
} from '../model/guest.js';
import { DNS1123_LABEL, VM_SATA_DISKS_MAX } from '../../../crds/index.js';
import { checkBackingChain, qemuImgInspector, type ImageInspector } from './image-header.js';

export const MIN_MEMORY_MIB = 64;
export const MAX_CPUS = 64;
export const MAX_DISKS = 16;
/** argv.ts puts SATA disks on q35's built-in AHCI controller, one per port. */
export const MAX_SATA_DISKS = VM_SATA_DISKS_MAX;
export const MAX_NICS = 8;
/** x86 COMMAND_LINE_SIZE is 2048 including the NUL; argv.ts may prepend the serial console word. */
export const SERIAL_CONSOLE_WORD = 'console=ttyS0';
export const MAX_CMDLINE_BYTES = 2047 - SERIAL_CONSOLE_WORD.length - 1;

/**
 * Where images may come from (docs/images.md). A guest of namespace N may use anything under
 * `<namespaceRoot>/N/` (writable disks only there); anyone may use files under a shared root read-only: kernels,
 * initrds, read-only disks and qcow2 backing bases (the only place a base may lie).
 */
export interface ImageRoots {
  /** Absolute directory holding one directory per namespace; undefined: no guest may have a writable disk. */
  namespaceRoot?: string;
  /** Absolute directories of admin-provided, read-only images. */
  sharedRoots: string[];
}

export interface ValidationPolicy {
  imageRoots: ImageRoots;
  maxCpus: number;
  maxMemoryMiB: number;
  /** Reads a disk image's header; default: qemu-img as the daemon's user (the daemon gives its QEMU user's). */
  inspectImage?: ImageInspector;
  /** Why QEMU cannot use io_uring on this node (qemu/io-uring.ts); undefined: it can. */
  ioUringProblem?: string;
}

export interface SpecProblem {
  field: string;
  message: string;
}

export class GuestSpecError extends Error {
  constructor(readonly problems: SpecProblem[]) {
    super(`invalid guest spec: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    this.name = 'GuestSpecError';
  }
}

/** Host-derived limits: no more vCPUs than host threads (capped at 64), no more memory than the host has. */
export function defaultValidationPolicy(
  imageRoots: ImageRoots,
  inspectImage?: ImageInspector,
  ioUringProblem?: string,
): ValidationPolicy {
  return {
    imageRoots,
    maxCpus: Math.min(MAX_CPUS, availableParallelism()),
    maxMemoryMiB: Math.floor(totalmem() / (1024 * 1024)),
    ...(inspectImage !== undefined ? { inspectImage } : {}),
    ...(ioUringProblem !== undefined ? { ioUringProblem } : {}),
  };
}

/**
 * Refuses roots that overlap (after symlinks): a shared root inside the namespace root would make one namespace's
 * files everybody's, and the reverse would make shared images writable by a namespace. Throws with the reason.
 */
export async function checkImageRoots(imageRoots: ImageRoots): Promise<void> {
  const resolved = await Promise.all(
    [imageRoots.namespaceRoot, ...imageRoots.sharedRoots]
      .filter((root): root is string => root !== undefined)
      .map(async (root) => {
        try {
          return { root, real: await realpath(root) };
        } catch (err) {
          throw new Error(
            `image root ${root} cannot be resolved: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          );
        }
      }),
  );
  if (imageRoots.namespaceRoot === undefined) return;
  const [ns, ...shared] = resolved;
  for (const other of shared) {
    if (isInside(other.real, ns!.real) || isInside(ns!.real, other.real)) {
      throw new Error(
        `the namespace image root ${ns!.root} and the shared image root ${other.root} overlap (${ns!.real}, ${other.real})`,
      );
    }
  }
}

const DNS_LABEL = DNS1123_LABEL;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** Machine types and CPU models: a bare identifier; QEMU's ',prop=value' suffixes are not accepted. */
/**
 * One or two DNS-1123 labels joined by '/' (namespace/name): no ',' or '=', so it is safe as the value of QEMU's
 * `-name guest=...` option.
 */
const DISPLAY_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/;
const QEMU_MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'qcow2'];
const DISK_BUSES: readonly DiskBus[] = ['virtio', 'sata'];
const DISK_CACHES: readonly DiskCache[] = ['writeback', 'none', 'writethrough'];
const DISK_IO_MODES: readonly DiskIo[] = ['threads', 'native', 'io_uring'];
const DISK_STORAGES: readonly DiskStorage[] = ['shared', 'local'];

/**
 * Checks `input` against the policy and returns a normalised copy (lowercase uuid/MACs, symlink-free paths).
 * Throws GuestSpecError listing every problem, each naming its field.
 */
export async function validateGuestSpec(input: unknown, policy: ValidationPolicy): Promise<GuestDefinition> {
  const problems: SpecProblem[] = [];
  const fail = (field: string, message: string): void => {
    problems.push({ field, message });
  };
  if (!isRecord(input)) throw new GuestSpecError([{ field: 'spec', message: 'must be an object' }]);
  const namespace = input.namespace;
  if (namespace !== undefined && (typeof namespace !== 'string' || !DNS_LABEL.test(namespace))) {
    fail('namespace', 'must be a DNS-1123 label (a Kubernetes namespace name)');
  }
  const roots = await resolveRoots(
    policy.imageRoots,
    typeof namespace === 'string' && DNS_LABEL.test(namespace) ? namespace : undefined,
  );

  const name = input.name;
  if (typeof name !== 'string' || !DNS_LABEL.test(name)) {
    fail(
      'name',
      'must be a DNS-1123 label: 1-63 lowercase letters, digits or "-", starting and ending alphanumeric',
    );
  }
  const uuid = input.uuid;
  if (typeof uuid !== 'string' || !UUID.test(uuid)) {
    fail('uuid', 'must be a UUID like 6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b');
  }
  const displayName = input.displayName;
  if (displayName !== undefined && (typeof displayName !== 'string' || !DISPLAY_NAME.test(displayName))) {
    fail('displayName', 'must be one or two DNS-1123 labels joined by "/", e.g. "default/vm01"');
  }
  checkInteger(input.cpus, 'cpus', 1, Math.min(MAX_CPUS, policy.maxCpus), '', fail);
  checkInteger(input.memoryMiB, 'memoryMiB', MIN_MEMORY_MIB, policy.maxMemoryMiB, ' MiB', fail);
  for (const field of ['machine', 'cpuModel'] as const) {
    const value = input[field];
    if (value !== undefined && (typeof value !== 'string' || !QEMU_MODEL_NAME.test(value))) {
      fail(field, 'must be a plain QEMU model name (letters, digits, ".", "_", "-"; no "," or "=")');
    } else if (value === 'help') {
      fail(field, 'must name a model; "help" makes QEMU print a list and exit');
    }
  }

  const boot = input.boot === undefined ? undefined : await validateBoot(input.boot, roots, fail);
  const disks = await validateDisks(input.disks, roots, policy.ioUringProblem, fail);
  checkBootSource(input.boot !== undefined, input.disks, fail);
  const nics = validateNics(input.nics, fail);
  // Headers last, and only for an otherwise valid spec: each costs a qemu-img run.
  if (problems.length === 0) {
    await checkDiskHeaders(disks!, roots, policy.inspectImage ?? qemuImgInspector(), fail);
  }

  if (problems.length > 0) throw new GuestSpecError(problems);
  const spec: GuestDefinition = {
    name: name as string,
    uuid: (uuid as string).toLowerCase(),
    cpus: input.cpus as number,
    memoryMiB: input.memoryMiB as number,
    disks: disks as DiskSpec[],
    nics: nics as NicSpec[],
  };
  if (boot !== undefined) spec.boot = boot;
  if (displayName !== undefined) spec.displayName = displayName as string;
  if (namespace !== undefined) spec.namespace = namespace as string;
  if (input.machine !== undefined) spec.machine = input.machine as string;
  if (input.cpuModel !== undefined) spec.cpuModel = input.cpuModel as string;
  return spec;
}

type Fail = (field: string, message: string) => void;

async function validateBoot(boot: unknown, roots: Roots, fail: Fail): Promise<KernelBoot | undefined> {
  if (!isRecord(boot)) {
    fail('boot', 'must be an object with kernel, optional initrd and cmdline');
    return undefined;
  }
  const kernel = await validateImagePath(boot.kernel, 'boot.kernel', roots, 'read', fail);
  let initrd: string | undefined;
  if (boot.initrd !== undefined) {
    // For a multiboot kernel QEMU splits -initrd at commas into a module list; a Linux kernel takes it whole.
    if (typeof boot.initrd === 'string' && boot.initrd.includes(',')) {
      fail('boot.initrd', 'must not contain "," (QEMU reads -initrd as a comma-separated module list)');
    } else {
      initrd = await validateImagePath(boot.initrd, 'boot.initrd', roots, 'read', fail);
    }
  }
  const cmdline = validateCmdline(boot.cmdline, fail);
  if (kernel === undefined || cmdline === undefined || (boot.initrd !== undefined && initrd === undefined)) {
    return undefined;
  }
  return initrd === undefined ? { kernel, cmdline } : { kernel, initrd, cmdline };
}

/**
 * A guest boots one way: a kernel (`boot`), or through the firmware from exactly one disk marked `boot`. Disk entries
 * that are not objects are reported by validateDisks.
 */
function checkBootSource(kernelBoot: boolean, disks: unknown, fail: Fail): void {
  const bootDisks = (Array.isArray(disks) ? disks : []).flatMap((disk: unknown, i) =>
    isRecord(disk) && disk.boot === true ? [i] : [],
  );
  if (kernelBoot) {
    for (const i of bootDisks) {
      fail(
        `disks[${i}].boot`,
        'must be false: the guest boots its kernel (boot.kernel), the firmware boots no disk',
      );
    }
  } else if (bootDisks.length === 0) {
    fail(
      'boot',
      'the guest has no boot source: give a kernel (boot.kernel) or mark one disk with boot: true',
    );
  } else if (bootDisks.length > 1) {
    fail(
      `disks[${bootDisks[1]}].boot`,
      `only one disk can boot the guest, and disks[${bootDisks[0]}] is marked boot: true too`,
    );
  }
}

function validateCmdline(cmdline: unknown, fail: Fail): string[] | undefined {
  if (!Array.isArray(cmdline)) {
    fail('boot.cmdline', 'must be a list of words');
    return undefined;
  }
  let ok = true;
  cmdline.forEach((word: unknown, i) => {
    if (typeof word !== 'string' || word.length === 0 || /\s/.test(word) || CONTROL_CHARS.test(word)) {
      fail(`boot.cmdline[${i}]`, 'must be a non-empty word without whitespace or control characters');
      ok = false;
    }
  });
  if (!ok) return undefined;
  const words = cmdline as string[];
  if (Buffer.byteLength(words.join(' ')) > MAX_CMDLINE_BYTES) {
    fail('boot.cmdline', `is longer than the kernel's ${MAX_CMDLINE_BYTES} bytes`);
    return undefined;
  }
  return [...words];
}

async function validateDisks(
  disks: unknown,
  roots: Roots,
  ioUringProblem: string | undefined,
  fail: Fail,
): Promise<DiskSpec[] | undefined> {
  if (!Array.isArray(disks)) {
    fail('disks', 'must be a list');
    return undefined;
  }
  if (disks.length > MAX_DISKS) {
    fail('disks', `at most ${MAX_DISKS} disks`);
    return undefined;
  }
  const out: DiskSpec[] = [];
  const seen = new Set<string>();
  const names = new Set<string>();
  for (const [i, disk] of disks.entries()) {
    const field = `disks[${i}]`;
    if (!isRecord(disk)) {
      fail(field, 'must be an object with path and readOnly');
      continue;
    }
    const access = disk.readOnly === true ? 'read' : 'write';
    const diskPath = await validateImagePath(disk.path, `${field}.path`, roots, access, fail);
    if (typeof disk.name !== 'string' || !DNS_LABEL.test(disk.name)) {
      fail(`${field}.name`, 'must be a DNS-1123 label');
    } else if (names.has(disk.name)) {
      fail(`${field}.name`, `${disk.name} names another disk too`);
    }
    if (typeof disk.readOnly !== 'boolean') fail(`${field}.readOnly`, 'must be true or false');
    const format = disk.format ?? 'raw';
    if (!DISK_FORMATS.includes(format as DiskFormat)) fail(`${field}.format`, 'must be "raw" or "qcow2"');
    checkChoice(disk.bus, DISK_BUSES, `${field}.bus`, fail);
    checkChoice(disk.cache, DISK_CACHES, `${field}.cache`, fail);
    checkChoice(disk.io, DISK_IO_MODES, `${field}.io`, fail);
    checkChoice(disk.storage, DISK_STORAGES, `${field}.storage`, fail);
    if (disk.io === 'native' && disk.cache !== 'none') {
      fail(`${field}.io`, 'native needs cache "none" (native AIO works on O_DIRECT files only)');
    }
    if (disk.io === 'io_uring' && ioUringProblem !== undefined) {
      fail(
        `${field}.io`,
        `io_uring is not available on this node: ${ioUringProblem}; use "threads" or "native"`,
      );
    }
    if (typeof disk.boot !== 'boolean') fail(`${field}.boot`, 'must be true or false');
    if (diskPath === undefined || typeof disk.readOnly !== 'boolean') continue;
    if (seen.has(diskPath)) fail(`${field}.path`, `${diskPath} is already used by another disk`);
    seen.add(diskPath);
    names.add(disk.name as string);
    out.push({
      name: disk.name as string,
      path: diskPath,
      readOnly: disk.readOnly,
      format: format as DiskFormat,
      bus: disk.bus as DiskBus,
      cache: disk.cache as DiskCache,
      io: disk.io as DiskIo,
      storage: disk.storage as DiskStorage,
      boot: disk.boot as boolean,
    });
  }
  const sata = disks.filter((disk: unknown) => isRecord(disk) && disk.bus === 'sata').length;
  if (sata > MAX_SATA_DISKS) {
    fail(
      'disks',
      `at most ${MAX_SATA_DISKS} disks on bus "sata" (the q35 machine's AHCI controller has ${MAX_SATA_DISKS} ports)`,
    );
  }
  return out.length === disks.length && sata <= MAX_SATA_DISKS ? out : undefined;
}

function validateNics(nics: unknown, fail: Fail): NicSpec[] | undefined {
  if (!Array.isArray(nics)) {
    fail('nics', 'must be a list');
    return undefined;
  }
  if (nics.length > MAX_NICS) {
    fail('nics', `at most ${MAX_NICS} NICs`);
    return undefined;
  }
  const out: NicSpec[] = [];
  const seen = new Set<string>();
  nics.forEach((nic: unknown, i) => {
    const field = `nics[${i}].mac`;
    const mac = isRecord(nic) ? nic.mac : undefined;
    if (typeof mac !== 'string' || !MAC.test(mac)) {
      fail(field, 'must be a MAC address like 52:54:00:12:34:56');
      return;
    }
    const first = parseInt(mac.slice(0, 2), 16);
    if ((first & 0x01) !== 0) return fail(field, `${mac} is a multicast address; a NIC needs a unicast one`);
    if ((first & 0x02) === 0) {
      return fail(
        field,
        `${mac} is not locally administered (second-lowest bit of the first octet must be set)`,
      );
    }
    const normalised = mac.toLowerCase();
    if (seen.has(normalised)) return fail(field, `${mac} is used by another NIC`);
    seen.add(normalised);
    out.push({ mac: normalised });
  });
  return out.length === nics.length ? out : undefined;
}

/**
 * An image path must be absolute and already normal (no "..", ".", "//" or trailing "/"), lie in a directory the
 * guest may use for this `access` (its namespace's directory; for reading also a shared root), and still lie in
 * one after every symlink is resolved. Returns the resolved path, which is what QEMU is given, so a symlink
 * swapped later cannot redirect it.
 */
async function validateImagePath(
  value: unknown,
  field: string,
  roots: Roots,
  access: 'read' | 'write',
  fail: Fail,
): Promise<string | undefined> {
  if (typeof value !== 'string' || value.length === 0) {
    fail(field, 'must be a non-empty absolute path');
    return undefined;
  }
  if (CONTROL_CHARS.test(value)) {
    fail(field, 'must not contain NUL, newline or other control characters');
    return undefined;
  }
  if (!path.isAbsolute(value)) {
    fail(field, `must be an absolute path, got ${JSON.stringify(value)}`);
    return undefined;
  }
  if (value.split('/').includes('..')) {
    fail(field, `must not contain ".." segments: ${JSON.stringify(value)}`);
    return undefined;
  }
  if (path.normalize(value) !== value || (value.length > 1 && value.endsWith('/'))) {
    fail(field, `must be a normalised path (no "//", "/./" or trailing "/"): ${JSON.stringify(value)}`);
    return undefined;
  }
  const own = roots.namespaceDir;
  const inOwn = (p: string, form: 'configured' | 'resolved'): boolean =>
    own !== undefined && isInside(p, own[form]);
  const inShared = (p: string, form: 'configured' | 'resolved'): boolean =>
    roots.shared[form].some((root) => isInside(p, root));
  const lexicallyShared = inShared(value, 'configured') || inShared(value, 'resolved');
  if (!inOwn(value, 'configured') && !inOwn(value, 'resolved')) {
    if (access === 'write' && lexicallyShared) {
      fail(
        field,
        `${value} is a shared image, which is read-only; a writable disk must lie in ${ownDir(roots)}`,
      );
      return undefined;
    }
    if (!lexicallyShared) {
      fail(field, `${value} is outside ${allowedPlaces(roots, access)}`);
      return undefined;
    }
  }
  let real: string;
  try {
    real = await realpath(value);
  } catch (err) {
    fail(field, `${value} cannot be resolved: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    return undefined;
  }
  if (!inOwn(real, 'resolved') && !(access === 'read' && inShared(real, 'resolved'))) {
    fail(field, `${value} resolves to ${real}, outside ${allowedPlaces(roots, access)}`);
    return undefined;
  }
  if (!(await stat(real)).isFile()) {
    fail(field, `${value} is not a regular file`);
    return undefined;
  }
  return real;
}

function ownDir(roots: Roots): string {
  if (roots.namespaceDir !== undefined)
    return `its namespace's image directory ${roots.namespaceDir.configured}`;
  return roots.namespaceRoot === undefined
    ? 'a namespace image directory, and this node has none (--image-root is not set)'
    : `its namespace's image directory, and the guest has no namespace`;
}

function allowedPlaces(roots: Roots, access: 'read' | 'write'): string {
  if (access === 'write') return ownDir(roots);
  const shared =
    roots.shared.configured.length > 0
      ? `the shared image roots (${roots.shared.configured.join(', ')})`
      : 'the shared image roots (none configured)';
  return roots.namespaceDir === undefined
    ? `${shared}; the guest has no namespace directory`
    : `${ownDir(roots)} and ${shared}`;
}

/**
 * Reads each disk's header (qemu-img) on the resolved file: its contents must match the declared format, and a
 * qcow2 image may name no data file and only bases under a shared root (checkBackingChain). A qcow2 disk gets the
 * checked chain, which argv.ts turns into explicit backing nodes.
 */
async function checkDiskHeaders(
  disks: DiskSpec[],
  roots: Roots,
  inspect: ImageInspector,
  fail: Fail,
): Promise<void> {
  const context = {
    inspect,
    isShared: (real: string) => roots.shared.resolved.some((root) => isInside(real, root)),
    sharedRoots: roots.shared.configured,
  };
  for (const [i, disk] of disks.entries()) {
    const format = disk.format ?? 'raw';
    const checked = await checkBackingChain(disk.path, format, context);
    if ('problem' in checked) fail(`disks[${i}].path`, checked.problem);
    else if (format === 'qcow2') disk.backingChain = checked.chain;
  }
}

interface Roots {
  namespaceRoot?: string;
  /**
   * The guest's own directory, `<namespace root>/<namespace>`: as configured, for the lexical check of the path
   * the caller wrote, and under the symlink-free namespace root, for the path QEMU will open. The namespace
   * directory itself is not resolved: one that is a symlink (to another namespace's) matches nothing.
   */
  namespaceDir?: { configured: string; resolved: string };
  shared: { configured: string[]; resolved: string[] };
}

async function resolveRoots(imageRoots: ImageRoots, namespace: string | undefined): Promise<Roots> {
  const all = [
    ...imageRoots.sharedRoots,
    ...(imageRoots.namespaceRoot !== undefined ? [imageRoots.namespaceRoot] : []),
  ];
  if (all.length === 0) throw new Error('validation policy has no image roots');
  for (const root of all) if (!path.isAbsolute(root)) throw new Error(`image root ${root} is not absolute`);
  const normal = (root: string): string => (root === '/' ? root : path.normalize(root).replace(/\/+$/, ''));
  const shared = imageRoots.sharedRoots.map(normal);
  const roots: Roots = {
    shared: { configured: shared, resolved: await Promise.all(shared.map((root) => realpath(root))) },
  };
  if (imageRoots.namespaceRoot !== undefined) {
    roots.namespaceRoot = normal(imageRoots.namespaceRoot);
    if (namespace !== undefined) {
      roots.namespaceDir = {
        configured: path.join(roots.namespaceRoot, namespace),
        resolved: path.join(await realpath(roots.namespaceRoot), namespace),
      };
    }
  }
  return roots;
}

function isInside(candidate: string, root: string): boolean {
  return root === '/' || candidate === root || candidate.startsWith(`${root}/`);
}

function checkInteger(
  value: unknown,
  field: string,
  min: number,
  max: number,
  unit: string,
  fail: Fail,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(field, `must be an integer from ${min} to ${max}${unit}, got ${JSON.stringify(value)}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkChoice(value: unknown, choices: readonly string[], field: string, fail: Fail): void {
  if (typeof value !== 'string' || !choices.includes(value)) {
    fail(field, `must be one of ${choices.map((c) => `"${c}"`).join(', ')}`);
  }
}
