// Guests outlive the daemon's *container*: a container runtime that stops or restarts the daemon's container kills
// every process of the container's cgroup (runc writes 1 to cgroup.kill). The real daemon runs in a cgroup that
// stands for its container; with --guest-cgroup-root its guest survives the kill of that cgroup and the next
// daemon (in a new container cgroup) re-attaches it, agent answering. A daemon without the option, same kill,
// loses its guest: the mechanism is what keeps the guest alive. On a cgroup v1 (or hybrid) host the same holds with
// the container's cgroups in every hierarchy, killed as runc 1.1 does (freeze its freezer cgroup, SIGKILL every pid
// of its devices cgroup, thaw) and kubelet does for a deleted pod (every pid of its cgroups in each hierarchy).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
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
import { createGuestCgroup } from '../../../hypervisor-node/src/runtime/cgroup.js';
import { isAlive } from '../../local-cluster/processes.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

/** node-a and node-b for the cgroup v2 tests, node-c and node-d (state dirs of their own) for cgroup v1. */
const NODES = ['node-a', 'node-b', 'node-c', 'node-d'];
let work: string;
let certs: DevCerts;
let images: TestGuestImages;
/** <cgroup2 mount>/tern-test-<random>: every cgroup of this test lies under it. */
let testCgroup: string;
/** Its name: on a cgroup v1 host, <hierarchy>/<name> holds the v1 test's cgroups in each hierarchy. */
const testName = `tern-test-${randomBytes(4).toString('hex')}`;
/** The cgroup v1 hierarchies (and the hybrid unified one) mounted in /sys/fs/cgroup, as /proc/mounts lists them. */
let hierarchies: string[] = [];
const daemons: DaemonProcess[] = [];
const clients: GuestControlClient[] = [];
const agents: AgentClient[] = [];
const strays: ChildProcess[] = [];

const unescape = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Where cgroup v2 is mounted: /sys/fs/cgroup on a pure v2 host, e.g. /sys/fs/cgroup/unified on a hybrid one. */
async function cgroup2Mount(): Promise<string> {
  for (const line of (await readFile('/proc/mounts', 'utf8')).split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return unescape(mountPoint!);
  }
  throw new Error('no cgroup2 file system is mounted (see /proc/mounts)');
}

