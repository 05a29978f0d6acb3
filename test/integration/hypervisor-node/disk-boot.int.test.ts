// Disk boot through the real daemon and real QEMU: the firmware (SeaBIOS) boots the project's test disk
// (guest/build-disk.sh) to the agent's READY, from a virtio disk and from a SATA disk; what the guest writes to its
// disks survives a stop and a start; every bus/cache/io combination starts in QEMU; and specs without a boot source,
// with two boot disks or with a boot disk next to a kernel are refused before QEMU runs.
import { copyFile, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import type { GuestControlClient, GuestSpec, Guest__Output } from '../../../proto/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';

let work: string;
let images: string;
let stateDir: string;
let certs: DevCerts;
let guest: TestGuestImages;
let daemon: DaemonProcess;
let operator: GuestControlClient;

type Disk = NonNullable<GuestSpec['disks']>[number];

/** guest/init adds one to the number after this header at every boot, on each virtio disk that starts with it. */
const BOOT_COUNT = 'TERN-BOOTCOUNT ';

type Bus = 'virtio' | 'sata';
type Cache = 'writeback' | 'none' | 'writethrough';
type Io = 'threads' | 'native' | 'io_uring';

const WIRE = {
  virtio: 'DISK_BUS_VIRTIO',
  sata: 'DISK_BUS_SATA',
  writeback: 'DISK_CACHE_WRITEBACK',
  none: 'DISK_CACHE_NONE',
  writethrough: 'DISK_CACHE_WRITETHROUGH',
  threads: 'DISK_IO_THREADS',
  native: 'DISK_IO_NATIVE',
  io_uring: 'DISK_IO_IO_URING',
} as const;

/** A copy of the test boot disk (a guest may write to its boot disk; the cached image stays pristine). */
async function bootDisk(name: string): Promise<string> {
  const file = join(images, `${name}.raw`);
  await copyFile(guest.bootDisk, file);
  return file;
}

/** An 8 MiB raw data disk that starts with the boot counter at 0. */
async function dataDisk(name: string): Promise<string> {
  const file = join(images, `${name}.raw`);
  const handle = await open(file, 'wx');
  try {
    await handle.truncate(8 << 20);
    await handle.write(`${BOOT_COUNT}0\n`, 0);
  } finally {
    await handle.close();
  }
  return file;
}

async function bootCount(file: string): Promise<string> {
  return (await readFile(file)).subarray(0, 32).toString('latin1').split('\n')[0]!;
}

function disk(name: string, path: string, bus: Bus, cache: Cache, io: Io, boot = false): Disk {
  return {
    name,
    path,
    readOnly: false,
    format: 'DISK_FORMAT_RAW',
    bus: WIRE[bus],
    cache: WIRE[cache],
    io: WIRE[io],
    storage: 'DISK_STORAGE_LOCAL',
    boot,
  };
}

/** A disk-boot spec: no `boot`, so the firmware boots the disk marked boot. */
function spec(name: string, disks: Disk[]): GuestSpec {
  return {
    name,
    uuid: '9d3c2b1a-5e4f-4a6b-8c7d-0e1f2a3b4c5d',
    namespace: 'default',
    cpus: 1,
    memoryMib: 256,
    disks,
    nics: [],
  };
}

async function waitForConsole(name: string, pattern: RegExp, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(guestPaths(stateDir, name).console, 'utf8').catch(() => '');
    if (pattern.test(text)) return text;
    if (Date.now() > deadline)
      throw new Error(`no ${pattern} on ${name}'s console within ${ms} ms:\n${text.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Connects to the guest's agent and waits for READY: the guest booted from its disk and runs the agent. */
async function expectAgentReady(name: string): Promise<void> {
  const agent = await AgentClient.connect(guestPaths(stateDir, name).agent, { timeoutMs: 30_000 });
  try {
    const ready = await agent.waitReady(120_000);
    expect(ready).toMatchObject({ wss_mib: 16 });
    expect(await agent.verify(30_000)).toMatchObject({ ok: true });
  } finally {
    agent.close();
  }
}

async function refusal(guestSpec: GuestSpec): Promise<string> {
  const error = (await unary((done) => operator.createGuest({ spec: guestSpec }, done)).then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  expect(error).toBeDefined();
  expect(grpc.status[error!.code]).toBe('INVALID_ARGUMENT');
  return error!.details;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-disk-boot-'));
  // The namespace's directory under the daemon's image root: the guests' writable disks.
  images = join(work, 'namespaces', 'default');
  stateDir = join(work, 'state');
  await mkdir(images, { recursive: true });
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  guest = await testGuestImages({ bootDisk: true });
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir, sharedImageRoot: guest.root, imageRoot: join(work, 'namespaces') },
      '--reserved-memory-mib',
      '1024',
    ),
  );
  operator = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca: certs.ca.cert, ...certs.operator });
}, 120_000);

afterAll(async () => {
  operator?.close();
  await daemon?.stop();
  if (stateDir) await killGuestsIn(stateDir);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('disk boot', () => {
  it('boots the test disk to READY; what the guest wrote to its data disk survives stop and start', async () => {
    const root = await bootDisk('vm1-root');
    const data = await dataDisk('vm1-data');
    const t0 = performance.now();
    const created = await unary<Guest__Output>((done) =>
      operator.createGuest(
        {
          spec: spec('vm1', [
            disk('root', root, 'virtio', 'writeback', 'threads', true),
            disk('data', data, 'virtio', 'none', 'native'),
          ]),
        },
        done,
      ),
    );
    expect(created.phase).toBe('GUEST_PHASE_RUNNING');
    // The wire has no kernel boot for it, and the boot disk is the one marked.
    expect(created.spec?.boot).toBeNull();
    expect(created.spec?.disks.map((d) => d.boot)).toEqual([true, false]);

    await expectAgentReady('vm1');
    console.log(
      `vm1: CreateGuest -> agent READY and VERIFY OK after ${(performance.now() - t0).toFixed(0)} ms`,
    );
    const console1 = await waitForConsole('vm1', /tern-init: boot count 1 on \/dev\/vdb/, 10_000);
    expect(console1).toMatch(/SYSLINUX/);

    // A graceful stop (ACPI power button: the guest syncs and powers off), then the data disk holds what it wrote.
    const stopped = await unary<Guest__Output>((done) =>
      operator.stopGuest({ name: 'vm1', timeoutMs: 30_000 }, done),
    );
    expect(stopped).toMatchObject({ phase: 'GUEST_PHASE_STOPPED', reason: 'PoweredOff' });
    expect(await bootCount(data)).toBe(`${BOOT_COUNT}1`);

    const restarted = await unary<Guest__Output>((done) => operator.startGuest({ name: 'vm1' }, done));
    expect(restarted.phase).toBe('GUEST_PHASE_RUNNING');
    await expectAgentReady('vm1');
    // The second boot read the 1 the first one wrote.
    await waitForConsole('vm1', /tern-init: boot count 2 on \/dev\/vdb/, 10_000);
    await unary((done) => operator.stopGuest({ name: 'vm1', timeoutMs: 30_000 }, done));
    expect(await bootCount(data)).toBe(`${BOOT_COUNT}2`);
    await unary((done) => operator.deleteGuest({ name: 'vm1' }, done));
  }, 300_000);

  it('boots from a SATA disk; QEMU starts a disk of every bus/cache/io combination', async () => {
    const combinations: [Bus, Cache, Io][] = [];
    for (const bus of ['virtio', 'sata'] as const) {
      for (const cache of ['writeback', 'none', 'writethrough'] as const) {
        for (const io of ['threads', 'native', 'io_uring'] as const) {
          if (io !== 'native' || cache === 'none') combinations.push([bus, cache, io]);
        }
      }
    }
    expect(combinations.length).toBe(14);
    // Two guests, because the seven SATA combinations need more than q35's six AHCI ports: vm2 boots from a SATA disk
    // (the first SATA combination) and holds the virtio ones and five more SATA ones, vm3 boots from virtio and holds
    // the last SATA one.
    const sata = combinations.filter(([bus]) => bus === 'sata');
    const guests: { name: string; disks: Disk[]; counted: string[] }[] = [
      { name: 'vm2', disks: [disk('root', await bootDisk('vm2-root'), ...sata[0]!, true)], counted: [] },
      {
        name: 'vm3',
        disks: [disk('root', await bootDisk('vm3-root'), 'virtio', 'writeback', 'threads', true)],
        counted: [],
      },
    ];
    for (const [i, combination] of combinations.entries()) {
      if (combination === sata[0]) continue;
      const target = combination === sata[6] ? guests[1]! : guests[0]!;
      const file = await dataDisk(`${target.name}-d${i}`);
      // The test kernel has no AHCI driver: the guest sees (and counts its boot on) the virtio disks only.
      if (combination[0] === 'virtio') target.counted.push(file);
      target.disks.push(disk(`d${i}`, file, ...combination));
    }
    expect(guests.map((g) => g.disks.length)).toEqual([13, 2]);

    for (const { name, disks, counted } of guests) {
      const created = await unary<Guest__Output>((done) =>
        operator.createGuest({ spec: spec(name, disks) }, done),
      );
      expect(created.phase).toBe('GUEST_PHASE_RUNNING');
      await expectAgentReady(name);
      if (counted.length > 0) {
        await waitForConsole(
          name,
          new RegExp(`(tern-init: boot count 1 on /dev/vd[a-z]\\s+){${counted.length}}`),
          10_000,
        );
      }
      const stopped = await unary<Guest__Output>((done) =>
        operator.stopGuest({ name, timeoutMs: 30_000 }, done),
      );
      expect(stopped).toMatchObject({ phase: 'GUEST_PHASE_STOPPED', reason: 'PoweredOff' });
      for (const file of counted) expect(await bootCount(file)).toBe(`${BOOT_COUNT}1`);
      await unary((done) => operator.deleteGuest({ name }, done));
    }
  }, 300_000);

  it('refuses a spec without a boot source, with two boot disks, or with a boot disk and a kernel', async () => {
    const a = await dataDisk('refused-a');
    const b = await dataDisk('refused-b');
    expect(await refusal(spec('no-boot', [disk('a', a, 'virtio', 'writeback', 'threads')]))).toMatch(
      /boot: the guest has no boot source/,
    );
    expect(
      await refusal(
        spec('two-boot', [
          disk('a', a, 'virtio', 'writeback', 'threads', true),
          disk('b', b, 'virtio', 'writeback', 'threads', true),
        ]),
      ),
    ).toMatch(/disks\[1\]\.boot: only one disk can boot the guest/);
    expect(
      await refusal({
        ...spec('both', [disk('a', a, 'virtio', 'writeback', 'threads', true)]),
        boot: { kernel: a, initrd: '', cmdline: [] },
      }),
    ).toMatch(/disks\[0\]\.boot: must be false/);
    expect(await unary((done) => operator.listGuests({}, done))).toEqual({ guests: [] });
  });
});
