// The unprivileged QEMU user of the test daemons (hack/setup.sh creates it) and what /proc says a QEMU runs as.
import { chmod, readFile } from 'node:fs/promises';

/** Created by hack/setup.sh (`useradd --system tern-qemu`); the Helm chart sets a uid:gid of its own. */
export const TEST_QEMU_USER = 'tern-qemu';

/** The daemon flags that make its guests' QEMU drop to TEST_QEMU_USER. */
export function qemuUserArgs(): string[] {
  return ['--qemu-user', TEST_QEMU_USER];
}

/**
 * Lets the QEMU user pass through `dir` (mode 0711: search, no listing), for a test's mkdtemp directory (0700)
 * above a daemon's state dir: QEMU reads each migration's TLS key under it after dropping privileges.
 */
export async function letQemuUserThrough(dir: string): Promise<void> {
  await chmod(dir, 0o711);
}

export interface ProcessIdentity {
  /** Real, effective, saved and file-system uid. */
  uids: number[];
  gids: number[];
  groups: number[];
  /** 2: a seccomp filter is installed. */
  seccomp: number;
  noNewPrivs: number;
}

/** The credentials and seccomp mode of a live process, from /proc/<pid>/status. */
export async function processIdentity(pid: number): Promise<ProcessIdentity> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] => {
    const line = status.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line === undefined) throw new Error(`/proc/${pid}/status has no ${name}`);
    return line
      .slice(name.length + 1)
      .trim()
      .split(/\s+/)
      .filter((word) => word !== '')
      .map(Number);
  };
  return {
    uids: field('Uid'),
    gids: field('Gid'),
    groups: field('Groups'),
    seccomp: field('Seccomp')[0]!,
    noNewPrivs: field('NoNewPrivs')[0]!,
  };
}
