// Images are not a hole (docs/images.md): the real daemon, given crafted qcow2 images and paths into another
// namespace's directory, refuses each through CreateGuest with INVALID_ARGUMENT naming the field and the reason,
// and never starts a QEMU for it (no guest state dir, no process with the guest's uuid); a qcow2 overlay on a base
// under a shared image root starts, with the base as an explicit backing node.
import { execFileSync } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type {
  Disk__Output,
  GuestControlClient,
  GuestSpec,
  Guest__Output,
  ListGuestsResponse__Output,
} from '../../../proto/index.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';

let work: string;
let stateDir: string;
let namespaces: string;
let bases: string;
let certs: DevCerts;
let images: TestGuestImages;
let daemon: DaemonProcess;
let operator: GuestControlClient;

function img(...args: string[]): void {
  execFileSync('qemu-img', ['create', '-q', ...args]);
}

beforeAll(async () => {
  images = await testGuestImages();
  work = await mkdtemp(join(tmpdir(), 'tern-img-'));
  stateDir = join(work, 's');
  namespaces = join(work, 'namespaces');
  bases = join(work, 'bases');
  const [a, b] = [join(namespaces, 'team-a'), join(namespaces, 'team-b')];
  for (const dir of [a, b, bases]) await mkdir(dir, { recursive: true });
  img('-f', 'qcow2', join(bases, 'golden.qcow2'), '16M');
  img('-f', 'qcow2', '-b', join(bases, 'golden.qcow2'), '-F', 'qcow2', join(a, 'overlay.qcow2'));
  img('-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw', '-u', join(a, 'passwd.qcow2'), '1M');
  img('-f', 'qcow2', '-o', `data_file=${join(work, 'data.raw')}`, join(a, 'datafile.qcow2'), '1M');
  // The second level of the chain is team-b's disk, outside the shared roots.
  img('-f', 'raw', join(b, 'disk.raw'), '1M');
  img('-f', 'qcow2', '-b', join(b, 'disk.raw'), '-F', 'raw', join(bases, 'leaky.qcow2'));
  img('-f', 'qcow2', '-b', join(bases, 'leaky.qcow2'), '-F', 'qcow2', join(a, 'chain.qcow2'));
  await symlink(join(b, 'disk.raw'), join(a, 'borrowed.raw'));
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir, sharedImageRoot: images.root, imageRoot: namespaces },
      ...['--shared-image-root', bases, '--stop-timeout-ms', '3000'],
    ),
  );
  operator = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca: certs.ca.cert, ...certs.operator });
}, 60_000);

afterAll(async () => {
  operator?.close();
  await daemon?.stop();
  if (stateDir) await killGuestsIn(stateDir);
  await rm(work, { recursive: true, force: true });
});

let serial = 0;
function guestSpec(
  namespace: string,
  disk: Partial<Disk__Output>,
): GuestSpec & { name: string; uuid: string } {
  serial++;
  return {
    name: `vm${serial}`,
    uuid: `3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c${String(serial).padStart(2, '0')}`,
    namespace,
    cpus: 1,
    memoryMib: 256,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [
      {
        name: 'root',
        readOnly: false,
        format: 'DISK_FORMAT_QCOW2',
        bus: 'DISK_BUS_VIRTIO',
        cache: 'DISK_CACHE_WRITEBACK',
        io: 'DISK_IO_THREADS',
        storage: 'DISK_STORAGE_LOCAL',
        boot: false,
        ...disk,
      },
    ],
    nics: [],
  };
}

/** Command lines of every process naming `uuid` (QEMU gets it as -uuid). */
async function processesWith(uuid: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(uuid)) found.push(cmdline.replaceAll('\0', ' '));
  }
  return found;
}

describe('CreateGuest refuses images that would reach other host files or namespaces', () => {
  it.each([
    [
      'a qcow2 whose backing file is /etc/passwd',
      'team-a',
      { path: 'team-a/passwd.qcow2' },
      'has a backing file /etc/passwd outside the shared image roots',
    ],
    [
      'a qcow2 with an external data file',
      'team-a',
      { path: 'team-a/datafile.qcow2' },
      'has an external data file',
    ],
    [
      'a chain whose second level lies outside the shared roots',
      'team-a',
      { path: 'team-a/chain.qcow2' },
      'team-b/disk.raw outside the shared image roots',
    ],
    [
      "a symlink to another namespace's disk",
      'team-a',
      { path: 'team-a/borrowed.raw', format: 'DISK_FORMAT_RAW' as const },
      'team-b/disk.raw, outside its namespace',
    ],
    [
      "a path in another namespace's directory",
      'team-b',
      { path: 'team-a/overlay.qcow2' },
      "is outside its namespace's image directory",
    ],
    [
      'a writable disk under a shared root',
      'team-a',
      { path: '../bases/golden.qcow2' },
      'is a shared image, which is read-only',
    ],
  ])('%s', async (_what, namespace, disk, reason) => {
    const spec = guestSpec(namespace, { ...disk, path: join(namespaces, disk.path) });
    const error = (await unary((done) => operator.createGuest({ spec }, done)).then(
      () => undefined,
      (e: unknown) => e,
    )) as grpc.ServiceError | undefined;
    expect(error).toBeDefined();
    expect(grpc.status[error!.code]).toBe('INVALID_ARGUMENT');
    expect(error!.details).toContain('disks[0].path');
    expect(error!.details).toContain(reason);
    // Refused before anything was made for the guest: no state dir, no QEMU.
    await expect(access(join(stateDir, spec.name))).rejects.toThrow('ENOENT');
    expect(await processesWith(spec.uuid)).toEqual([]);
    expect((await unary<ListGuestsResponse__Output>((done) => operator.listGuests({}, done))).guests).toEqual(
      [],
    );
  });
});

describe('an overlay on a shared base', () => {
  it('starts, with the base as an explicit backing node', async () => {
    const spec = guestSpec('team-a', { path: join(namespaces, 'team-a', 'overlay.qcow2') });
    const created = await unary<Guest__Output>((done) => operator.createGuest({ spec }, done));
    expect(created.phase).toBe('GUEST_PHASE_RUNNING');
    const [qemu] = await processesWith(spec.uuid);
    expect(qemu).toContain(
      `"node-name":"disk0-base0","file":"disk0-base0-file","read-only":true,"backing":null`,
    );
    expect(qemu).toContain(`"node-name":"disk0","file":"file0","read-only":false,`);
    expect(qemu).toContain(`"backing":"disk0-base0"}`);
    expect(qemu).toContain(`"filename":"${join(bases, 'golden.qcow2')}"`);
    await unary((done) => operator.deleteGuest({ name: spec.name }, done));
  }, 90_000);
});
