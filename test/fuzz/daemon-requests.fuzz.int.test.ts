// Property against one real daemon (TCG): random and malformed CreateGuest, PrepareIncoming and StartMigration
// requests from the operator's own identity are answered with OK or an error status, never crash the daemon (it
// still answers GetNodeInfo and ListGuests), never start a QEMU for a request it refused, and never wedge a guest
// that runs there (a resident guest stays Running, whatever StartMigration asked of it). Most requests are
// invalid; the few valid ones boot a real QEMU, which is removed again (DeleteGuest, AbortIncoming).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import type {
  Guest__Output,
  GuestControlClient,
  GuestSpec,
  ListGuestsResponse__Output,
  MigrationClient,
  WireMigrationPolicy,
} from '../../proto/index.js';
import { findGuestQemus } from '../../hypervisor-node/src/runtime/process.js';
import { generateDevCerts, type DevCerts } from '../harness/certificates.js';
import { controlClient, unary } from '../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../harness/daemon-process.js';
import { eventually } from '../harness/eventually.js';
import { migrationClient } from '../harness/migration-driver.js';
import { testGuestImages, type TestGuestImages } from '../fixtures/test-guest.js';
import { checkProperty } from './settings.js';

const RESIDENT = 'resident';
const CALL_DEADLINE_MS = 60_000;

let work: string;
let stateDir: string;
let certs: DevCerts;
let images: TestGuestImages;
let daemon: DaemonProcess;
let control: GuestControlClient;
let migration: MigrationClient;
let raw: grpc.Client;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tfz-'));
  stateDir = join(work, 's');
  certs = generateDevCerts(join(work, 'certs'), [{ name: 'node-a' }]);
  images = await testGuestImages();
  daemon = await startDaemonProcess(
    loopbackDaemonArgs(
      { node: 'node-a', certs, stateDir, sharedImageRoot: images.root },
      ...['--network', 'user', '--reserved-memory-mib', '512', '--stop-timeout-ms', '2000'],
    ),
  );
  const address = `127.0.0.1:${daemon.grpcPort}`;
  const files = { ca: certs.ca.cert, cert: certs.operator.cert, key: certs.operator.key };
  control = controlClient(address, files);
  migration = migrationClient(address, files);
  raw = new grpc.Client(
    address,
    grpc.credentials.createSsl(readFileSync(files.ca), readFileSync(files.key), readFileSync(files.cert)),
  );
  // A guest that runs throughout: StartMigration requests aim at it, and it must keep running.
  await unary(
    (done, deadline) => control.createGuest({ spec: validSpec(RESIDENT) }, { deadline }, done),
    CALL_DEADLINE_MS,
  );
});

afterAll(async () => {
  control?.close();
  migration?.close();
  raw?.close();
  await daemon?.stop();
  if (stateDir) await killGuestsIn(stateDir);
  if (work) await rm(work, { recursive: true, force: true });
});

