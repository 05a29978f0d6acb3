// The local cluster's network: one namespace per node, each with its own bridge (NODE_BRIDGE) for the guests'
// taps; a veth pair plugs every node bridge into one host bridge, so nodes, guests and the host share one layer-2
// segment and one /24 (a guest keeps its MAC and address when it moves). The host's address on that bridge is
// the only host address the namespaces reach: kube-apiserver listens there.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import {
  hostBridgeName,
  hostVethPrefix,
  netnsPrefix,
  NODE_BRIDGE,
  NODE_UPLINK,
  type ClusterState,
} from './cluster-state.js';
import { killAndWait } from './processes.js';

const run = promisify(execFile);
const SUBNET_BASE = '10.218';

export async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { timeout: 10_000 })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (error as Error).message}`);
  }
}

/** True when this process may create namespaces and links (root or CAP_SYS_ADMIN + CAP_NET_ADMIN), by trying. */
export async function canUseNamespaces(): Promise<boolean> {
  const probe = `ternprobe${process.pid}`;
  try {
    await ip(['netns', 'add', probe]);
    await ip(['netns', 'del', probe]);
    return true;
  } catch {
    return false;
  }
}

/**
 * A 10.218.N /24 that no host interface uses yet, starting from one derived from the cluster name so that two
 * clusters brought up at the same moment rarely try the same one.
 */
export async function freeSubnet(cluster: string): Promise<string> {
  const used = new Set(
    [...(await ip(['-o', '-4', 'addr', 'show'])).matchAll(/inet 10\.218\.(\d+)\./g)].map((m) => Number(m[1])),
  );
  const start = createHash('sha256').update(cluster).digest()[0]! % 250;
  for (let i = 0; i < 250; i++) {
    const octet = ((start + i) % 250) + 1;
    if (!used.has(octet)) return `${SUBNET_BASE}.${octet}`;
  }
  throw new Error(`no free /24 in ${SUBNET_BASE}.0.0/16`);
}

export async function createHostBridge(state: ClusterState): Promise<void> {
  const bridge = state.hostBridge!;
  await ip(['link', 'add', 'name', bridge, 'type', 'bridge']);
  await ip(['addr', 'add', `${state.hostAddress}/24`, 'dev', bridge]);
  await ip(['link', 'set', 'dev', bridge, 'up']);
}

/** The node's namespace, its bridge with the node's address, and the veth pair to the host bridge. */
export async function createNodeNetwork(state: ClusterState, index: number): Promise<void> {
  const node = state.nodes[index]!;
  const ns = node.netns!;
  const inNs = (args: string[]) => ip(['-n', ns, ...args]);
  await ip(['netns', 'add', ns]);
  await inNs(['link', 'set', 'dev', 'lo', 'up']);
  await ip(['link', 'add', node.hostVeth!, 'type', 'veth', 'peer', 'name', NODE_UPLINK, 'netns', ns]);
  await ip(['link', 'set', 'dev', node.hostVeth!, 'master', state.hostBridge!]);
  await ip(['link', 'set', 'dev', node.hostVeth!, 'up']);
  await inNs(['link', 'add', 'name', NODE_BRIDGE, 'type', 'bridge']);
  await inNs(['link', 'set', 'dev', NODE_UPLINK, 'master', NODE_BRIDGE]);
  await inNs(['addr', 'add', `${node.address}/24`, 'dev', NODE_BRIDGE]);
  await inNs(['link', 'set', 'dev', NODE_UPLINK, 'up']);
  await inNs(['link', 'set', 'dev', NODE_BRIDGE, 'up']);
}

/**
 * Removes the cluster's namespaces (killing every process left in them: QEMUs, daemons), veths and host bridge.
 * Works from the deterministic names alone, so it also cleans up after an `up` that crashed before recording.
 */
export async function removeClusterNetwork(cluster: string): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = (await ip(['netns', 'list']).catch(() => ''))
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((ns) => ns.startsWith(netnsPrefix(cluster)));
  for (const ns of namespaces) {
    const pids = (await ip(['netns', 'pids', ns]).catch(() => '')).split('\n').filter(Boolean).map(Number);
    await killAndWait(pids);
    // The taps and bridge inside go with the namespace.
    await ip(['netns', 'del', ns]);
    removed.push(`netns ${ns}`);
  }
  const links = await ip(['-o', 'link', 'show']);
  for (const match of links.matchAll(/^\d+: ([^:@\s]+)/gm)) {
    const link = match[1]!;
    if (link.startsWith(hostVethPrefix(cluster)) || link === hostBridgeName(cluster)) {
      await ip(['link', 'del', 'dev', link]).catch(() => undefined);
      removed.push(`link ${link}`);
    }
  }
  return removed;
}
