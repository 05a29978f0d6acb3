// Two "nodes" on one host for tests of `storage: local` disks: each daemon runs in a mount namespace of its own in
// which its own directory (<work>/a-disks, <work>/b-disks) is bind-mounted over the namespace's directory of the
// image root, <work>/namespaces/default (service-process.ts, privateMount). Both daemons and their QEMUs open
// <work>/namespaces/default/<file> and reach different files, as two nodes would; a test reads each node's file
// through its own directory. qcow2 bases lie under a shared image root (<work>/base) that both read, as a golden
// image present on every node.
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestImages, type TestGuestImages } from '../fixtures/test-guest.js';
import { generateDevCerts } from './certificates.js';
import { controlClient } from './control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from './daemon-process.js';
import { migrationClient, type NodeHandle } from './migration-driver.js';
import { letQemuUserThrough, qemuUserArgs } from './qemu-user.js';

export interface LocalDiskNode extends NodeHandle {
  stateDir: string;
  /** This node's own directory behind `shared`. */
  disks: string;
  daemon: DaemonProcess;
}

export interface LocalDiskNodes {
  work: string;
  /** The path every node's guests use for their disks: <work>/namespaces/default (namespace "default"). */
  shared: string;
  /** The shared image root of qcow2 bases: <work>/base. */
  bases: string;
  images: TestGuestImages;
  a: LocalDiskNode;
  b: LocalDiskNode;
  /** Starts the node's daemon again (after a test killed it), with the same directories; `node` is updated. */
  restart(node: LocalDiskNode): Promise<void>;
  close(): Promise<void>;
}

export async function startLocalDiskNodes(prefix: string): Promise<LocalDiskNodes> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  await letQemuUserThrough(work);
  const shared = join(work, 'namespaces', 'default');
  const bases = join(work, 'base');
  await mkdir(shared, { mode: 0o755, recursive: true });
  await chmod(join(work, 'namespaces'), 0o755);
  await mkdir(bases, { mode: 0o755 });
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const images = await testGuestImages();
  const clients: { close(): void }[] = [];
  const nodes: LocalDiskNode[] = [];
  const close = async () => {
    for (const client of clients) client.close();
    for (const node of nodes) {
      await node.daemon.stop();
      await killGuestsIn(node.stateDir);
    }
    await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  const startNode = async (name: string): Promise<LocalDiskNode> => {
    const letter = name.slice(-1);
    const stateDir = join(work, letter);
    const disks = join(work, `${letter}-disks`);
    await mkdir(disks, { mode: 0o755, recursive: true });
    await chmod(disks, 0o755);
    const daemon = await startDaemonProcess(
      loopbackDaemonArgs(
        { node: name, certs, stateDir, sharedImageRoot: images.root, imageRoot: join(work, 'namespaces') },
        ...['--shared-image-root', bases],
        ...['--migration-address', '127.0.0.1', '--network', 'user', '--stop-timeout-ms', '3000'],
        ...qemuUserArgs(),
      ),
      { privateMount: { source: disks, target: shared } },
    );
    const address = `127.0.0.1:${daemon.grpcPort}`;
    const files = { ca: certs.ca.cert, ...certs.operator };
    const control = controlClient(address, files);
    const migration = migrationClient(address, files);
    clients.push(control, migration);
    const node = { name, stateDir, disks, daemon, control, migration };
    nodes.push(node);
    return node;
  };
  const restart = async (node: LocalDiskNode): Promise<void> => {
    const fresh = await startNode(node.name);
    nodes.splice(nodes.indexOf(fresh), 1);
    Object.assign(node, fresh);
  };
  try {
    const [a, b] = await Promise.all([startNode('node-a'), startNode('node-b')]);
    return { work, shared, bases, images, a, b, restart, close };
  } catch (error) {
    await close();
    throw error;
  }
}
