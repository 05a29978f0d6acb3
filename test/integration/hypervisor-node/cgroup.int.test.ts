// Guests outlive the daemon's *container*: a container runtime that stops or restarts the daemon's container kills
// every process of the container's cgroup (runc writes 1 to cgroup.kill). The real daemon runs in a cgroup that
// stands for its container; with --guest-cgroup-root its guest survives the kill of that cgroup and the next
// daemon (in a new container cgroup) re-attaches it, agent answering. A daemon without the option, same kill,
// loses its guest: the mechanism is what keeps the guest alive.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, rmdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { eventually } from '../../harness/eventually.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type { GuestControlClient, Guest__Output } from '../../../proto/index.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import { isQemuOfGuest } from '../../../hypervisor-node/src/runtime/process.js';
import { isAlive } from '../../local-cluster/processes.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

let work: string;
let certs: DevCerts;
let images: TestGuestImages;
/** <cgroup2 mount>/tern-test-<random>: every cgroup of this test lies under it. */
let testCgroup: string;
const daemons: DaemonProcess[] = [];
const clients: GuestControlClient[] = [];
const agents: AgentClient[] = [];
const strays: ChildProcess[] = [];

/** Where cgroup v2 is mounted: /sys/fs/cgroup on a pure v2 host, e.g. /sys/fs/cgroup/unified on a hybrid one. */
async function cgroup2Mount(): Promise<string> {
  for (const line of (await readFile('/proc/mounts', 'utf8')).split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2')
      return mountPoint!.replace(/\\([0-7]{3})/g, (_, octal: string) =>
        String.fromCharCode(parseInt(octal, 8)),
      );
  }
  throw new Error('no cgroup2 file system is mounted (see /proc/mounts)');
}

const procsOf = async (cgroup: string): Promise<number[]> =>
  (await readFile(join(cgroup, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);

/** Waits until no process is left in the cgroup or below it (cgroup.events: populated 0). */
async function emptied(cgroup: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (/populated 1/.test(await readFile(join(cgroup, 'cgroup.events'), 'utf8'))) {
    if (Date.now() > deadline) throw new Error(`processes are still in ${cgroup}: ${await procsOf(cgroup)}`);
    await sleep(20);
  }
}

/** What runc does when it stops a container: kill every process of the container's cgroup at once. */
async function killContainer(cgroup: string): Promise<void> {
  await writeFile(join(cgroup, 'cgroup.kill'), '1');
  await emptied(cgroup);
}

async function removeCgroupTree(cgroup: string): Promise<void> {
  for (const entry of await readdir(cgroup, { withFileTypes: true }))
    if (entry.isDirectory()) await removeCgroupTree(join(cgroup, entry.name));
  await rmdir(cgroup);
}

interface Node {
  name: string;
  stateDir: string;
  daemon: DaemonProcess;
  client: GuestControlClient;
}

async function startNode(name: string, container: string, guestCgroupRoot?: string): Promise<Node> {
  // Short: a guest's socket paths under it must fit in 107 bytes.
  const stateDir = join(work, name);
  await mkdir(container);
  const daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: name, certs, stateDir, sharedImageRoot: images.root },
      ...['--network', 'user', '--stop-timeout-ms', '2000'],
      ...(guestCgroupRoot === undefined ? [] : ['--guest-cgroup-root', guestCgroupRoot]),
    ),
    { cgroup: container },
  );
  daemons.push(daemon);
  const client = controlClient(
    `127.0.0.1:${daemon.grpcPort}`,
    { ca: certs.ca.cert, ...certs.operator },
    name,
  );
  clients.push(client);
  return { name, stateDir, daemon, client };
}

function createGuest(node: Node, name: string, uuid: string): Promise<Guest__Output> {
  const spec = {
    name,
    uuid,
    cpus: 1,
    memoryMib: 128,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
  return unary<Guest__Output>((done) => node.client.createGuest({ spec }, done));
}

async function gone(pid: number, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-cgroup-'));
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  images = await testGuestImages();
  testCgroup = join(await cgroup2Mount(), `tern-test-${randomBytes(4).toString('hex')}`);
  await mkdir(testCgroup);
});

afterAll(async () => {
  for (const agent of agents) agent.close();
  for (const stray of strays) stray.kill('SIGKILL');
  for (const client of clients) client.close();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  if (work) {
    for (const node of ['node-a', 'node-b']) await killGuestsIn(join(work, node));
    await rm(work, { recursive: true, force: true });
  }
  if (testCgroup) {
    // Whatever is left (a guest's shim) goes the same way, then the cgroups can be removed.
    await writeFile(join(testCgroup, 'cgroup.kill'), '1');
    await emptied(testCgroup);
    await removeCgroupTree(testCgroup);
  }
}, 30_000);