function validSpec(name: string): GuestSpec {
  return {
    name,
    uuid: '5d1f6c1e-2b7a-4e0c-9a51-3c2d7e8f9a01',
    cpus: 1,
    memoryMib: 192,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
}

interface WireDisk {
  name: string;
  path: string;
  readOnly: boolean;
  format: 'DISK_FORMAT_RAW' | 'DISK_FORMAT_QCOW2';
  storage: 'DISK_STORAGE_SHARED' | 'DISK_STORAGE_LOCAL' | 'DISK_STORAGE_UNSPECIFIED';
}
let diskNames = 0;
const raw1 = (path: string, readOnly = true): WireDisk => ({
  name: `d${diskNames++}`,
  path,
  readOnly,
  format: 'DISK_FORMAT_RAW',
  storage: 'DISK_STORAGE_SHARED',
});

/** A spec field by field: mostly valid, often a near miss. Strings and numbers stay wire-typed. */
const specArb = (name: fc.Arbitrary<string>): fc.Arbitrary<(i: TestGuestImages) => GuestSpec> =>
  fc
    .record({
      name,
      uuid: fc.oneof(
        { weight: 4, arbitrary: fc.uuid() },
        fc.constantFrom('', 'not-a-uuid', '5D1F6C1E-2B7A-4E0C-9A51-3C2D7E8F9A0'),
      ),
      cpus: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, fc.constantFrom(0, 65, 4096, 2 ** 32 - 1)),
      memoryMib: fc.oneof({ weight: 4, arbitrary: fc.constant(192) }, fc.constantFrom(0, 1, 63, 2 ** 32 - 1)),
      machine: fc.oneof(
        { weight: 4, arbitrary: fc.constant('') },
        fc.constantFrom('help', 'q35,accel=kvm', 'q35 ', '-q35', '../q35'),
      ),
      cpuModel: fc.oneof(
        { weight: 4, arbitrary: fc.constant('') },
        fc.constantFrom('help', 'max,+vmx', 'host\n', ''),
      ),
      kernel: fc.oneof(
        { weight: 4, arbitrary: fc.constant('KERNEL') },
        fc.constantFrom(
          '',
          'vmlinux',
          '/etc/passwd',
          'ROOT',
          'ROOT/missing',
          'ROOT/../vmlinux',
          'ROOT//vmlinux',
          'KERNEL\n',
          '/proc/self/fd/0',
        ),
      ),
      initrd: fc.oneof(
        { weight: 4, arbitrary: fc.constant('INITRD') },
        fc.constantFrom('', 'INITRD,x', 'ROOT', '/dev/zero'),
      ),
      cmdline: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        fc.array(
          fc.oneof(fc.string(), fc.constantFrom('a b', 'x\ny', '', 'console=ttyS0', 'y'.repeat(2100))),
          { maxLength: 3 },
        ),
      ),
      disks: fc.oneof(
        { weight: 4, arbitrary: fc.constant<WireDisk[]>([]) },
        fc.constantFrom<WireDisk[]>(
          [raw1('/nonexistent.img', false)],
          [
            {
              name: 'root',
              path: 'ROOT',
              readOnly: true,
              format: 'DISK_FORMAT_QCOW2',
              storage: 'DISK_STORAGE_UNSPECIFIED',
            },
          ],
          Array.from({ length: 17 }, () => raw1('KERNEL')),
          [raw1('KERNEL'), raw1('KERNEL')],
        ),
      ),
      nics: fc.oneof(
        { weight: 4, arbitrary: fc.constant<{ mac: string }[]>([]) },
        fc.constantFrom<{ mac: string }[]>(
          [{ mac: '' }],
          [{ mac: '01:00:5e:00:00:01' }],
          [{ mac: '00:11:22:33:44:55' }],
          Array.from({ length: 9 }, (_, i) => ({ mac: `52:54:00:00:00:0${i}` })),
        ),
      ),
    })
    .map((s) => (i: TestGuestImages): GuestSpec => {
      const place = (p: string) =>
        p.replace('KERNEL', i.kernel).replace('INITRD', i.initrd).replace('ROOT', i.root);
      return {
        name: s.name,
        uuid: s.uuid,
        cpus: s.cpus,
        memoryMib: s.memoryMib,
        machine: s.machine,
        cpuModel: s.cpuModel,
        boot: { kernel: place(s.kernel), initrd: place(s.initrd), cmdline: s.cmdline ?? i.cmdline },
        disks: s.disks.map((d) => ({ ...d, path: place(d.path) })),
        nics: s.nics,
      };
    });

