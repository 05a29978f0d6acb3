import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How a guest's NIC reaches the network: a tap on the node's bridge, or QEMU user-mode networking when taps are impossible. */
export type NicBackend =
  { kind: 'tap'; ifname: string } | { kind: 'user'; hostForwardPort: number; guestPort: number };

export interface GuestNetworkOptions {
  /** Bridge every guest tap joins; created when missing. In the local cluster each node's bridge is joined to the others at layer 2. */
  bridge: string;
  /** Node name, part of tap names so that two nodes sharing one network namespace never collide. */
  nodeName: string;
}

const IFNAMSIZ = 15;

/** Deterministic tap name for a guest on a node: a restarted daemon finds the same device again. */
export function tapName(nodeName: string, guestName: string): string {
  const digest = createHash('sha256').update(`${nodeName}/${guestName}`).digest('hex');
  return `tt${digest}`.slice(0, IFNAMSIZ);
}

export function isValidBridgeName(name: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/.test(name);
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 });
  return stdout;
}

async function linkExists(name: string): Promise<boolean> {
  try {
    await ip(['link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Manages the node's bridge and the guests' taps with iproute2 (argv arrays, never a shell). A tap is created persistent
 * so that it, like the QEMU using it, survives a daemon restart.
 */
export class GuestNetwork {
  constructor(private readonly options: GuestNetworkOptions) {
    if (!isValidBridgeName(options.bridge))
      throw new Error(`invalid bridge name ${JSON.stringify(options.bridge)}`);
  }

  /** True when this process may create links (root or CAP_NET_ADMIN), checked by trying. */
  static async canManageLinks(): Promise<boolean> {
    const probe = `ttprobe${process.pid % 100000}`;
    try {
      await ip(['tuntap', 'add', 'dev', probe, 'mode', 'tap']);
      await ip(['link', 'del', 'dev', probe]);
      return true;
    } catch {
      return false;
    }
  }

  async ensureBridge(): Promise<void> {
    const { bridge } = this.options;
    if (!(await linkExists(bridge))) await ip(['link', 'add', 'name', bridge, 'type', 'bridge']);
    await ip(['link', 'set', 'dev', bridge, 'up']);
  }

  /** Creates (or finds) the guest's tap on the bridge and returns the backend for QEMU's -netdev. */
  async attach(guestName: string): Promise<NicBackend> {
    const ifname = tapName(this.options.nodeName, guestName);
    await this.ensureBridge();
    if (!(await linkExists(ifname))) await ip(['tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
    await ip(['link', 'set', 'dev', ifname, 'master', this.options.bridge]);
    await ip(['link', 'set', 'dev', ifname, 'up']);
    return { kind: 'tap', ifname };
  }

  async detach(guestName: string): Promise<void> {
    const ifname = tapName(this.options.nodeName, guestName);
    if (await linkExists(ifname)) await ip(['link', 'del', 'dev', ifname]);
  }
}