/** Every cgroup hierarchy mounted in /sys/fs/cgroup/<dir> (none on a pure cgroup v2 host). */
async function hierarchiesInSysFs(): Promise<string[]> {
  const found: string[] = [];
  for (const line of (await readFile('/proc/mounts', 'utf8')).split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if ((type === 'cgroup' || type === 'cgroup2') && /^\/sys\/fs\/cgroup\/[^/]+$/.test(unescape(mountPoint!)))
      found.push(unescape(mountPoint!));
  }
  return found;
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

/** <hierarchy>/<testName>/<relative> in every hierarchy, created. */
async function cgroupsV1(relative: string): Promise<string[]> {
  const dirs = hierarchies.map((h) => join(h, testName, relative));
  for (const dir of dirs) await createGuestCgroup(dir);
  return dirs;
}

const inHierarchy = (dir: string, name: string): boolean => dir.startsWith(`/sys/fs/cgroup/${name}/`);

/**
 * What runc 1.1 does when it stops a container on cgroup v1 (signalAllProcesses): freeze its freezer cgroup, SIGKILL
 * every pid of its devices cgroup, thaw; then what kubelet does with a deleted pod's cgroups: SIGKILL every pid in
 * them, in each hierarchy.
 */
async function killContainerV1(cgroups: string[]): Promise<void> {
  const freezer = cgroups.find((dir) => inHierarchy(dir, 'freezer'))!;
  const devices = cgroups.find((dir) => inHierarchy(dir, 'devices'))!;
  await writeFile(join(freezer, 'freezer.state'), 'FROZEN');
  for (const pid of await procsOf(devices)) process.kill(pid, 'SIGKILL');
  await writeFile(join(freezer, 'freezer.state'), 'THAWED');
  for (const cgroup of cgroups) for (const pid of await procsOf(cgroup)) process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  for (const cgroup of cgroups) {
    while ((await procsOf(cgroup)).length > 0) {
      if (Date.now() > deadline)
        throw new Error(`processes are still in ${cgroup}: ${await procsOf(cgroup)}`);
      await sleep(20);
    }
  }
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

async function startNode(
  name: string,
  container: string | string[],
  guestCgroupRoot?: string,
): Promise<Node> {
  // Short: a guest's socket paths under it must fit in 107 bytes.
  const stateDir = join(work, name);
  if (typeof container === 'string') await mkdir(container);
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
  certs = generateDevCerts(
    join(work, 'pki'),
    NODES.map((name) => ({ name })),
  );
  images = await testGuestImages();
  testCgroup = join(await cgroup2Mount(), testName);
  await mkdir(testCgroup);
  hierarchies = await hierarchiesInSysFs();
});

afterAll(async () => {
  for (const agent of agents) agent.close();
  for (const stray of strays) stray.kill('SIGKILL');
  for (const client of clients) client.close();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(join(work, node));
    await rm(work, { recursive: true, force: true });
  }
  if (testCgroup) {
    // Whatever is left (a guest's shim) goes the same way, then the cgroups can be removed.
    await writeFile(join(testCgroup, 'cgroup.kill'), '1');
    await emptied(testCgroup);
    await removeCgroupTree(testCgroup);
  }
  for (const hierarchy of hierarchies) {
    const root = join(hierarchy, testName);
    if (hierarchy === join(testCgroup, '..')) continue;
    await stat(root).then(
      () => removeCgroupTree(root),
      () => undefined,
    );
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

const onCgroupV1 = existsSync('/sys/fs/cgroup/freezer') && existsSync('/sys/fs/cgroup/devices');

(onCgroupV1 ? test : test.skip)(
  'cgroup v1: a guest in cgroups of its own in every hierarchy survives the kill of its daemon container (runc, kubelet) and is re-attached; one in the container dies with it',
  async () => {
    const [containerA, containerB] = await Promise.all([cgroupsV1('container-a'), cgroupsV1('container-b')]);
    // The flag names a path under the hierarchies' mount dir; the daemon makes it in each hierarchy.
    const guestRoot = join('/sys/fs/cgroup', testName, 'guests');
    const [guarded, unguarded] = await Promise.all([
      startNode('node-c', containerA, guestRoot),
      startNode('node-d', containerB),
    ]);
    const [kept, lost] = await Promise.all([
      createGuest(guarded, 'kept', '9d1c6a0e-3b47-4f52-8a0c-1e2f3a4b5c11'),
      createGuest(unguarded, 'lost', '9d1c6a0e-3b47-4f52-8a0c-1e2f3a4b5c12'),
    ]);
    expect([kept.phase, lost.phase]).toEqual(['GUEST_PHASE_RUNNING', 'GUEST_PHASE_RUNNING']);
    const keptCgroups = hierarchies.map((h) => join(h, testName, 'guests', 'kept'));
    for (const [index, cgroup] of keptCgroups.entries()) {
      // The shim and QEMU are in the guest's cgroup of every hierarchy, none in the container's.
      const procs = await procsOf(cgroup);
      expect({ cgroup, procs: procs.length, qemu: procs.includes(kept.pid) }).toEqual({
        cgroup,
        procs: 2,
        qemu: true,
      });
      expect((await procsOf(containerA[index]!)).filter((pid) => procs.includes(pid))).toEqual([]);
      expect(await procsOf(containerA[index]!)).toContain(guarded.daemon.pid);
      expect(await procsOf(containerB[index]!)).toContain(lost.pid);
    }
    // The guest's cpuset cgroup got its parent's CPUs (a v1 cpuset cgroup starts with none).
    const cpuset = keptCgroups.find((dir) => inHierarchy(dir, 'cpuset'));
    if (cpuset) expect((await readFile(join(cpuset, 'cpuset.cpus'), 'utf8')).trim()).not.toBe('');

    await Promise.all([killContainerV1(containerA), killContainerV1(containerB)]);
    expect(await guarded.daemon.exited).toBeNull();
    expect(await unguarded.daemon.exited).toBeNull();
    expect(await isQemuOfGuest(kept.pid, guestPaths(guarded.stateDir, 'kept'))).toBe(true);
    expect(await gone(lost.pid)).toBe(true);

    const restarted = await startNode('node-c', await cgroupsV1('container-a2'), guestRoot);
    const reattached = await unary<Guest__Output>((done) =>
      restarted.client.getGuest({ name: 'kept' }, done),
    );
    expect(reattached).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: kept.pid });
    const agent = await AgentClient.connect(guestPaths(restarted.stateDir, 'kept').agent, {
      timeoutMs: 10_000,
    });
    agents.push(agent);
    await agent.waitReady(60_000);
    expect(await agent.verify()).toMatchObject({ ok: true });

    // Deleting the guest removes its cgroup in every hierarchy.
    await unary((done) => restarted.client.deleteGuest({ name: 'kept' }, done));
    expect(await gone(kept.pid)).toBe(true);
    for (const cgroup of keptCgroups) await expect(stat(cgroup)).rejects.toMatchObject({ code: 'ENOENT' });
  },
  90_000,
);

test('the daemon refuses to start when --guest-cgroup-root is in no cgroup hierarchy', async () => {
  const notCgroup = join(work, 'not-a-cgroup', 'guests');
  await expect(startNode('node-a', join(testCgroup, 'container-refused'), notCgroup)).rejects.toThrow(
    `--guest-cgroup-root ${notCgroup}: neither it nor its parent ${join(work, 'not-a-cgroup')} is a cgroup v2 (cgroup2) directory, and no directory above it holds cgroup v1 hierarchies`,
  );
}, 30_000);

test('guests created at once under a parent cgroup that does not exist yet all get their cgroup', async () => {
  // Each call creates the missing parent; the others must take the one that appeared meanwhile as it is.
  const dirs = Array.from({ length: 8 }, (_, index) => join(testCgroup, 'fresh-parent', `guest-${index}`));
  await Promise.all(dirs.map((dir) => createGuestCgroup(dir)));
  for (const dir of dirs) expect((await stat(join(dir, 'cgroup.procs'))).isFile()).toBe(true);
  await expect(createGuestCgroup(join(work, 'plain', 'guest'))).rejects.toThrow(
    `${work} is not a cgroup directory`,
  );
}, 30_000);