const guestName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('fz-a', 'fz-b') },
  fc.constantFrom('', 'UPPER', 'a'.repeat(64), 'x,y', '../x', '-', RESIDENT),
  fc.string({ maxLength: 8 }),
);
const migrationId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('m-1', 'm-2') },
  fc.constantFrom('', 'M_1', 'a'.repeat(64)),
  fc.string({ maxLength: 6 }),
);
/** A token: canonical base64url of 32 bytes, or a near miss. */
const token = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .map((b) => Buffer.from(b).toString('base64url')),
  },
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
  fc.string({ maxLength: 50 }),
);
const policy: fc.Arbitrary<WireMigrationPolicy | undefined> = fc.option(
  fc.record(
    {
      bandwidthBytesPerSec: fc.oneof(fc.constantFrom(0, 1, 2 ** 40, 2 ** 40 + 1, 2 ** 53 - 1), fc.nat()),
      downtimeMs: fc.nat(),
      maxDowntimeMs: fc.nat(),
      downtimeSteps: fc.nat({ max: 200 }),
      allowAutoConverge: fc.boolean(),
      cpuThrottleSteps: fc.array(fc.nat({ max: 120 }), { maxLength: 25 }),
      allowPostCopy: fc.boolean(),
      completionTimeoutPerGibSeconds: fc.nat(),
      stallTimeoutSeconds: fc.nat(),
      stallRounds: fc.nat({ max: 200 }),
      multifdChannels: fc.nat({ max: 300 }),
      multifdCompression: fc.constantFrom('none', 'zstd', 'zlib', ''),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

const METHODS = [
  '/tern.node.v1alpha1.GuestControl/CreateGuest',
  '/tern.node.v1alpha1.GuestControl/DeleteGuest',
  '/tern.node.v1alpha1.GuestControl/StopGuest',
  '/tern.node.v1alpha1.Migration/PrepareIncoming',
  '/tern.node.v1alpha1.Migration/StartMigration',
  '/tern.node.v1alpha1.Migration/AbortIncoming',
];

const call = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('create' as const), spec: specArb(guestName) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('prepare' as const),
      id: migrationId,
      token,
      accelerator: fc.oneof(
        { weight: 4, arbitrary: fc.constant('ACCELERATOR_TCG' as const) },
        fc.constantFrom('ACCELERATOR_KVM' as const, 'ACCELERATOR_UNSPECIFIED' as const),
      ),
      postCopy: fc.boolean(),
      multifdChannels: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat({ max: 300 })),
      multifdCompression: fc.constantFrom('none', 'zstd', 'zlib', ''),
      spec: fc.option(specArb(guestName), { nil: undefined, freq: 8 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      // Fresh ids (a daemon keeps its migration records, and an id it knows answers ALREADY_EXISTS).
      id: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 1_000_000 }).map((n) => `s-${n}`) }, migrationId),
      guest: fc.oneof({ weight: 2, arbitrary: fc.constant(RESIDENT) }, guestName),
      // A closed port: a migration the daemon starts fails at once, and the guest must run on.
      endpoint: fc.oneof(
        { weight: 4, arbitrary: fc.constant('127.0.0.1:1') },
        fc.constantFrom('[::1]:1', 'localhost:0', '', ':', '127.0.0.1:99999', 'host'),
        fc.string({ maxLength: 12 }),
      ),
      token,
      policy,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('raw' as const),
      method: fc.constantFrom(...METHODS),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), new Uint8Array([0x08, 0x80])),
      ),
    }),
  },
);
type Call = typeof call extends fc.Arbitrary<infer T> ? T : never;

interface Answer {
  code: grpc.status;
  details: string;
}

async function answer(promise: Promise<unknown>): Promise<Answer> {
  try {
    await promise;
    return { code: grpc.status.OK, details: '' };
  } catch (error) {
    const e = error as Partial<grpc.ServiceError>;
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, details: e.details ?? '' };
  }
}

/** Sends one call; returns the answer and what to undo if the daemon took it. */
async function send(c: Call): Promise<{ answer: Answer; undo?: () => Promise<void> }> {
  switch (c.kind) {
    case 'create': {
      const spec = c.spec(images);
      const result = await answer(
        unary((done, deadline) => control.createGuest({ spec }, { deadline }, done), CALL_DEADLINE_MS),
      );
      return { answer: result, undo: () => deleteIfListed(spec.name ?? '') };
    }
    case 'prepare': {
      const spec = c.spec?.(images);
      const request = {
        migrationId: c.id,
        token: c.token,
        sourceAccelerator: c.accelerator,
        channel: {
          postCopy: c.postCopy,
          multifdChannels: c.multifdChannels,
          multifdCompression: c.multifdCompression,
        },
        ...(spec ? { spec } : {}),
      };
      const result = await answer(
        unary((done, deadline) => migration.prepareIncoming(request, { deadline }, done), CALL_DEADLINE_MS),
      );
      return {
        answer: result,
        undo: async () => {
          if (result.code === grpc.status.OK) {
            await unary(
              (done, deadline) => migration.abortIncoming({ migrationId: c.id }, { deadline }, done),
              CALL_DEADLINE_MS,
            );
          }
          if (spec) await deleteIfListed(spec.name ?? '');
        },
      };
    }
    case 'start': {
      const request = {
        migrationId: c.id,
        guest: c.guest,
        targetDataEndpoint: c.endpoint,
        token: c.token,
        ...(c.policy ? { policy: c.policy } : {}),
      };
      const result = await answer(
        unary((done, deadline) => migration.startMigration(request, { deadline }, done), CALL_DEADLINE_MS),
      );
      return { answer: result };
    }
    case 'raw': {
      const result = await answer(
        new Promise((resolve, reject) =>
          raw.makeUnaryRequest(
            c.method,
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from(c.bytes),
            { deadline: Date.now() + CALL_DEADLINE_MS },
            (err, value) => (err ? reject(err) : resolve(value)),
          ),
        ),
      );
      return { answer: result };
    }
  }
}

