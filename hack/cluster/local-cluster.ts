// A local Tern cluster on this machine: a real kube-apiserver + etcd, the CRDs, two hypervisor-node daemons
// running QEMU guests, and the operator. Both daemons share this host's network namespace (loopback ports);
// their guests' taps join one bridge, so a guest keeps its MAC and IP when it moves between the nodes.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { testGuestImages, type TestGuestImages } from '../../hypervisor-node/src/guests/test-guest.js';
import {
  killGuestsIn,
  startDaemonProcess,
  type DaemonProcess,
} from '../../hypervisor-node/src/testing/daemon-process.js';
import { startOperatorProcess, type OperatorProcess } from '../../operator/src/testing/operator-process.js';
import { startControlPlane, type ControlPlane } from '../../test/harness/control-plane.js';
import { generateDevCerts, type DevCerts } from '../gen-certs.js';

const run = promisify(execFile);
const CRDS = fileURLToPath(new URL('../../crds/generated/', import.meta.url));

export interface LocalClusterOptions {
  nodes: string[];
  /** Bridge the guests' taps join; the host gets `hostAddress` on it to reach the guests. */
  bridge: string;
  /** CIDR address of the host on the bridge, e.g. 10.213.7.1/24. */
  hostAddress: string;
  log?: (line: string) => void;
}

export interface LocalCluster {
  controlPlane: ControlPlane;
  images: TestGuestImages;
  certs: DevCerts;
  daemons: Record<string, DaemonProcess>;
  operator: OperatorProcess;
  /** A node's guest state directory (holds each guest's agent socket). */
  stateDir(node: string): string;
  kubectl(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const log = options.log ?? (() => undefined);
  const work = await mkdtemp(join(tmpdir(), 'tern-cluster-'));
  const stateDir = (node: string): string => join(work, node);
  const daemons: Record<string, DaemonProcess> = {};
  let controlPlane: ControlPlane | undefined;
  let operator: OperatorProcess | undefined;

  const stop = async (): Promise<void> => {
    await operator?.stop();
    await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
    for (const node of options.nodes) await killGuestsIn(stateDir(node));
    await controlPlane?.stop();
    // Guest taps are persistent (they outlive a daemon restart), so the ones on this bridge go explicitly.
    const ports = await run('ip', ['-o', 'link', 'show', 'master', options.bridge]).catch(() => ({
      stdout: '',
    }));
    for (const tap of ports.stdout.matchAll(/^\d+: ([^:@\s]+)/gm)) {
      await run('ip', ['link', 'del', 'dev', tap[1]!]).catch(() => undefined);
    }
    await run('ip', ['link', 'del', 'dev', options.bridge]).catch(() => undefined);
    // A killed QEMU's exit shim may still be writing into its guest dir.
    await rm(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  };

  try {
    const images = await testGuestImages();
    controlPlane = await startControlPlane({ name: 'local' });
    const cp = controlPlane;
    log(`control plane up in ${cp.startupMs} ms (kubeconfig ${cp.kubeconfigPath})`);
    const kubectl = async (args: string[], input?: string): Promise<string> => {
      const result = await cp.kubectl(args, input === undefined ? undefined : { input });
      if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr.trim()}`);
      return result.stdout;
    };
    await kubectl(['apply', '-f', CRDS]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    await kubectl(['create', 'namespace', 'tern-system']);

    await run('ip', ['link', 'add', 'name', options.bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', options.hostAddress, 'dev', options.bridge]);
    await run('ip', ['link', 'set', 'dev', options.bridge, 'up']);

    const certs = generateDevCerts(
      join(work, 'pki'),
      options.nodes.map((name) => ({ name })),
    );
    await Promise.all(
      options.nodes.map(async (node) => {
        const pair = certs.nodes[node]!;
        daemons[node] = await startDaemonProcess([
          ...['--node-name', node, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
          ...['--migration-listen', '127.0.0.1:0'],
          ...['--tls-cert', pair.cert, '--tls-key', pair.key, '--tls-ca', certs.ca.cert],
          ...['--state-dir', stateDir(node), '--allowed-root', images.root],
          ...['--network', 'bridge', '--bridge', options.bridge, '--kubeconfig', cp.kubeconfigPath],
          ...['--heartbeat-interval-seconds', '2', '--lease-duration-seconds', '10'],
        ]);
        log(`daemon ${node} up: gRPC 127.0.0.1:${daemons[node].grpcPort}`);
      }),
    );
    operator = await startOperatorProcess([
      ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0'],
      ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
      ...['--guest-poll-interval-ms', '1000'],
    ]);
    log('operator up');
    return { controlPlane: cp, images, certs, daemons, operator, stateDir, kubectl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
