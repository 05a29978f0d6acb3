// QEMU's command line for a validated GuestDefinition, as an argv array (never a shell string).
// QEMU's `-opt key=value,key=value` syntax treats ',' and '=' specially, so user strings never enter it:
// image paths go through JSON-syntax -blockdev/-device, -kernel/-initrd/-append take plain strings (a kernel file
// named 'k,x=y' boots: test/integration/hypervisor-node/supervisor.int.test.ts; -initrd is the exception, see validate.ts), and the only
// paths in option syntax are the daemon's own state-dir paths, which assertSafeStateRoot restricts.
import type { Accelerator, DiskSpec, GuestDefinition, NicBackend } from '../model/guest.js';
import { guestPaths } from '../model/state-dir.js';
import { qemuIdentityArgs, type QemuUser } from './run-as.js';
import { SERIAL_CONSOLE_WORD } from './validate.js';

export const DEFAULT_MACHINE = 'q35';
/** sun_path is 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;
const MAX_GUEST_NAME = 63;
const SAFE_STATE_ROOT = /^\/[A-Za-z0-9._/-]*$/;

export interface QemuLaunchOptions {
  /** The daemon's state root; the guest's files live in <stateRoot>/<spec.name>/. */
  stateRoot: string;
  accel: Accelerator;
  /** Start as a migration target: QEMU waits for `migrate-incoming` and stays paused after it until `cont`. */
  incoming?: boolean;
  /** The host side of each NIC in spec.nics, in order (see network/guest-network.ts). */
  nics: NicBackend[];
  /** The user QEMU drops to after start-up (run-as.ts); undefined: it keeps the daemon's user. */
  user?: QemuUser;
}

/**
 * Refuses a state root whose paths could not be put into QEMU option syntax safely or would overflow a unix
 * socket path for the longest guest name.
 */
export function assertSafeStateRoot(stateRoot: string): void {
  if (!SAFE_STATE_ROOT.test(stateRoot) || stateRoot.split('/').includes('..')) {
    throw new Error(
      `state root ${JSON.stringify(stateRoot)} must be an absolute path of letters, digits, ".", "_", "-" and "/"`,
    );
  }
  const longest = guestPaths(stateRoot, 'x'.repeat(MAX_GUEST_NAME));
  for (const socket of [longest.qmp, longest.agent, longest.consoleSocket]) {
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      throw new Error(`state root ${stateRoot} is too long: ${socket} exceeds ${MAX_SOCKET_PATH} bytes`);
    }
  }
}

