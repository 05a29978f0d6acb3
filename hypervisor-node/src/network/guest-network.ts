import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import type { NicBackend } from '../model/guest.js';

const run = promisify(execFile);

/** Gives a guest's NICs their host side when QEMU starts, and takes it away when the guest is deleted. */
export interface NicProvider {
  readonly kind: NicBackend['kind'];
  attach(guestName: string, nicCount: number): Promise<NicBackend[]>;
  detach(guestName: string, nicCount: number): Promise<void>;
}

const IFNAMSIZ = 15;

/**
 * Deterministic tap name of a guest's NIC on a node: a restarted daemon finds the same device again, and two nodes
 * sharing one network namespace (the loopback fallback of the local cluster) never collide.
 */
export function tapName(nodeName: string, guestName: string, index: number): string {
  const digest = createHash('sha256').update(`${nodeName}/${guestName}/${index}`).digest('hex');
  return `tt${digest}`.slice(0, IFNAMSIZ);
}

/**
 * The host-side MAC of a tap: 0xFE first, then bytes of its name's digest. A bridge without a MAC of its own takes
 * the lowest of its ports', so a tap with an ordinary MAC could become the node's: the node's address would change
 * MAC as guests come and go, and other hosts would keep sending to a MAC that left (their connections time out).
 * FE sorts above any address a NIC carries (libvirt does the same). The guest's own MAC is QEMU's, not this one.
 */
export function tapMac(ifname: string): string {
  const digest = createHash('sha256').update(ifname).digest();
  return ['fe', ...[...digest.subarray(0, 5)].map((byte) => byte.toString(16).padStart(2, '0'))].join(':');
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

/** True when this process may create network links (root or CAP_NET_ADMIN), checked by trying. */
export async function canManageLinks(): Promise<boolean> {
  const probe = `ttprobe${process.pid % 100000}`;
  try {
    await ip(['tuntap', 'add', 'dev', probe, 'mode', 'tap']);
    await ip(['link', 'del', 'dev', probe]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Taps on the node's bridge, managed with iproute2 (argv arrays, never a shell). The bridge is created when
 * missing; in the local cluster the bridges of all nodes are joined at layer 2, so a guest keeps its MAC and IP
 * across nodes. A tap is created persistent so that it, like the QEMU using it, survives a daemon restart.
 */
export class BridgeNetwork implements NicProvider {
  readonly kind = 'tap';

  constructor(
    private readonly nodeName: string,
    private readonly bridge: string,
  ) {
    if (!isValidBridgeName(bridge)) throw new Error(`invalid bridge name ${JSON.stringify(bridge)}`);
  }

  async attach(guestName: string, nicCount: number): Promise<NicBackend[]> {
    if (nicCount === 0) return [];
    if (!(await linkExists(this.bridge))) await ip(['link', 'add', 'name', this.bridge, 'type', 'bridge']);
    await ip(['link', 'set', 'dev', this.bridge, 'up']);
    const nics: NicBackend[] = [];
    for (let i = 0; i < nicCount; i++) {
      const ifname = tapName(this.nodeName, guestName, i);
      if (!(await linkExists(ifname))) await ip(['tuntap', 'add', 'dev', ifname, 'mode', 'tap']);
      // Before it joins the bridge (see tapMac); again for a tap an older daemon left with its random MAC.
      await ip(['link', 'set', 'dev', ifname, 'address', tapMac(ifname)]);
      await ip(['link', 'set', 'dev', ifname, 'master', this.bridge]);
      await ip(['link', 'set', 'dev', ifname, 'up']);
      nics.push({ kind: 'tap', ifname, bridge: this.bridge });
    }
    return nics;
  }

  async detach(guestName: string, nicCount: number): Promise<void> {
    for (let i = 0; i < nicCount; i++) {
      const ifname = tapName(this.nodeName, guestName, i);
      if (await linkExists(ifname)) await ip(['link', 'del', 'dev', ifname]);
    }
  }
}

/** What user-mode networking cannot do; the daemon logs it and reports it in NodeInfo and HypervisorNode status. */
export const USER_MODE_LIMITATION =
  'each guest is reachable only through one TCP port forwarded on 127.0.0.1, ' +
  'guests cannot reach each other, and a guest address does not move with a migration';

/** QEMU user-mode networking, for a daemon that may not create taps (not root); see USER_MODE_LIMITATION. */
export class UserModeNetwork implements NicProvider {
  readonly kind = 'user';

  constructor(
    private readonly guestPort: number,
    private readonly hostAddress = '127.0.0.1',
  ) {}

  async attach(_guestName: string, nicCount: number): Promise<NicBackend[]> {
    const nics: NicBackend[] = [];
    for (let i = 0; i < nicCount; i++) {
      const hostPort = await freePort(this.hostAddress);
      nics.push({ kind: 'user', hostAddress: this.hostAddress, hostPort, guestPort: this.guestPort });
    }
    return nics;
  }

  async detach(): Promise<void> {}
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string')
    throw new Error('no TCP port for user-mode networking');
  return address.port;
}