async function listed(): Promise<string[]> {
  const list = await unary<ListGuestsResponse__Output>(
    (done, deadline) => control.listGuests({}, { deadline }, done),
    CALL_DEADLINE_MS,
  );
  return list.guests.map((g) => g.spec?.name ?? '');
}

async function deleteIfListed(name: string): Promise<void> {
  if (name === RESIDENT || !(await listed()).includes(name)) return;
  await unary((done, deadline) => control.deleteGuest({ name }, { deadline }, done), CALL_DEADLINE_MS);
}

/** Statuses that refuse a request: the daemon did nothing for it. */
const REFUSALS = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.UNIMPLEMENTED,
  // grpc-js's answer to bytes that do not decode as the request message.
  grpc.status.INTERNAL,
]);

describe('fuzz: requests from the operator identity against a real daemon', () => {
  it('are answered with a status, never crash it, never start QEMU when refused, never wedge a guest', async () => {
    const codes = new Map<string, number>();
    const residentPid = (
      await unary<Guest__Output>(
        (done, deadline) => control.getGuest({ name: RESIDENT }, { deadline }, done),
        CALL_DEADLINE_MS,
      )
    ).pid;
    await checkProperty(
      'daemon-requests',
      fc.asyncProperty(call, async (c) => {
        const before = new Set(await findGuestQemus(stateDir));
        const guestsBefore = new Set(await listed());
        const { answer: result, undo } = await send(c);
        const key = `${c.kind} ${grpc.status[result.code]}`;
        codes.set(key, (codes.get(key) ?? 0) + 1);
        // Never an answer that says the daemon is gone or hung.
        expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.UNKNOWN]).not.toContain(
          result.code,
        );
        if (result.code !== grpc.status.OK) expect(result.details).not.toBe('');
        // Still alive and answering.
        await unary((done, deadline) => control.getNodeInfo({}, { deadline }, done), CALL_DEADLINE_MS);
        if (REFUSALS.has(result.code)) {
          const started = (await findGuestQemus(stateDir)).filter((pid) => !before.has(pid));
          expect({
            request: c.kind,
            code: grpc.status[result.code],
            details: result.details,
            started,
          }).toEqual({
            request: c.kind,
            code: grpc.status[result.code],
            details: result.details,
            started: [],
          });
          if (c.kind === 'create' || c.kind === 'prepare') {
            const added = (await listed()).filter((name) => !guestsBefore.has(name));
            expect(added).toEqual([]);
          }
        }
        await undo?.();
        // Whatever was created is gone again, and the resident guest still runs on the same QEMU.
        await eventually('only the resident QEMU is left', async () => {
          const pids = await findGuestQemus(stateDir);
          return pids.length === 1 && pids[0] === residentPid ? true : undefined;
        });
        const resident = await unary<Guest__Output>(
          (done, deadline) => control.getGuest({ name: RESIDENT }, { deadline }, done),
          CALL_DEADLINE_MS,
        );
        await eventually('the resident guest runs', async () => {
          const now = await unary<Guest__Output>(
            (done, deadline) => control.getGuest({ name: RESIDENT }, { deadline }, done),
            CALL_DEADLINE_MS,
          );
          return now.phase === 'GUEST_PHASE_RUNNING' ? true : undefined;
        });
        expect(resident.pid).toBe(residentPid);
      }),
      {
        runs: 40,
        weight: 0.05,
        timeoutMs: 120_000,
        examples: [
          [{ kind: 'create', spec: () => validSpec('fz-a') }],
          [
            {
              kind: 'start',
              id: 's-example',
              guest: RESIDENT,
              endpoint: '127.0.0.1:1',
              token: Buffer.alloc(32, 9).toString('base64url'),
              policy: undefined,
            },
          ],
          [
            {
              kind: 'prepare',
              id: 'm-1',
              token: Buffer.alloc(32, 7).toString('base64url'),
              accelerator: 'ACCELERATOR_TCG',
              postCopy: false,
              multifdChannels: 0,
              multifdCompression: 'none',
              spec: () => validSpec('fz-b'),
            },
          ],
        ],
      },
    );
    process.stdout.write(`fuzz daemon-requests: answers ${JSON.stringify(Object.fromEntries(codes))}\n`);
    const exited = await Promise.race([daemon.exited.then(() => true), Promise.resolve(false)]);
    expect(exited).toBe(false);
  });
});