/** The argv (without the binary) that runs `spec`; the spec must come from validateGuestSpec. */
export function buildQemuArgv(spec: GuestDefinition, launch: QemuLaunchOptions): string[] {
  assertSafeStateRoot(launch.stateRoot);
  const paths = guestPaths(launch.stateRoot, spec.name);
  const argv = [
    // validateGuestSpec keeps ',' and '=' out of both, so QEMU's option parser reads one value.
    '-name',
    `guest=${spec.displayName ?? spec.name}`,
    '-uuid',
    spec.uuid,
    '-machine',
    spec.machine ?? DEFAULT_MACHINE,
    '-accel',
    launch.accel,
    '-cpu',
    spec.cpuModel ?? (launch.accel === 'kvm' ? 'host' : 'max'),
    '-m',
    `${spec.memoryMiB}M`,
    '-smp',
    String(spec.cpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-msg',
    'timestamp=on',
    ...qemuIdentityArgs(launch.user),
    '-pidfile',
    paths.pid,
    '-qmp',
    `unix:${paths.qmp},server=on,wait=off`,
    // A socket the daemon reads all the time and fans out to console sessions; the log keeps the history (and the
    // console tail that failure messages quote) whether or not anyone is connected.
    '-chardev',
    `socket,id=console,path=${paths.consoleSocket},server=on,wait=off,logfile=${paths.console},logappend=on`,
    '-serial',
    'chardev:console',
    '-chardev',
    `socket,id=agent,path=${paths.agent},server=on,wait=off`,
    '-serial',
    'chardev:agent',
  ];
  if (spec.boot !== undefined) {
    const { kernel, initrd, cmdline } = spec.boot;
    argv.push('-kernel', kernel);
    if (initrd !== undefined) argv.push('-initrd', initrd);
    const words = cmdline.some((word) => word.startsWith('console='))
      ? cmdline
      : [SERIAL_CONSOLE_WORD, ...cmdline];
    argv.push('-append', words.join(' '));
  } else {
    // Disk boot: SeaBIOS boots the disk with a bootindex and nothing else (no PXE from the NIC's option ROM when the
    // disk does not boot).
    argv.push('-boot', 'strict=on');
  }
  argv.push(...diskArgs(spec.disks));
  if (launch.nics.length !== spec.nics.length) {
    throw new Error(
      `guest ${spec.name} has ${spec.nics.length} NICs but ${launch.nics.length} host backends`,
    );
  }
  spec.nics.forEach((nic, i) => {
    argv.push(
      '-netdev',
      JSON.stringify(netdev(`net${i}`, launch.nics[i]!)),
      '-device',
      JSON.stringify({ driver: 'virtio-net-pci', id: `nic${i}`, netdev: `net${i}`, mac: nic.mac }),
    );
  });
  // -S: after the incoming migration the target stays paused; it runs the guest only when the daemon sends
  // `cont` after the ownership hand-over, so the guest never runs on two nodes.
  if (launch.incoming === true) argv.push('-S', '-incoming', 'defer');
  return argv;
}

/**
 * -blockdev/-device for each disk. Block node names are `file<i>` (the image file) and `disk<i>` (its format), i the
 * disk's index in the spec: QMP commands of the disk migration name them.
 *
 * cache, in QEMU's terms (block/qapi: BlockdevCacheOptions on both nodes, the device's write-cache):
 *   writeback     host page cache (direct off), the guest's flushes reach the disk (no-flush off), write cache on
 *   none          O_DIRECT (direct on), flushes honoured, write cache on
 *   writethrough  host page cache, and the device reports no write cache, so QEMU flushes after every write
 * io is the file node's aio: threads, native (Linux AIO, needs O_DIRECT: validate.ts) or io_uring.
 */
function diskArgs(disks: DiskSpec[]): string[] {
  const argv: string[] = [];
  let sataPort = 0;
  disks.forEach((disk, i) => {
    const readOnly = disk.readOnly;
    const cache = { direct: disk.cache === 'none', 'no-flush': false };
    const device: Record<string, unknown> =
      disk.bus === 'sata' // q35's built-in AHCI controller: buses ide.0 to ide.5 (MAX_SATA_DISKS)
        ? { driver: 'ide-hd', id: `vd${i}`, bus: `ide.${sataPort++}`, drive: `disk${i}` }
        : { driver: 'virtio-blk-pci', id: `vd${i}`, drive: `disk${i}` };
    device['write-cache'] = disk.cache === 'writethrough' ? 'off' : 'on';
    if (disk.boot) device.bootindex = 0;
    argv.push(
      ...backingChainArgs(disk, i),
      '-blockdev',
      JSON.stringify({
        driver: 'file',
        'node-name': `file${i}`,
        filename: disk.path,
        'read-only': readOnly,
        aio: disk.io,
        cache,
      }),
      '-blockdev',
      JSON.stringify({
        driver: disk.format ?? 'raw',
        'node-name': `disk${i}`,
        file: `file${i}`,
        'read-only': readOnly,
        cache,
        ...qcow2Backing(disk, i),
      }),
      '-device',
      JSON.stringify(device),
    );
  });
  return argv;
}

/**
 * A qcow2 format node's `backing`: the first validated base's node, or null when it has none, so that QEMU never
 * opens a file because an image header names it (validate.ts checked the chain; docs/images.md).
 */
function qcow2Backing(disk: DiskSpec, i: number): { backing?: string | null } {
  if (disk.format !== 'qcow2') return {};
  return { backing: (disk.backingChain ?? []).length > 0 ? baseNodeName(i, 0) : null };
}

/** The -blockdev nodes of a qcow2 disk's validated bases, deepest first, each read-only with an explicit backing. */
function backingChainArgs(disk: DiskSpec, i: number): string[] {
  if (disk.format !== 'qcow2') return [];
  const chain = disk.backingChain ?? [];
  const args: string[] = [];
  for (let level = chain.length - 1; level >= 0; level--) {
    const base = chain[level]!;
    const file = `${baseNodeName(i, level)}-file`;
    const below = level + 1 < chain.length ? baseNodeName(i, level + 1) : null;
    args.push(
      '-blockdev',
      JSON.stringify({ driver: 'file', 'node-name': file, filename: base.path, 'read-only': true }),
      '-blockdev',
      JSON.stringify({
        driver: base.format,
        'node-name': baseNodeName(i, level),
        file,
        'read-only': true,
        ...(base.format === 'qcow2' ? { backing: below } : {}),
      }),
    );
  }
  return args;
}

function baseNodeName(disk: number, level: number): string {
  return `disk${disk}-base${level}`;
}

function netdev(id: string, backend: NicBackend): Record<string, unknown> {
  if (backend.kind === 'tap')
    return { type: 'tap', id, ifname: backend.ifname, script: 'no', downscript: 'no' };
  const forward = `tcp:${backend.hostAddress}:${backend.hostPort}-:${backend.guestPort}`;
  return { type: 'user', id, hostfwd: [{ str: forward }] };
}
