// Guest cgroups (--guest-cgroup-root): each guest's shim and QEMU run in a cgroup of their own, outside the daemon's
// container cgroups, because whatever stops or restarts the daemon's container kills every process of them — runc
// (cgroup v2: it writes 1 to cgroup.kill; v1: it freezes the container's freezer cgroup and SIGKILLs every pid of
// its devices cgroup) and kubelet (a deleted pod's cgroups, in every hierarchy) — guests must outlive the container,
// not only the daemon process.
//
// On a cgroup v2 host the root is one cgroup2 directory. On a cgroup v1 (or hybrid) host the root names a path under
// the directory the hierarchies are mounted in (e.g. /sys/fs/cgroup/tern-guests): the guest's cgroup is then made in
// every hierarchy mounted there (cpu, memory, devices, freezer, pids, name=systemd, the hybrid unified one, ...),
// since each of them holds the container's processes and any of them may be the one its killer reads.
import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile, readdir, rmdir, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** statfs(2) f_type of a cgroup v2 file system. */
const CGROUP2_SUPER_MAGIC = 0x63677270;
/** statfs(2) f_type of a cgroup v1 hierarchy. */
const CGROUP_SUPER_MAGIC = 0x27e0eb;

async function fsType(dir: string): Promise<number | undefined> {
  try {
    return (await statfs(dir)).type;
  } catch {
    return undefined;
  }
}

const isCgroup2 = async (dir: string): Promise<boolean> => (await fsType(dir)) === CGROUP2_SUPER_MAGIC;
const isCgroup = async (dir: string): Promise<boolean> =>
  [CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC].includes((await fsType(dir)) ?? 0);

/**
 * The cgroup hierarchies mounted in `dir` (each a directory of its own, v1 or the hybrid unified v2; the symlinks
 * such as cpu -> cpu,cpuacct are skipped), or [] when none is.
 */
async function hierarchiesIn(dir: string): Promise<string[]> {
  if (await isCgroup(dir)) return [];
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries.sort()) {
    const hierarchy = path.join(dir, entry);
    const stat = await lstat(hierarchy).catch(() => undefined);
    if (stat?.isDirectory() && (await isCgroup(hierarchy))) found.push(hierarchy);
  }
  return found;
}

/**
 * On a cgroup v1 host, where `root` lies: the nearest ancestor that holds cgroup hierarchies, and the path below it.
 */
async function cgroupV1Layout(
  root: string,
): Promise<{ mounts: string; relative: string; hierarchies: string[] }> {
  for (let dir = path.dirname(root); ; dir = path.dirname(dir)) {
    const hierarchies = await hierarchiesIn(dir);
    if (hierarchies.length > 0) return { mounts: dir, relative: path.relative(dir, root), hierarchies };
    if (dir === path.dirname(dir)) return { mounts: '', relative: '', hierarchies: [] };
  }
}

/**
 * A cpuset v1 cgroup starts with no CPUs and no memory nodes, and no process can join it until it has some: give it
 * its parent's.
 */
async function inheritCpuset(dir: string): Promise<void> {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const own = await readFile(path.join(dir, file), 'utf8').catch(() => undefined);
    if (own === undefined || own.trim() !== '') continue;
    await writeFile(path.join(dir, file), await readFile(path.join(path.dirname(dir), file), 'utf8'));
  }
}

async function checkWritable(problem: string, dir: string): Promise<void> {
  try {
    await access(path.join(dir, 'cgroup.procs'), constants.W_OK);
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new Error(`${problem}: ${dir} is not a writable cgroup directory: ${(err as Error).message}`);
  }
}

/**
 * Makes sure `root` can hold the guests' cgroups and returns the directories they are made under: `[root]`, a
 * writable cgroup v2 directory (created when its parent is one), or on a cgroup v1 host `<hierarchy>/<relative>` for
 * every hierarchy mounted where `root` lies (created). Throws one error that says what is wrong, for the daemon to
 * refuse to start with.
 */
export async function prepareGuestCgroupRoot(root: string): Promise<string[]> {
  const problem = `--guest-cgroup-root ${root}`;
  const parent = path.dirname(root);
  if ((await isCgroup2(root)) || (await isCgroup2(parent))) {
    if (!(await isCgroup2(root))) {
      try {
        await mkdir(root);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new Error(`${problem}: cannot create it: ${(err as Error).message}`);
      }
      if (!(await isCgroup2(root))) throw new Error(`${problem}: exists but is not a cgroup v2 directory`);
    }
    await checkWritable(problem, root);
    return [root];
  }
  const { mounts, relative, hierarchies } = await cgroupV1Layout(root);
  if (hierarchies.length === 0)
    throw new Error(
      `${problem}: neither it nor its parent ${parent} is a cgroup v2 (cgroup2) directory, and no directory above it holds cgroup v1 hierarchies`,
    );
  const roots: string[] = [];
  for (const hierarchy of hierarchies) {
    const dir = path.join(hierarchy, relative);
    try {
      await createGuestCgroup(dir);
    } catch (err) {
      throw new Error(
        `${problem}: cannot create ${dir} (cgroup v1 hierarchies are mounted in ${mounts}): ${(err as Error).message}`,
      );
    }
    await checkWritable(problem, dir);
    roots.push(dir);
  }
  return roots;
}

/** The cgroups of one guest's shim and QEMU, one per root. */
export function guestCgroupDirs(roots: readonly string[], guest: string): string[] {
  return roots.map((root) => path.join(root, guest));
}

/**
 * Creates a guest's cgroup and the missing ones above it down from the first that exists (kept when it exists, e.g.
 * after a stop), checks that it is one, and gives a cpuset one its parent's CPUs and memory nodes.
 */
export async function createGuestCgroup(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  // Existence first, then the type: a parent that a concurrent call is creating is a cgroup once it can be seen.
  const parentExists = await lstat(parent).then(
    () => true,
    () => false,
  );
  if (parentExists ? !(await isCgroup(parent)) : parent === dir)
    throw new Error(`${parent} is not a cgroup directory`);
  if (!parentExists) await createGuestCgroup(parent);
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  if (!(await isCgroup(dir))) throw new Error(`${dir} is not a cgroup directory`);
  await inheritCpuset(dir);
}

/**
 * Removes a guest's cgroup once its processes are gone. The shim leaves it just after QEMU, so an EBUSY is retried
 * for `waitMs`; returns the error that remained (a process still in it), or undefined when it is gone.
 */
export async function removeGuestCgroup(dir: string, waitMs = 2_000): Promise<Error | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await rmdir(dir);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code !== 'EBUSY' || Date.now() >= deadline) return err as Error;
      await sleep(20);
    }
  }
}
