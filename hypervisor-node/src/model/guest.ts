// The contract between the QEMU layer (supervisor, argv, QMP) and the daemon's service layer (gRPC, registration).

/**
 * What a caller asks the daemon to run: the daemon's own form of the wire GuestSpec (proto), converted by
 * rpc/guest-wire.ts. Validated by `validateGuestSpec` before anything touches QEMU.
 */
export interface GuestDefinition {
  /** Unique on this node; DNS-1123 label (lowercase alphanumerics and '-', at most 63). Also the state dir name. */
  name: string;
  /** RFC 4122 UUID, passed to QEMU as -uuid; identical on source and target of a migration. */
  uuid: string;
  /** For people (QEMU's -name, logs, metrics), never a key: e.g. '<namespace>/<vm name>'; see DISPLAY_NAME. */
  displayName?: string;
  /**
   * The VirtualMachine's namespace (DNS-1123 label): its images live under <image root>/<namespace>/ (see
   * docs/images.md). Unset: the guest may use shared images only (kernel, initrd, read-only disks).
   */
  namespace?: string;
  cpus: number;
  memoryMiB: number;
  /** QEMU machine type; defaults to the daemon's choice (e.g. 'q35'); a migration target copies the source's. */
  machine?: string;
  /** QEMU CPU model; defaults to 'max' under TCG and 'host' under KVM unless set. */
  cpuModel?: string;
  /** Kernel boot; unset: the firmware (SeaBIOS) boots the one disk with `boot: true`. */
  boot?: KernelBoot;
  disks: DiskSpec[];
  nics: NicSpec[];
}

export interface KernelBoot {
  /** Absolute path in the guest's namespace directory or under a shared image root. */
  kernel: string;
  /** Absolute path in the guest's namespace directory or under a shared image root. */
  initrd?: string;
  /** Kernel command line words, passed as one -append argument (never parsed by QEMU's option parser). */
  cmdline: string[];
}

export interface DiskSpec {
  /** The VM's name for the disk (DNS-1123 label, unique in the guest); names its QEMU nodes and mirror jobs. */
  name: string;
  /**
   * Absolute path of a raw or qcow2 image: in the guest's namespace directory, or (read-only disks only) under a
   * shared image root.
   */
  path: string;
  readOnly: boolean;
  /** Image format, never guessed from the file's contents (a raw image could carry a qcow2 header); default 'raw'. */
  format?: DiskFormat;
  bus: DiskBus;
  cache: DiskCache;
  io: DiskIo;
  /** shared: every node opens the same image (a migration moves memory only); local: a migration copies it. */
  storage: DiskStorage;
  /** The firmware boots this disk: exactly one disk of a guest without kernel boot, none of a guest with one. */
  boot: boolean;
  /**
   * Set by validation for a qcow2 disk, never taken from a caller: the image's backing chain as checked with
   * qemu-img (each base under a shared image root), nearest base first; empty when it has no backing file. QEMU
   * is given these files as explicit nodes and never follows a path from an image header (qemu/argv.ts).
   */
  backingChain?: BackingImage[];
}

/** One base image of a qcow2 disk's backing chain: symlink-free path and its format as the header declares it. */
export interface BackingImage {
  path: string;
  format: DiskFormat;
}

export type DiskBus = 'virtio' | 'sata';
export type DiskCache = 'writeback' | 'none' | 'writethrough';
export type DiskIo = 'threads' | 'native' | 'io_uring';
export type DiskStorage = 'shared' | 'local';
export type DiskFormat = 'raw' | 'qcow2';

export interface NicSpec {
  /** Locally administered unicast MAC, e.g. 52:54:00:12:34:56; stays the guest's own across nodes. */
  mac: string;
}

/**
 * How a guest's NIC reaches the network on this node, chosen by the daemon (never from user input): a tap on the
 * node's bridge, or QEMU user-mode networking with one TCP port forwarded from the node's loopback.
 */
export type NicBackend =
  /** bridge: the bridge the tap is a port of (missing in the launch records of older daemons). */
  | { kind: 'tap'; ifname: string; bridge?: string }
  | { kind: 'user'; hostAddress: string; hostPort: number; guestPort: number };

export type GuestPhase = 'Starting' | 'Running' | 'Paused' | 'Stopping' | 'Stopped' | 'Failed';

export interface GuestStatus {
  name: string;
  uuid: string;
  phase: GuestPhase;
  pid?: number;
  /** Why a Stopped or Failed guest is in its phase: one CamelCase word of GuestReason (machine-readable). */
  reason?: GuestReason;
  /** The human-readable account: exit status or signal, what a stop did, the last console lines of a failure. */
  message?: string;
  startedAt?: string;
  /** 'kvm' | 'tcg' */
  accelerator: Accelerator;
  /** One backend per spec.nics entry, while the guest has a QEMU. */
  nics?: NicBackend[];
  spec: GuestDefinition;
}

export type Accelerator = 'kvm' | 'tcg';

/**
 * GuestStatus.reason of a Stopped or Failed guest. Stopped: `PoweredOff` (the guest powered off on the daemon's
 * ACPI power button), `PowerOffTimedOut` (it did not within the stop timeout and QEMU was told to quit), `Quit`
 * (QEMU quit on request: a paused guest, or a `quit` from another QMP client such as the migration source),
 * `Killed` (QEMU did not quit and was SIGKILLed), `GuestShutdown` (the guest powered itself off). Failed:
 * `LaunchFailed` (QEMU could not be started or did not come up), `Exited` (QEMU exited on its own), `Signaled`
 * (QEMU was killed by a signal), `ExitStatusUnknown` (QEMU is gone and its exit status was not recorded),
 * `QmpUnreachable` (QEMU runs but its QMP socket does not answer), `Fenced` (the node's fence watchdog killed QEMU
 * because the daemon had not renewed its Lease for the fence time; the daemon never restarts it by itself),
 * `PostCopyFailed` (a post-copy migration of the guest failed: its state was split between two nodes, so the
 * daemon stopped this QEMU, which cannot run it).
 */
export type GuestReason =
  | 'PoweredOff'
  | 'PowerOffTimedOut'
  | 'Quit'
  | 'Killed'
  | 'GuestShutdown'
  | 'LaunchFailed'
  | 'Exited'
  | 'Signaled'
  | 'ExitStatusUnknown'
  | 'QmpUnreachable'
  | 'Fenced'
  | 'PostCopyFailed';
