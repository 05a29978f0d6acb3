// What the fuzz properties check of a QEMU command line built from a spec the daemon accepted
// (hypervisor-node/src/qemu/argv.ts): every user string stays in an argument QEMU takes whole or in JSON syntax,
// never in QEMU's `key=value,key=value` option syntax, where a ',' or '=' in it would add options. Also the host
// files the properties point specs at: names with every character a path may hold.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import type { GuestDefinition } from '../../hypervisor-node/src/model/guest.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import type { QemuLaunchOptions } from '../../hypervisor-node/src/qemu/argv.js';
import { DNS1123_LABEL } from '../../crds/index.js';

/** Options that take no value. */
const FLAGS = new Set(['-nodefaults', '-no-user-config', '-S']);
/** Options whose value QEMU parses as `key=value,…` (or similar) syntax: no user string may appear in them. */
const KEYVAL = new Set([
  '-machine',
  '-accel',
  '-cpu',
  '-m',
  '-smp',
  '-display',
  '-msg',
  '-qmp',
  '-chardev',
  '-serial',
  '-incoming',
  '-sandbox',
  '-run-with',
  '-boot',
]);
/** Options whose value QEMU takes in JSON syntax when it starts with '{'. */
const JSON_OPTIONS = new Set(['-blockdev', '-device', '-netdev']);
/** Options whose value QEMU takes whole. */
const PLAIN = new Set(['-name', '-uuid', '-pidfile', '-kernel', '-initrd', '-append']);

const QEMU_MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Throws (through expect) unless argv is safe for `spec`: known options only, each with its value; user strings
 * only where QEMU reads them whole or as JSON; JSON values that parse back to exactly the user's strings.
 */
export function expectSafeArgv(argv: string[], spec: GuestDefinition, launch: QemuLaunchOptions): void {
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const option = argv[i]!;
    if (FLAGS.has(option)) continue;
    if (!KEYVAL.has(option) && !JSON_OPTIONS.has(option) && !PLAIN.has(option)) {
      throw new Error(`argv[${i}] ${JSON.stringify(option)} is not an option the daemon passes`);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${option} has no value`);
    values.set(option, [...(values.get(option) ?? []), value]);
  }
  const one = (option: string): string | undefined => {
    const all = values.get(option) ?? [];
    expect(all.length).toBeLessThanOrEqual(1);
    return all[0];
  };

  // -name is QEMU option syntax too (guest=…,debug-threads=…): only DNS-1123 labels (and the '/' between the
  // display name's namespace and name) may go there.
  expect(one('-name')).toBe(`guest=${spec.displayName ?? spec.name}`);
  expect(DNS1123_LABEL.test(spec.name)).toBe(true);
  for (const label of (spec.displayName ?? spec.name).split('/'))
    expect(DNS1123_LABEL.test(label)).toBe(true);
  expect(one('-uuid')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(one('-machine')).toMatch(QEMU_MODEL_NAME);
  expect(one('-cpu')).toMatch(QEMU_MODEL_NAME);
  expect(one('-pidfile')).toBe(guestPaths(launch.stateRoot, spec.name).pid);

  // Kernel and initrd are taken whole, except that QEMU splits -initrd at commas (multiboot module lists).
  const boot = spec.boot;
  if (boot === undefined) {
    // Disk boot: the firmware boots the disk with a bootindex, and only that disk.
    expect([one('-kernel'), one('-initrd'), one('-append')]).toEqual([undefined, undefined, undefined]);
    expect(one('-boot')).toBe('strict=on');
  } else {
    expect(one('-boot')).toBeUndefined();
    expect(one('-kernel')).toBe(boot.kernel);
    const initrd = one('-initrd');
    expect(initrd).toBe(boot.initrd);
    if (initrd !== undefined) expect(initrd).not.toContain(',');
    const append = one('-append')!;
    expect(CONTROL_CHARS.test(append)).toBe(false);
    expect(append.split(' ').filter((w) => w !== '')).toEqual(
      boot.cmdline.some((w) => w.startsWith('console=')) ? boot.cmdline : ['console=ttyS0', ...boot.cmdline],
    );
  }

  // Option syntax holds only what the daemon chose: its own state paths, ids and numbers.
  const ownDir = path.join(launch.stateRoot, spec.name);
  for (const option of KEYVAL) {
    for (const value of values.get(option) ?? []) {
      expect(value).toMatch(/^[A-Za-z0-9._/:=,-]*$/);
      for (const piece of value.split(/[,=]|:(?=\/)/)) {
        if (piece.startsWith('/')) expect(piece.startsWith(`${ownDir}/`)).toBe(true);
      }
    }
  }

  // JSON syntax: every value parses, and the disks' filenames are exactly the validated paths (each disk's bases,
  // deepest first, then its own image), once each.
  const filenames: string[] = [];
  const macs: string[] = [];
  const bootIndexes: unknown[] = [];
  for (const option of JSON_OPTIONS) {
    for (const value of values.get(option) ?? []) {
      expect(value.startsWith('{')).toBe(true);
      const parsed = JSON.parse(value) as Record<string, unknown>;
      if (option === '-blockdev' && parsed.driver === 'file') filenames.push(parsed.filename as string);
      if (option === '-device' && parsed.driver === 'virtio-net-pci') macs.push(parsed.mac as string);
      if (option === '-device' && parsed.drive !== undefined) bootIndexes.push(parsed.bootindex);
    }
  }
  expect(filenames).toEqual(
    spec.disks.flatMap((disk) => [
      ...(disk.backingChain ?? []).map((base) => base.path).reverse(),
      disk.path,
    ]),
  );
  expect(bootIndexes).toEqual(spec.disks.map((disk) => (disk.boot ? 0 : undefined)));
  expect(macs).toEqual(spec.nics.map((nic) => nic.mac));
}

/** Characters a file name may hold that mean something to a shell, to QEMU's option parser or to JSON. */
export const NASTY_CHARS = [
  ...'=:,"\'\\{}[]$;&|*?#%@!~^()<>+ .-_',
  '\t',
  '\n',
  '\u00a0',
  '\u0085',
  '\u2028',
  'é',
  '€',
  '😀',
];

/**
 * One path segment (file or directory name); `allow` filters characters (e.g. no ',' where the CRD forbids it).
 * Never '.', '..' or longer than a file name may be.
 */
export const fileNameArb = (allow: (char: string) => boolean = () => true): fc.Arbitrary<string> =>
  fc
    .string({
      unit: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...'abcxyz019'.split('')) },
        { weight: 2, arbitrary: fc.constantFrom(...NASTY_CHARS) },
      ),
      minLength: 1,
      maxLength: 24,
    })
    .filter((name) => name !== '.' && name !== '..' && [...name].every(allow));

/**
 * Creates `relative` (segments joined by '/') under `root` as a regular file, or, with `as: 'symlink'`, as a link to
 * `target`. Failures (a name taken by a directory, a segment that is a file) are left for the validator to find.
 */
export async function createHostFile(
  root: string,
  segments: string[],
  kind: { as: 'file' } | { as: 'directory' } | { as: 'symlink'; target: string },
): Promise<string> {
  const full = path.join(root, ...segments);
  try {
    await mkdir(path.dirname(full), { recursive: true });
    if (kind.as === 'file') await writeFile(full, 'image');
    else if (kind.as === 'directory') await mkdir(full, { recursive: true });
    else await symlink(kind.target, full);
  } catch {
    // Exists in another form already: the path still names something (or nothing) for the validator.
  }
  return `${root}/${segments.join('/')}`;
}
