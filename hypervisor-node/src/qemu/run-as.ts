// Who QEMU runs as, and its seccomp sandbox. QEMU starts as the daemon's user (root), opens everything its command
// line names (disks, kernel, taps, /dev/kvm, its QMP socket, pidfile and console log), installs its seccomp filter
// and then drops to the QEMU user (`-run-with user=uid:gid`) before the guest runs. After the drop it opens only
// the migration's TLS key file, which the daemon hands to that user (giveToQemu); the state root and the key
// directories' parent are made searchable by the user's group only (grantSearch).
import { spawn, execFile } from 'node:child_process';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface QemuUser {
  uid: number;
  gid: number;
  /** As configured (`--qemu-user`): a user name or `uid:gid`; for messages. */
  configured: string;
}

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const UID_GID = /^(\d{1,10}):(\d{1,10})$/;
const MAX_ID = 2 ** 32 - 2;

/**
 * seccomp: obsolete system calls, spawning processes and changing scheduling or resource limits are refused
 * (QEMU kills itself on such a call). `elevateprivileges=deny` (no set*uid/set*gid) only when QEMU keeps the
 * daemon's user: QEMU installs the filter before it drops privileges, so with a QEMU user it must still call
 * setgid/setuid once. The drop is final all the same: setuid as root sets the real, effective and saved uid,
 * and QEMU runs with no_new_privs and cannot exec (spawn=deny), so no set-uid binary can give it back.
 */
export function sandboxOption(user: QemuUser | undefined): string {
  const base = 'on,obsolete=deny,spawn=deny,resourcecontrol=deny';
  return user === undefined ? `${base},elevateprivileges=deny` : base;
}

/** The QEMU options for the sandbox and the user; numeric ids, so QEMU sets no supplementary groups. */
export function qemuIdentityArgs(user: QemuUser | undefined): string[] {
  return [
    '-sandbox',
    sandboxOption(user),
    ...(user === undefined ? [] : ['-run-with', `user=${user.uid}:${user.gid}`]),
  ];
}

/**
 * `--qemu-user`: a user name (looked up with getent, so any NSS source works; QEMU gets the numeric ids) or
 * `uid:gid` (needs no passwd entry, e.g. in a container image). Root is refused: it would drop nothing.
 */
export async function resolveQemuUser(configured: string): Promise<QemuUser> {
  const numeric = UID_GID.exec(configured);
  let uid: number;
  let gid: number;
  if (numeric) {
    [uid, gid] = [Number(numeric[1]), Number(numeric[2])];
    if (uid > MAX_ID || gid > MAX_ID) throw new Error(`--qemu-user ${configured}: uid or gid out of range`);
  } else if (USER_NAME.test(configured)) {
    let entry: string;
    try {
      entry = (await run('getent', ['passwd', configured], { timeout: 10_000 })).stdout.trim();
    } catch {
      throw new Error(
        `--qemu-user ${configured}: no such user on this host (create it, e.g. useradd --system ${configured}, or give uid:gid)`,
      );
    }
    const fields = entry.split(':');
    [uid, gid] = [Number(fields[2]), Number(fields[3])];
    if (!Number.isInteger(uid) || !Number.isInteger(gid))
      throw new Error(`--qemu-user ${configured}: getent returned ${JSON.stringify(entry)}`);
  } else {
    throw new Error(`--qemu-user ${JSON.stringify(configured)}: expected a user name or uid:gid`);
  }
  if (uid === 0) throw new Error(`--qemu-user ${configured}: is root (uid 0), which drops no privileges`);
  return { uid, gid, configured };
}

/** Hands a file or directory the daemon wrote for QEMU (a TLS key) to the QEMU user. */
export async function giveToQemu(file: string, user: QemuUser | undefined): Promise<void> {
  if (user !== undefined) await chown(file, user.uid, user.gid);
}

/**
 * Creates `dirs` (outermost first) owned by the daemon, group the QEMU user's group, mode 0710: QEMU may pass
 * through to the key directories it was handed, but not list or read anything else (spec, records, other
 * guests' files stay the daemon's).
 */
