// QEMU runs unprivileged: a daemon with --qemu-user starts its guests' QEMU as root (it opens the disks, kernel and
// tap), and QEMU drops to that user with its seccomp filter on before the guest runs; /proc says so. The guest
// boots and holds its tap. Without the option QEMU keeps root but is sandboxed still. A daemon refuses to start,
// with one line saying why, when the user does not exist or cannot reach the state dir. Disk headers are read as
// that user too (qemu-img): an image it cannot read is refused, a readable qcow2 overlay on a shared base boots.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type { GuestControlClient, GuestSpec, Guest__Output } from '../../../proto/index.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import {
  letQemuUserThrough,
  processIdentity,
  qemuUserArgs,
  TEST_QEMU_USER,
} from '../../harness/qemu-user.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

const run = promisify(execFile);

let work: string;
let certs: DevCerts;
let images: TestGuestImages;
const bridge = `tqu${process.pid % 100000}`;
const daemons: DaemonProcess[] = [];
const clients: GuestControlClient[] = [];
const agents: AgentClient[] = [];

async function startNode(stateDir: string, ...extra: string[]): Promise<GuestControlClient> {
  const daemon = await startDaemonProcess(
    loopbackDaemonArgs({ node: 'node-a', certs, stateDir, sharedImageRoot: images.root }, ...extra),
  );
  daemons.push(daemon);
  const client = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca: certs.ca.cert, ...certs.operator });
  clients.push(client);
  return client;
}

function guestSpec(name: string, nics: GuestSpec['nics'] = []): GuestSpec {
  return {
    name,
    uuid: '0e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7',
    cpus: 1,
    memoryMib: 256,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1', 'tern.wss_mib=16'] },
    disks: [],
    nics,
  };
}

const id = async (flag: '-u' | '-g'): Promise<number> =>
  Number((await run('id', [flag, TEST_QEMU_USER])).stdout.trim());

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-qu-'));
  await letQemuUserThrough(work);
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  images = await testGuestImages();
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.close();
  for (const client of clients) client.close();
  for (const daemon of daemons) await daemon.stop();
  if (work) {
    for (const dir of ['user', 'root', 'disks']) await killGuestsIn(join(work, dir));
    await rm(work, { recursive: true, force: true });
  }
  await run('ip', ['link', 'del', 'dev', bridge]).catch(() => undefined);
});

test('with --qemu-user, QEMU runs as that user with seccomp on, the guest boots and holds its tap', async () => {
  const stateDir = join(work, 'user');
  const client = await startNode(stateDir, ...qemuUserArgs(), '--network', 'bridge', '--bridge', bridge);
  const created = await unary<Guest__Output>((done) =>
    client.createGuest({ spec: guestSpec('vmu', [{ mac: '52:54:00:12:34:57' }]) }, done),
  );
  expect(created.phase).toBe('GUEST_PHASE_RUNNING');
  const [uid, gid] = [await id('-u'), await id('-g')];
  expect(await processIdentity(created.pid)).toEqual({
    uids: [uid, uid, uid, uid],
    gids: [gid, gid, gid, gid],
    groups: [gid],
    seccomp: 2,
    noNewPrivs: 1,
  });

  const agent = await AgentClient.connect(guestPaths(stateDir, 'vmu').agent, { timeoutMs: 30_000 });
  agents.push(agent);
  await agent.waitReady(90_000);
  expect((await agent.verify()).ok).toBe(true);
  // The tap's carrier is up only while a process holds it open: QEMU opened it before dropping privileges.
  const tap = created.nics[0]!.tap!.ifname;
  const [link] = JSON.parse((await run('ip', ['-j', 'link', 'show', 'dev', tap])).stdout) as {
    flags: string[];
    master?: string;
  }[];
  expect(link).toMatchObject({ master: bridge });
  expect(link!.flags).toContain('LOWER_UP');
  // The state root is the daemon's, passable (not listable) for QEMU's group only.
  const { stdout } = await run('stat', ['-c', '%u %g %a', stateDir, join(stateDir, '.migrations')]);
  expect(stdout.trim().split('\n')).toEqual([`0 ${gid} 710`, `0 ${gid} 710`]);
}, 150_000);

test('without --qemu-user, QEMU keeps the daemon user (root) but runs sandboxed', async () => {
  const client = await startNode(join(work, 'root'), '--network', 'user');
  const created = await unary<Guest__Output>((done) => client.createGuest({ spec: guestSpec('vmr') }, done));
  expect(created.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await processIdentity(created.pid)).toMatchObject({ uids: [0, 0, 0, 0], seccomp: 2 });
}, 60_000);

test('the daemon refuses to start when --qemu-user names no user', async () => {
  await expect(startNode(join(work, 'nouser'), '--qemu-user', 'tern-no-such-user')).rejects.toThrow(
    '--qemu-user tern-no-such-user: no such user on this host',
  );
}, 30_000);

test('the daemon refuses to start when the QEMU user cannot reach the state dir', async () => {
  const closed = join(work, 'closed');
  await mkdir(closed, { mode: 0o700 });
  await expect(startNode(join(closed, 'state'), ...qemuUserArgs())).rejects.toThrow(
    /QEMU as --qemu-user tern-qemu cannot run on this host: QMP: Unable to access credentials .*keys\.psk: Permission denied/,
  );
}, 30_000);

test('with --qemu-user, disk headers are read as that user: an unreadable image is refused, an overlay boots', async () => {
  const [namespaces, bases] = [join(work, 'namespaces'), join(work, 'bases')];
  await mkdir(join(namespaces, 'team-a'), { recursive: true, mode: 0o755 });
  await mkdir(bases, { mode: 0o755 });
  const img = (...args: string[]) => run('qemu-img', ['create', '-q', '-f', 'qcow2', ...args]);
  await img(join(bases, 'golden.qcow2'), '16M');
  await img('-b', join(bases, 'golden.qcow2'), '-F', 'qcow2', join(namespaces, 'team-a', 'vm.qcow2'));
  await img(join(namespaces, 'team-a', 'private.qcow2'), '16M');
  await chmod(join(bases, 'golden.qcow2'), 0o644);
  await chmod(join(namespaces, 'team-a', 'vm.qcow2'), 0o644);
  await chmod(join(namespaces, 'team-a', 'private.qcow2'), 0o600);
  const client = await startNode(
    join(work, 'disks'),
    ...qemuUserArgs(),
    ...['--network', 'user', '--image-root', namespaces, '--shared-image-root', bases],
  );
  const spec = (name: string, file: string): GuestSpec => ({
    ...guestSpec(name),
    namespace: 'team-a',
    disks: [
      {
        name: 'root',
        path: join(namespaces, 'team-a', file),
        readOnly: false,
        format: 'DISK_FORMAT_QCOW2',
        storage: 'DISK_STORAGE_LOCAL',
      },
    ],
  });
  const refused = await unary((done) =>
    client.createGuest({ spec: spec('vmp', 'private.qcow2') }, done),
  ).then(
    () => undefined,
    (e: unknown) => e as { details: string },
  );
  expect(refused?.details).toContain('disks[0].path');
  expect(refused?.details).toContain(`Permission denied (run as ${TEST_QEMU_USER})`);
  const created = await unary<Guest__Output>((done) =>
    client.createGuest({ spec: spec('vmo', 'vm.qcow2') }, done),
  );
  expect(created.phase).toBe('GUEST_PHASE_RUNNING');
}, 60_000);
