// The local cluster's state file and its deterministic names. Every process, namespace and link a cluster owns
// is either recorded here (pids, ports) or named after the cluster (namespaces, links), so that `down` can remove
// all of it even after an `up` that crashed halfway.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** netns: each node is a network namespace on a shared bridge; loopback: no root, everything on 127.0.0.1. */
export type ClusterMode = 'netns' | 'loopback';

export interface RecordedProcess {
  pid: number;
  /** Log file of the process (stdout and stderr). */
  log: string;
}

export interface NodeState {
  name: string;
  /** The node's address: its bridge address in netns mode, 127.0.0.1 in loopback mode. */
  address: string;
  /** Network namespace (netns mode). */
  netns?: string;
  /** The host end of the node's veth pair (netns mode). */
  hostVeth?: string;
  stateDir: string;
  /** host:port of the daemon's gRPC API once it runs. */
  endpoint?: string;
  metricsEndpoint?: string;
  daemon?: RecordedProcess;
}

export interface ClusterState {
  name: string;
  dir: string;
  mode: ClusterMode;
  /** Host bridge joining the nodes' namespaces (netns mode), with `hostAddress` on it. */
  hostBridge?: string;
  /** The cluster's /24, e.g. 10.218.5 (netns mode): host .1, nodes .11 and up, guests are free from .100. */
  subnet?: string;
  hostAddress: string;
  kubeconfig: string;
  /** The test guest's images (the daemons' --shared-image-root). */
  imagesRoot: string;
  /**
   * The daemons' --image-root: a directory per namespace for VMs' writable disks (docs/images.md). The nodes share
   * one host, so a disk there is one every node sees (`storage: shared`).
   */
  imageRoot: string;
  apiServer?: string;
  /** etcd and kube-apiserver (their data is in DIR/control-plane). */
  controlPlane?: {
    processes: {
      name: 'etcd' | 'kube-apiserver';
      pid: number;
      /** Its command line, recorded once it runs: `up` starts it again with it when it died (healCluster). */
      argv?: string[];
    }[];
    /** kube-apiserver's command line while it is stopped (stopApiServer), to start it again with the same flags. */
    stoppedApiServer?: string[];
  };
  nodes: NodeState[];
  operator?: RecordedProcess & { metricsEndpoint: string };
}

export const DEFAULT_CLUSTER_NAME = 'local';
/** Inside each node's namespace: the bridge the guests' taps join, and the veth end plugged into it. */
export const NODE_BRIDGE = 'tern0';
export const NODE_UPLINK = 'uplink';
export const DAEMON_PORTS = { grpc: 7443, metrics: 9464 } as const;

const CLUSTER_NAME = /^[a-z][a-z0-9]{0,5}$/;

export function defaultClusterDir(): string {
  return join(process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern'), 'cluster');
}

/** Cluster names go into interface names (at most 15 characters), hence the short limit. */
export function checkClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new Error(`cluster name ${JSON.stringify(name)}: 1-6 of [a-z0-9], starting with a letter`);
  }
  return name;
}

export const netnsPrefix = (cluster: string): string => `tern-${cluster}-`;
export const netnsName = (cluster: string, node: string): string => `${netnsPrefix(cluster)}${node}`;
export const hostBridgeName = (cluster: string): string => `tb-${cluster}`;
export const hostVethPrefix = (cluster: string): string => `tv-${cluster}-`;
export const hostVethName = (cluster: string, index: number): string => `${hostVethPrefix(cluster)}${index}`;
export const nodeAddress = (subnet: string, index: number): string => `${subnet}.${11 + index}`;

export const statePath = (dir: string): string => join(dir, 'state.json');
/** A small VirtualMachine manifest of the test guest that `up` writes for trying the cluster out. */
export const exampleVmPath = (state: ClusterState): string => join(state.dir, 'vm01.yaml');

export function readState(dir: string): ClusterState | undefined {
  const path = statePath(dir);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as ClusterState;
}

/** Written before each step that creates something, through a rename so that a crash never leaves half a file. */
export function writeState(state: ClusterState): void {
  const path = statePath(state.dir);
  writeFileSync(`${path}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${path}.tmp`, path);
}