export async function grantSearch(dirs: string[], user: QemuUser): Promise<void> {
  for (const dir of dirs) {
    // Missing parents get the usual 0755 (umask permitting), so that the QEMU user can pass them too.
    await mkdir(path.dirname(dir), { recursive: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      await chown(dir, process.getuid?.() ?? 0, user.gid);
    } catch (err) {
      throw new Error(
        `--qemu-user ${user.configured}: cannot give ${dir} to group ${user.gid} (${(err as Error).message}); ` +
          'only a daemon running as root can start QEMU as another user',
      );
    }
    await chmod(dir, 0o710);
  }
}

/** The device through which a QEMU without CAP_SYS_PTRACE gets a userfaultfd (Linux ≥ 6.1), which post-copy needs. */
export const USERFAULTFD_DEVICE = '/dev/userfaultfd';

/**
 * Lets the QEMU user's group open the userfaultfd device (root:<gid> 0660), so that an unprivileged QEMU can be a
 * post-copy target: QEMU uses the device when the userfaultfd system call is closed to it
 * (vm.unprivileged_userfaultfd = 0, the usual default). Returns false when the host has no such device: post-copy
 * then works only where that sysctl is 1.
 */
export async function grantUserfaultfd(user: QemuUser, device = USERFAULTFD_DEVICE): Promise<boolean> {
  try {
    await chown(device, 0, user.gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await chmod(device, 0o660);
  return true;
}

const PROBE_TIMEOUT_MS = 10_000;

/**
 * Starts QEMU as it starts guests (sandbox, QEMU user) with no machine, and makes it load a TLS key the way a
 * migration does, from a key directory under `keyParent` handed to the QEMU user. Resolves when that works;
 * rejects with one line saying what this host refused: no seccomp, no `-run-with`, the daemon cannot change
 * users (not root), or the QEMU user cannot reach the key directory.
 */
export async function probeQemuIdentity(
  qemuBinary: string,
  user: QemuUser | undefined,
  keyParent: string,
): Promise<void> {
  const keyDir = path.join(keyParent, `qemu-user-probe-${process.pid}`);
  const what = user === undefined ? 'QEMU with -sandbox' : `QEMU as --qemu-user ${user.configured}`;
  await rm(keyDir, { recursive: true, force: true });
  try {
    await mkdir(keyDir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(keyDir, 'keys.psk'), `probe:${randomBytes(16).toString('hex')}\n`, {
      mode: 0o600,
    });
    await giveToQemu(path.join(keyDir, 'keys.psk'), user);
    await giveToQemu(keyDir, user);
    const commands = [
      { execute: 'qmp_capabilities' },
      {
        execute: 'object-add',
        arguments: {
          'qom-type': 'tls-creds-psk',
          id: 'probe',
          endpoint: 'client',
          dir: keyDir,
          username: 'probe',
        },
      },
      { execute: 'quit' },
    ];
    const argv = [
      '-machine',
      'none',
      '-nodefaults',
      '-display',
      'none',
      ...qemuIdentityArgs(user),
      '-qmp',
      'stdio',
    ];
    const { code, stdout, stderr } = await runWithInput(
      qemuBinary,
      argv,
      commands.map((c) => JSON.stringify(c)).join('\n') + '\n',
    );
    const error = qmpError(stdout);
    if (code !== 0 || error !== undefined) {
      const detail = error ?? lastLine(stderr) ?? `exit status ${code}`;
      const hint =
        user !== undefined && /Permission denied/.test(detail)
          ? `; uid ${user.uid} needs search permission on every directory down to ${keyParent}`
          : '';
      throw new Error(`${what} cannot run on this host: ${detail}${hint}`);
    }
  } finally {
    await rm(keyDir, { recursive: true, force: true });
  }
}

function qmpError(stdout: string): string | undefined {
  for (const line of stdout.split('\n')) {
    try {
      const reply = JSON.parse(line) as { error?: { desc?: string } };
      if (reply.error !== undefined) return `QMP: ${reply.error.desc ?? JSON.stringify(reply.error)}`;
    } catch {
      // Not a QMP line.
    }
  }
  return undefined;
}

function lastLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((line) => line.trim())
    .findLast((line) => line !== '');
}

function runWithInput(
  binary: string,
  argv: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) stderr += `\nQEMU was killed by ${signal}`;
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}
