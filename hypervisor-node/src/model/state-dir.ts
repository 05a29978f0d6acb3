// Layout of one guest's directory under the daemon's state root. The directory outlives the daemon process:
// reattaching after a restart reads everything back from here.
import path from 'node:path';

export interface GuestPaths {
  dir: string;
  /** The validated GuestDefinition as JSON. */
  spec: string;
  /** How the current QEMU was launched (accelerator, incoming, start time). */
  launch: string;
  /** Last terminal status (Stopped/Failed) so it survives a daemon restart. */
  status: string;
  /** Written by QEMU (-pidfile). */
  pid: string;
  /** Written by the launch shim when QEMU exits: the shell's $? (128+N for signal N). */
  exitStatus: string;
  /** Written by the node's fence watchdog (self-fencing/watchdog.ts) just before it kills QEMU: why. */
  fenced: string;
  qmp: string;
  agent: string;
  /** Everything the guest's first serial port wrote (QEMU's chardev logfile, appended across restarts). */
  console: string;
  /**
   * The guest's first serial port: QEMU listens, the daemon's console hub connects (console/hub.ts). No longer a name
   * than agent.sock: the longest socket path bounds the state root (argv.ts, assertSafeStateRoot).
   */
  consoleSocket: string;
  /** QEMU's own stdout/stderr. */
  qemuLog: string;
}

export function guestPaths(stateRoot: string, name: string): GuestPaths {
  const dir = path.join(stateRoot, name);
  return {
    dir,
    spec: path.join(dir, 'spec.json'),
    launch: path.join(dir, 'launch.json'),
    status: path.join(dir, 'status.json'),
    pid: path.join(dir, 'qemu.pid'),
    exitStatus: path.join(dir, 'exit-status'),
    fenced: path.join(dir, 'fenced'),
    qmp: path.join(dir, 'qmp.sock'),
    agent: path.join(dir, 'agent.sock'),
    console: path.join(dir, 'console.log'),
    consoleSocket: path.join(dir, 'ttyS0.sock'),
    qemuLog: path.join(dir, 'qemu.log'),
  };
}