test('a guest in a cgroup of its own survives the kill of its daemon container and is re-attached; one in the container dies with it', async () => {
  const guestRoot = join(testCgroup, 'guests');
  // The guest cgroup root does not exist yet: the daemon creates it in its cgroup v2 parent.
  const [guarded, unguarded] = await Promise.all([
    startNode('node-a', join(testCgroup, 'container-a'), guestRoot),
    startNode('node-b', join(testCgroup, 'container-b')),
  ]);
  const [kept, lost] = await Promise.all([
    createGuest(guarded, 'kept', '9d1c6a0e-3b47-4f52-8a0c-1e2f3a4b5c01'),
    createGuest(unguarded, 'lost', '9d1c6a0e-3b47-4f52-8a0c-1e2f3a4b5c02'),
  ]);
  expect([kept.phase, lost.phase]).toEqual(['GUEST_PHASE_RUNNING', 'GUEST_PHASE_RUNNING']);
  const keptCgroup = join(guestRoot, 'kept');
  // The guest's shim and QEMU are in its cgroup, and neither is in the daemon's container (where the daemon may
  // run short-lived helpers of its own).
  const keptProcs = await procsOf(keptCgroup);
  expect(keptProcs).toHaveLength(2);
  expect(keptProcs).toContain(kept.pid);
  const containerProcs = await procsOf(join(testCgroup, 'container-a'));
  expect(containerProcs).toContain(guarded.daemon.pid);
  expect(containerProcs.filter((pid) => keptProcs.includes(pid))).toEqual([]);
  expect(await procsOf(join(testCgroup, 'container-b'))).toContain(lost.pid);

  await Promise.all([
    killContainer(join(testCgroup, 'container-a')),
    killContainer(join(testCgroup, 'container-b')),
  ]);
  expect(await guarded.daemon.exited).toBeNull();
  expect(await unguarded.daemon.exited).toBeNull();
  expect(await isQemuOfGuest(kept.pid, guestPaths(guarded.stateDir, 'kept'))).toBe(true);
  expect(await procsOf(keptCgroup)).toContain(kept.pid);
  expect(await gone(lost.pid)).toBe(true);

  // The restarted daemon (a new container) finds the guest running, the same QEMU, and its agent answers.
  const restarted = await startNode('node-a', join(testCgroup, 'container-a2'), guestRoot);
  const reattached = await unary<Guest__Output>((done) => restarted.client.getGuest({ name: 'kept' }, done));
  expect(reattached).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: kept.pid });
  const agent = await AgentClient.connect(guestPaths(restarted.stateDir, 'kept').agent, {
    timeoutMs: 10_000,
  });
  agents.push(agent);
  await agent.waitReady(60_000);
  expect(await agent.verify()).toMatchObject({ ok: true });

  // Deleting the guest stops its QEMU and removes its cgroup; a cgroup kept busy by a stray process is logged and
  // left behind, and does not fail the delete.
  await unary((done) => restarted.client.deleteGuest({ name: 'kept' }, done));
  expect(await gone(kept.pid)).toBe(true);
  await expect(stat(keptCgroup)).rejects.toMatchObject({ code: 'ENOENT' });
  await createGuest(restarted, 'busy', '9d1c6a0e-3b47-4f52-8a0c-1e2f3a4b5c03');
  const stray = spawn('sleep', ['60'], { stdio: 'ignore' });
  strays.push(stray);
  await writeFile(join(guestRoot, 'busy', 'cgroup.procs'), String(stray.pid));
  await unary((done) => restarted.client.deleteGuest({ name: 'busy' }, done));
  expect(await unary<unknown>((done) => restarted.client.listGuests({}, done))).toEqual({ guests: [] });
  expect(await procsOf(join(guestRoot, 'busy'))).toEqual([stray.pid]);
  // The warning travels over the daemon's stdout, the reply over gRPC: either may come first.
  await eventually('the left-behind cgroup warning', async () =>
    restarted.daemon.logs.find((line) =>
      /^guest busy: its cgroup .*\/busy was left behind: EBUSY/.test(line.msg),
    ),
  );
}, 60_000);

test('the daemon refuses to start when --guest-cgroup-root is not in a cgroup v2 hierarchy', async () => {
  const notCgroup = join(work, 'not-a-cgroup', 'guests');
  await expect(startNode('node-a', join(testCgroup, 'container-refused'), notCgroup)).rejects.toThrow(
    `--guest-cgroup-root ${notCgroup}: neither it nor its parent ${join(work, 'not-a-cgroup')} is a cgroup v2 (cgroup2) directory`,
  );
}, 30_000);
