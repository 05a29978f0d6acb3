// The durable transaction workload (guest/README.md "Transaction log") through two real daemons: a guest whose log
// lives on a shared raw disk (one file both nodes see) migrates from node A to node B with the operator's sequence
// (test/harness/migration-driver.ts) while a client keeps committing; afterwards the guest, on B, reads its log
// back from the disk and every acknowledged transaction is there, in order, once. QEMU runs as the unprivileged
// test user, as the Helm chart runs it: it opens the disk as root, and the target activates it after the drop.
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { startDurableClient } from '../../../guest/host/durable-client.js';
import { checkDurability } from '../../../guest/host/txlog.js';
import type { Guest__Output, GuestSpec } from '../../../proto/index.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import {
  begin,
  handOver,
  InMemoryOwnership,
  migrationClient,
  type NodeHandle,
} from '../../harness/migration-driver.js';
import { letQemuUserThrough, qemuUserArgs } from '../../harness/qemu-user.js';
import { expectQuiescingBeforeFreezing } from '../../harness/quiesce-checks.js';

interface Node extends NodeHandle {
  stateDir: string;
  daemon: DaemonProcess;
}

const GUEST = 'db';
let work: string;
let disks: string;
let certs: DevCerts;
let images: TestGuestImages;
let nodeA: Node;
let nodeB: Node;
const agents: AgentClient[] = [];
const clients: { close(): void }[] = [];

async function startNode(name: string): Promise<Node> {
  const stateDir = join(work, name.slice(-1));
  const daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: name, certs, stateDir, sharedImageRoot: images.root, imageRoot: join(work, 'namespaces') },
      ...['--migration-address', '127.0.0.1', '--network', 'user'],
      ...['--stop-timeout-ms', '3000'],
      ...qemuUserArgs(),
    ),
  );
  const address = `127.0.0.1:${daemon.grpcPort}`;
  const files = { ca: certs.ca.cert, ...certs.operator };
  const control = controlClient(address, files);
  const migration = migrationClient(address, files);
  clients.push(control, migration);
  return { name, stateDir, daemon, control, migration };
}

/** The host port QEMU's user networking forwards to the guest's TCP service on this node. */
async function servicePort(node: Node): Promise<number> {
  const guest = await unary<Guest__Output>((done) => node.control.getGuest({ name: GUEST }, done));
  const port = guest.nics[0]?.user?.hostPort;
  if (!port)
    throw new Error(`no user-network port for ${GUEST} on ${node.name}: ${JSON.stringify(guest.nics)}`);
  return port;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-durable-'));
  await letQemuUserThrough(work);
  // The namespace's directory under the daemons' image root, where a VM's writable disks live.
  disks = join(work, 'namespaces', 'default');
  await mkdir(disks, { recursive: true });
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  images = await testGuestImages();
  [nodeA, nodeB] = await Promise.all([startNode('node-a'), startNode('node-b')]);
}, 120_000);

afterAll(async () => {
  agents.forEach((agent) => agent.close());
  clients.forEach((client) => client.close());
  for (const node of [nodeA, nodeB]) {
    if (node === undefined) continue;
    await node.daemon.stop();
    await killGuestsIn(node.stateDir);
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test('a guest committing to a log on a shared disk migrates: no acknowledged transaction is lost', async () => {
  const disk = join(disks, 'txlog.raw');
  await writeFile(disk, '');
  await truncate(disk, 64 * 2 ** 20);
  const spec: GuestSpec = {
    name: GUEST,
    uuid: '5d0e7a11-2b3c-4d5e-8f90-a1b2c3d4d15c',
    namespace: 'default',
    cpus: 1,
    memoryMib: 256,
    boot: {
      kernel: images.kernel,
      initrd: images.initrd,
      cmdline: [...images.cmdline, 'tern.dirty_pps=1000', 'tern.ip=10.0.2.15/24', 'tern.txlog=/dev/vda'],
    },
    disks: [
      {
        name: 'txlog',
        path: disk,
        format: 'DISK_FORMAT_RAW',
        readOnly: false,
        storage: 'DISK_STORAGE_SHARED',
      },
    ],
    nics: [{ mac: '52:54:00:d1:5c:01' }],
  };
  await unary((done) => nodeA.control.createGuest({ spec }, done));
  const sourceAgent = await AgentClient.connect(guestPaths(nodeA.stateDir, GUEST).agent, {
    timeoutMs: 30_000,
  });
  agents.push(sourceAgent);
  await sourceAgent.waitReady(90_000);
  expect(await sourceAgent.txlog()).toMatchObject({ records: 0, writeCache: 'write_back' });

  let port = await servicePort(nodeA);
  const client = startDurableClient({
    name: 'c',
    endpoint: () => ({ host: '127.0.0.1', port }),
    durationMs: 120_000,
  });
  while (client.log.acks.length < 20) {
    if (client.log.errors.length > 50) throw new Error(JSON.stringify(client.log.errors.slice(-3)));
    await sleep(20);
  }

  const record = new InMemoryOwnership();
  record.set(GUEST, nodeA.name);
  let targetAgent: AgentClient | undefined;
  const run = await begin({
    guest: GUEST,
    from: nodeA,
    to: nodeB,
    onPrepared: async () => {
      targetAgent = await AgentClient.connect(guestPaths(nodeB.stateDir, GUEST).agent, { timeoutMs: 30_000 });
      agents.push(targetAgent);
    },
  });
  const result = await handOver(run, { guest: GUEST, from: nodeA, to: nodeB, record });
  const outcome = await run.outcome;
  expect(`${outcome.result} ${outcome.reason}`).toMatch(/^RESULT_COMPLETED/);
  expect(result.owner).toBe(nodeB.name);
  // Quiescing: the source flushed the shared disk (QEMU's pause) and no request reached it until the switchover,
  // where the source inactivates it and only then the target activates it; the step ended before Freezing began.
  console.log(`quiesce: ${JSON.stringify(outcome.quiesce)}`);
  expect(outcome.quiesce).toMatchObject({
    error: '',
    disks: [
      {
        name: 'txlog',
        storage: 'DISK_STORAGE_SHARED',
        writesAfterPause: 0,
        flushesAfterPause: 0,
        otherAfterPause: 0,
        mirrorCompleted: false,
        flushed: true,
      },
    ],
  });
  // The client committed before the pause: each transaction is a write and a flush QEMU counted.
  expect(outcome.quiesce!.disks[0]!.writes).toBeGreaterThanOrEqual(20);
  expect(outcome.quiesce!.disks[0]!.flushes).toBeGreaterThanOrEqual(20);
  expectQuiescingBeforeFreezing(outcome);

  // The client's connection went with the source QEMU; it reconnects to the target's forwarded port.
  port = await servicePort(nodeB);
  const acked = client.log.acks.length;
  while (client.log.acks.length < acked + 20) {
    if (client.log.errors.length > 50) throw new Error(JSON.stringify(client.log.errors.slice(-3)));
    await sleep(20);
  }
  const log = await client.stop();
  const contents = await targetAgent!.readTxLog();
  const report = checkDurability(contents.records, [log]);
  console.log(
    `migration ${outcome.result} in ${outcome.durationMs} ms (QEMU downtime ${outcome.downtimeMs} ms); ` +
      `client: ${log.acks.length} acknowledged, ${log.unknown.length} without a reply; read back on ${nodeB.name}: ` +
      report.text,
  );
  expect(report.ok).toBe(true);
  expect((await targetAgent!.verify()).ok).toBe(true);
}, 300_000);
