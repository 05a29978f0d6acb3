// Guest cgroups (--guest-cgroup-root): each guest's shim and QEMU run in <root>/<guest>, outside the daemon's
// container cgroup, because a container runtime that stops or restarts the daemon's container kills every process
// of that cgroup (runc writes 1 to cgroup.kill) — guests must outlive the container, not only the daemon process.
import { constants } from 'node:fs';
import { access, mkdir, rmdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** statfs(2) f_type of a cgroup v2 file system. */
const CGROUP2_SUPER_MAGIC = 0x63677270;

async function isCgroup2(dir: string): Promise<boolean> {
  try {
    return (await statfs(dir)).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes sure `root` is a writable cgroup v2 directory, creating it when its parent is one. Throws one error that
 * says what is wrong, for the daemon to refuse to start with.
 */
export async function prepareGuestCgroupRoot(root: string): Promise<void> {
  const problem = `--guest-cgroup-root ${root}`;
  if (!(await isCgroup2(root))) {
    const parent = path.dirname(root);
    if (!(await isCgroup2(parent)))
      throw new Error(`${problem}: neither it nor its parent ${parent} is a cgroup v2 (cgroup2) directory`);
    try {
      await mkdir(root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new Error(`${problem}: cannot create it: ${(err as Error).message}`);
    }
    if (!(await isCgroup2(root))) throw new Error(`${problem}: exists but is not a cgroup v2 directory`);
  }
  try {
    await access(path.join(root, 'cgroup.procs'), constants.W_OK);
    await access(root, constants.W_OK);
  } catch (err) {
    throw new Error(`${problem}: not a writable cgroup v2 directory: ${(err as Error).message}`);
  }
}

/** The cgroup of one guest's shim and QEMU. */
export function guestCgroupDir(root: string, guest: string): string {
  return path.join(root, guest);
}

/** Creates the guest's cgroup (kept when it exists, e.g. after a stop) and checks that it is one. */
export async function createGuestCgroup(dir: string): Promise<void> {
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  if (!(await isCgroup2(dir))) throw new Error(`${dir} is not a cgroup v2 directory`);
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
