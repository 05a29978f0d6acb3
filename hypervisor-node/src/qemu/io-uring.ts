// Whether QEMU may use io_uring (a disk's `io: io_uring`) on this node. Kernels since 6.6 have the sysctl
// kernel.io_uring_disabled (0: allowed; 1: only for CAP_SYS_ADMIN and the group kernel.io_uring_group; 2: for
// nobody), and container runtimes often block the system calls with seccomp. QEMU finds out only when it opens the
// disk and fails to start; the daemon finds out once at start-up (the sysctl, then one real open with qemu-io as the
// QEMU user) and refuses such a disk when it validates the spec, saying why.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { QemuUser } from './run-as.js';

const PROBE_TIMEOUT_MS = 10_000;

/**
 * Why io_uring is not available to QEMU given the sysctls (undefined where the kernel has none), or undefined when
 * it is as far as they tell. `user`: who QEMU runs as (undefined: root, which keeps CAP_SYS_ADMIN).
 */
export function ioUringSysctlProblem(
  disabled: number | undefined,
  group: number | undefined,
  user: QemuUser | undefined,
): string | undefined {
  if (disabled === undefined || disabled === 0) return undefined;
  if (disabled === 2) return 'the kernel disables io_uring for every process (kernel.io_uring_disabled=2)';
  if (user === undefined || (group !== undefined && group >= 0 && user.gid === group)) return undefined;
  return (
    `the kernel allows io_uring only to privileged processes and group kernel.io_uring_group=${group ?? -1} ` +
    `(kernel.io_uring_disabled=1), and QEMU runs as ${user.configured} (gid ${user.gid})`
  );
}

export interface IoUringProbeOptions {
  /** Where the sysctls are (default /proc/sys/kernel). */
  sysctlDir?: string;
  /** Default 'qemu-io'; a node without it is judged by the sysctls alone. */
  qemuIo?: string;
}

/** Why QEMU cannot use io_uring on this node, or undefined when it can. */
export async function ioUringProblem(
  user: QemuUser | undefined,
  options: IoUringProbeOptions = {},
): Promise<string | undefined> {
  const sysctlDir = options.sysctlDir ?? '/proc/sys/kernel';
  const sysctl = async (name: string): Promise<number | undefined> => {
    const text = await readFile(path.join(sysctlDir, name), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : Number(text.trim());
  };
  const problem = ioUringSysctlProblem(
    await sysctl('io_uring_disabled'),
    await sysctl('io_uring_group'),
    user,
  );
  return problem ?? probe(user, options.qemuIo ?? 'qemu-io');
}

/** One read through io_uring with qemu-io, as the QEMU user: what a seccomp filter or the kernel refuses shows. */
async function probe(user: QemuUser | undefined, qemuIo: string): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tern-io-uring-'));
  try {
    await chmod(dir, 0o755);
    const file = path.join(dir, 'probe.img');
    await writeFile(file, Buffer.alloc(4096), { mode: 0o644 });
    const args = [
      '-r',
      '--image-opts',
      `driver=raw,file.driver=file,file.filename=${file},file.aio=io_uring`,
      '-c',
      'read 0 512',
    ];
    return await new Promise<string | undefined>((resolve) => {
      execFile(
        qemuIo,
        args,
        {
          timeout: PROBE_TIMEOUT_MS,
          killSignal: 'SIGKILL',
          ...(user !== undefined ? { uid: user.uid, gid: user.gid } : {}),
          env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
        },
        (error, _stdout, stderr) => {
          if (error === null) resolve(undefined);
          // No qemu-io here: the sysctls are all there is to go by.
          else if ((error as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
          else
            resolve(
              `QEMU could not open a file with io_uring here (${stderr.trim().split('\n')[0] || error.message})`,
            );
        },
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
