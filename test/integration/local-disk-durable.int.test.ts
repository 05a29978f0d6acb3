// Local disks migrating under the durable transaction workload (guest/README.md "Transaction log"): a guest whose
// log lives on a `storage: local` disk keeps committing (guest/host/durable-client.ts) while it migrates between
// two real daemons with the operator's sequence (test/harness/migration-driver.ts). After each migration the log
// the guest reads back on its new node (`readTxLog`, from the disk, not from memory) must hold every acknowledged
// transaction, in order, once (`checkDurability`); once the guest is stopped, its node's image file must hold the
// same records (parsed with `parseTxLogImage`), and the old node's copy is gone (ReleaseSource removes it).
//
// The two "nodes": test/harness/local-disk-nodes.ts (the same disk path names a different file on each; the qcow2
// overlay's base lies under a shared image root both read).
import { execFile } from 'node:child_process';
import { access, chmod, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AgentClient } from '../../guest/host/agent-client.js';
import { startDurableClient, type DurableClient } from '../../guest/host/durable-client.js';
import {
  checkDurability,
  encodeHeader,
  encodeRecord,
  parseTxLogImage,
  type ClientRecord,
  type TxRecord,
} from '../../guest/host/txlog.js';
import type { Guest__Output, GuestSpec } from '../../proto/index.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import type { TestGuestImages } from '../fixtures/test-guest.js';
import { unary } from '../harness/control-client.js';
import { assertAtMostOneRunning, begin, handOver, InMemoryOwnership } from '../harness/migration-driver.js';
import { startLocalDiskNodes, type LocalDiskNode, type LocalDiskNodes } from '../harness/local-disk-nodes.js';
import { expectQuiescingBeforeFreezing } from '../harness/quiesce-checks.js';
import { TcpLink } from '../harness/tcp-link.js';

const run = promisify(execFile);
const MiB = 2 ** 20;

type Node = LocalDiskNode;

let work: string;
let shared: string;
let images: TestGuestImages;
let nodes: LocalDiskNodes | undefined;
let nodeA: Node;
let nodeB: Node;
const record = new InMemoryOwnership();
const agents: AgentClient[] = [];
const workloads: DurableClient[] = [];

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** The host port QEMU's user networking forwards to the guest's TCP service on this node. */
async function servicePort(node: Node, guest: string): Promise<number> {
  const info = await unary<Guest__Output>((done) => node.control.getGuest({ name: guest }, done));
  const port = info.nics[0]?.user?.hostPort;
  if (!port)
    throw new Error(`no user-network port for ${guest} on ${node.name}: ${JSON.stringify(info.nics)}`);
  return port;
}

/** A guest whose transaction log is its only disk, a local one at <namespace dir>/<file>, started on node A. */
async function boot(
  name: string,
  n: number,
  disk: { file: string; format: 'DISK_FORMAT_RAW' | 'DISK_FORMAT_QCOW2' },
): Promise<AgentClient> {
  const suffix = n.toString().padStart(2, '0');
  const spec: GuestSpec = {
    name,
    uuid: `6c0e7a11-2b3c-4d5e-8f90-a1b2c3d4d1${suffix}`,
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
        path: join(shared, disk.file),
        format: disk.format,
        readOnly: false,
        bus: 'DISK_BUS_VIRTIO',
        cache: 'DISK_CACHE_WRITEBACK',
        io: 'DISK_IO_THREADS',
        storage: 'DISK_STORAGE_LOCAL',
        boot: false,
      },
    ],
    nics: [{ mac: `52:54:00:d1:5d:${suffix}` }],
  };
  await unary((done) => nodeA.control.createGuest({ spec }, done));
  const agent = await AgentClient.connect(guestPaths(nodeA.stateDir, name).agent, { timeoutMs: 30_000 });
  agents.push(agent);
  await agent.waitReady(90_000);
  record.set(name, nodeA.name);
  return agent;
}

/** Where a guest's TCP service is reached now; a test moves it to the target's forwarded port after a migration. */
interface Service {
  port: number;
}

/** A durable client of the guest behind `service`, once it has `atLeast` acknowledgements. */
async function commit(service: Service, name: string, atLeast = 20): Promise<DurableClient> {
  const client = startDurableClient({
    name,
    // Asked at every reconnection: after a migration it finds the guest on its new node.
    endpoint: () => ({ host: '127.0.0.1', port: service.port }),
    durationMs: 240_000,
  });
  workloads.push(client);
  await moreAcks(client, atLeast);
  return client;
}

/** Waits until the client has `count` more acknowledgements than now (bounded by its error count). */
async function moreAcks(client: DurableClient, count: number): Promise<void> {
  const target = client.log.acks.length + count;
  while (client.log.acks.length < target) {
    if (client.log.errors.length > 50) throw new Error(JSON.stringify(client.log.errors.slice(-3)));
    await sleep(20);
  }
}

/**
 * Migrates `guest` from → to with the operator's sequence while `client` commits (it must be acknowledged during
 * the migration, or the workload did not run through it); returns the agent on the target.
 */
async function migrate(guest: string, from: Node, to: Node, client: DurableClient): Promise<AgentClient> {
  const ackedBefore = client.log.acks.length;
  let targetAgent: AgentClient | undefined;
  const migration = await begin({
    guest,
    from,
    to,
    onPrepared: async () => {
      targetAgent = await AgentClient.connect(guestPaths(to.stateDir, guest).agent, { timeoutMs: 30_000 });
      agents.push(targetAgent);
    },
  });
  const result = await handOver(migration, { guest, from, to, record });
  const outcome = await migration.outcome;
  const during = client.log.acks.length - ackedBefore;
  const disk = Math.max(0, ...migration.events.map((e) => e.progress?.diskTransferredBytes ?? 0));
  console.log(
    `${guest} ${from.name} → ${to.name}: ${outcome.result} (${outcome.reason}) in ${outcome.durationMs} ms, ` +
      `QEMU downtime ${outcome.downtimeMs} ms, disks ${(disk / MiB).toFixed(1)} MiB; ` +
      `${during} transactions acknowledged during it`,
  );
  expect(`${outcome.result} ${outcome.reason}`).toMatch(/^RESULT_COMPLETED/);
  expect(result.owner).toBe(to.name);
  expect(during).toBeGreaterThan(0);
  // Quiescing: the mirror completed with the guest paused, the disk was flushed, and no request reached it from
  // the pause to the switchover although the client kept committing until the pause (a write and a flush each).
  console.log(`${guest} quiesce: ${JSON.stringify(outcome.quiesce)}`);
  expect(outcome.quiesce).toMatchObject({
    error: '',
    disks: [
      {
        name: 'txlog',
        storage: 'DISK_STORAGE_LOCAL',
        writesAfterPause: 0,
        flushesAfterPause: 0,
        otherAfterPause: 0,
        mirrorCompleted: true,
        flushed: true,
      },
    ],
  });
  // The source QEMU counted the guest's commits on it up to the pause.
  expect(outcome.quiesce!.disks[0]!.writes).toBeGreaterThan(0);
  expect(outcome.quiesce!.disks[0]!.flushes).toBeGreaterThan(0);
  expectQuiescingBeforeFreezing(outcome);
  return targetAgent!;
}

/** The log the guest reads back from its disk holds every acknowledged transaction of `logs`, once, in order. */
async function expectDurable(agent: AgentClient, logs: ClientRecord[], label: string): Promise<TxRecord[]> {
  const { records } = await agent.readTxLog();
  const report = checkDurability(records, logs);
  console.log(`${label}: ${report.text}`);
  expect(report.ok).toBe(true);
  expect(report.acknowledged).toBeGreaterThan(0);
  return records;
}

/** Stops the durable client once it has `count` more acknowledgements (from wherever the guest runs now). */
async function settle(client: DurableClient, count = 20): Promise<ClientRecord> {
  await moreAcks(client, count);
  return client.stop();
}

/**
 * The image on disk, read with the guest stopped, holds the log read back while it ran; at most one more record:
 * the transaction in flight when the client stopped, which the agent wrote after the read (an unknown outcome).
 */
function expectSameLog(onDisk: TxRecord[], running: TxRecord[], logs: ClientRecord[]): void {
  expect(onDisk.slice(0, running.length)).toEqual(running);
  expect(onDisk.length - running.length).toBeLessThanOrEqual(1);
  expect(checkDurability(onDisk, logs).ok).toBe(true);
}

/** The records of the log image in `file` (raw or qcow2), read with the guest stopped. */
async function recordsOnDisk(file: string, format: 'raw' | 'qcow2'): Promise<TxRecord[]> {
  let raw = file;
  if (format === 'qcow2') {
    raw = join(work, `flat-${Date.now()}.raw`);
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', file, raw]);
  }
  const parsed = parseTxLogImage(await readFile(raw));
  if (raw !== file) await rm(raw);
  return parsed.records;
}

async function stopGuest(node: Node, name: string): Promise<void> {
  await unary((done) => node.control.stopGuest({ name, timeoutMs: 3000 }, done));
}

async function deleteGuest(node: Node, name: string): Promise<void> {
  await unary((done) => node.control.deleteGuest({ name }, done));
}

/** An empty raw disk of `sizeMiB` in node A's directory. */
async function blankRaw(file: string, sizeMiB: number): Promise<void> {
  const path = join(nodeA.disks, file);
  await writeFile(path, '', { mode: 0o666 });
  await chmod(path, 0o666);
  await truncate(path, sizeMiB * MiB);
}

beforeAll(async () => {
  nodes = await startLocalDiskNodes('tern-ldd-');
  ({ work, shared, images, a: nodeA, b: nodeB } = nodes);
}, 120_000);

afterAll(async () => {
  await Promise.all(workloads.map((client) => client.stop()));
  agents.forEach((agent) => agent.close());
  await nodes?.close();
});

test('a raw local log disk migrates A → B → A while the guest commits: no acknowledged transaction is lost', async () => {
  const guest = 'rawlog';
  await blankRaw('rawlog.img', 32);
  const agentA = await boot(guest, 1, { file: 'rawlog.img', format: 'DISK_FORMAT_RAW' });
  expect(await agentA.txlog()).toMatchObject({ records: 0, writeCache: 'write_back' });
  const service = { port: await servicePort(nodeA, guest) };

  const there = await commit(service, 'ab');
  const agentB = await migrate(guest, nodeA, nodeB, there);
  service.port = await servicePort(nodeB, guest);
  // ReleaseSource removed A's (now stale) copy once B ran the guest.
  expect(await exists(join(nodeA.disks, 'rawlog.img'))).toBe(false);
  const logAB = await settle(there);
  await expectDurable(agentB, [logAB], 'A → B, read back on B');
  expect((await agentB.verify()).ok).toBe(true);

  const back = await commit(service, 'ba');
  const agentA2 = await migrate(guest, nodeB, nodeA, back);
  service.port = await servicePort(nodeA, guest);
  expect(await exists(join(nodeB.disks, 'rawlog.img'))).toBe(false);
  const logBA = await settle(back);
  const running = await expectDurable(agentA2, [logAB, logBA], 'A → B → A, read back on A');
  expect((await agentA2.verify()).ok).toBe(true);
  expect(await assertAtMostOneRunning(guest, [nodeA, nodeB])).toEqual(['GUEST_PHASE_RUNNING', 'ABSENT']);

  await stopGuest(nodeA, guest);
  const onDisk = await recordsOnDisk(join(nodeA.disks, 'rawlog.img'), 'raw');
  expectSameLog(onDisk, running, [logAB, logBA]);
  await deleteGuest(nodeA, guest);
  await rm(join(nodeA.disks, 'rawlog.img'));
}, 480_000);

test('a qcow2 overlay log on a shared base migrates A → B → A while the guest commits: the base records stay', async () => {
  const guest = 'overlaylog';
  // The base, present on every node, already holds a log: a header and 40 records of a client "seed" (slots 0-40:
  // qcow2's 64 KiB clusters 0 and 1 the guest never writes, so on either node they are read from the base).
  const SEEDED = 40;
  const id = '00c0ffee00d15c01';
  const base = join(work, 'base', 'txlog-base.raw');
  const seed: ClientRecord = {
    name: 'seed',
    acks: Array.from({ length: SEEDED }, (_, i) => ({ seq: i + 1, payload: `seed.${i}` })),
    unknown: [],
  };
  const image = Buffer.alloc(32 * MiB);
  Buffer.concat([encodeHeader(id), ...seed.acks.map((a) => encodeRecord(id, a.seq, a.payload))]).copy(image);
  await writeFile(base, image, { mode: 0o644 });
  expect(parseTxLogImage(await readFile(base)).records).toEqual(seed.acks);
  const overlay = join(nodeA.disks, 'overlaylog.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, '32M']);
  await chmod(overlay, 0o666);

  const agentA = await boot(guest, 2, { file: 'overlaylog.qcow2', format: 'DISK_FORMAT_QCOW2' });
  expect(await agentA.txlog()).toMatchObject({ records: SEEDED });
  const service = { port: await servicePort(nodeA, guest) };
  const there = await commit(service, 'ov');
  const agentB = await migrate(guest, nodeA, nodeB, there);
  service.port = await servicePort(nodeB, guest);
  expect(await exists(overlay)).toBe(false);
  const logAB = await settle(there);
  const onB = await expectDurable(agentB, [seed, logAB], 'qcow2 overlay A → B, read back on B');
  expect(onB.slice(0, SEEDED)).toEqual(seed.acks);
  expect((await agentB.verify()).ok).toBe(true);

  const back = await commit(service, 'vo');
  const agentA2 = await migrate(guest, nodeB, nodeA, back);
  service.port = await servicePort(nodeA, guest);
  const copy = join(nodeB.disks, 'overlaylog.qcow2');
  expect(await exists(copy)).toBe(false);
  const logBA = await settle(back);
  const running = await expectDurable(
    agentA2,
    [seed, logAB, logBA],
    'qcow2 overlay A → B → A, read back on A',
  );
  expect((await agentA2.verify()).ok).toBe(true);

  await stopGuest(nodeA, guest);
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', overlay])).stdout) as Record<
    string,
    unknown
  >;
  expect(info).toMatchObject({ format: 'qcow2', 'backing-filename': base });
  expectSameLog(await recordsOnDisk(overlay, 'qcow2'), running, [seed, logAB, logBA]);
  // The guest wrote only to its overlay: the shared base still holds just the seed log.
  expect(parseTxLogImage(await readFile(base)).records).toEqual(seed.acks);
  await deleteGuest(nodeA, guest);
  await rm(overlay);
}, 480_000);

test('cancel while the mirror write-blocks under commits: the source keeps every acknowledged transaction', async () => {
  const guest = 'cancellog';
  // Room for 32767 records: the guest commits a few hundred a second (TX log full would end the workload).
  await blankRaw('cancellog.img', 128);
  const agent = await boot(guest, 3, { file: 'cancellog.img', format: 'DISK_FORMAT_RAW' });
  const client = await commit({ port: await servicePort(nodeA, guest) }, 'cx');
  let targetAgent: AgentClient | undefined;
  const migration = await begin({
    guest,
    from: nodeA,
    to: nodeB,
    policy: { bandwidthBytesPerSec: 16 * MiB },
    onPrepared: async () => {
      targetAgent = await AgentClient.connect(guestPaths(nodeB.stateDir, guest).agent, { timeoutMs: 30_000 });
      agents.push(targetAgent);
    },
  });
  await migration.until((e) => e.phase?.reason.startsWith('the local disks are in sync') === true);
  await migration.until((e) => (e.progress?.transferredBytes ?? 0) > 0);
  // The guest commits through the write-blocking mirror: each acknowledged write reached both copies.
  await moreAcks(client, 20);
  expect(await exists(join(nodeB.disks, 'cancellog.img'))).toBe(true);
  await unary((done) =>
    nodeA.migration.cancelMigration(
      { migrationId: migration.id, reason: 'test: cancel under commits' },
      done,
    ),
  );
  const outcome = await migration.outcome;
  expect(outcome).toMatchObject({
    result: 'RESULT_ABORTED',
    cause: 'CAUSE_CANCELLED',
    sourceRunState: 'running',
  });
  targetAgent?.close();
  const result = await handOver(migration, { guest, from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeA.name);
  expect(await assertAtMostOneRunning(guest, [nodeA, nodeB])).toEqual(['GUEST_PHASE_RUNNING', 'ABSENT']);
  // The target removed the image it had created.
  expect(await exists(join(nodeB.disks, 'cancellog.img'))).toBe(false);

  // The guest commits on, on the source, to the same disk.
  await moreAcks(client, 20);
  const log = await client.stop();
  const running = await expectDurable(agent, [log], 'cancelled while write-blocking, read back on A');
  expect((await agent.verify()).ok).toBe(true);
  await stopGuest(nodeA, guest);
  const onDisk = await recordsOnDisk(join(nodeA.disks, 'cancellog.img'), 'raw');
  expectSameLog(onDisk, running, [log]);
  await deleteGuest(nodeA, guest);
  await rm(join(nodeA.disks, 'cancellog.img'));
}, 480_000);

test('a guest committing faster than the disk link carries: its writes wait for the target, the copy converges, nothing is lost', async () => {
  const guest = 'fastlog';
  // The NBD connection (the disk copy, and from write-blocking on every guest write) crosses a slow link (a TCP
  // proxy that paces each direction); the memory stream does not. Each transaction writes a 4 KiB slot and the
  // mirror copies the 64 KiB block around it again, so a guest committing at twice the link's rate dirties its
  // disk faster than the link can copy: in background mode the mirror never reaches READY. Room for 65535 records.
  await blankRaw('fastlog.img', 256);
  await boot(guest, 4, { file: 'fastlog.img', format: 'DISK_FORMAT_RAW' });
  const service = { port: await servicePort(nodeA, guest) };
  const client = await commit(service, 'fw');
  const rateFrom = { acks: client.log.acks.length, atMs: Date.now() };
  await sleep(2000);
  const committedPerSec = ((client.log.acks.length - rateFrom.acks) * 1000) / (Date.now() - rateFrom.atMs);
  // The case under test: the guest writes (4 KiB a transaction) at least twice as fast as the link carries (at
  // most 256 KiB/s, slower when this host is slow; at least 32 KiB/s, or the copy would take minutes).
  const LINK_BYTES_PER_SEC = Math.min(256 * 1024, Math.floor((committedPerSec * 4096) / 2));
  console.log(
    `fastlog commits ${committedPerSec.toFixed(0)} transactions/s before the migration; the disk link carries ` +
      `${(LINK_BYTES_PER_SEC / 1024).toFixed(0)} KiB/s`,
  );
  expect(LINK_BYTES_PER_SEC).toBeGreaterThanOrEqual(32 * 1024);

  let link: TcpLink | undefined;
  let targetAgent: AgentClient | undefined;
  const ackedBefore = client.log.acks.length;
  const migration = await begin({
    guest,
    from: nodeA,
    to: nodeB,
    // Bounded: a copy that does not converge fails the migration within 120 s.
    policy: { completionTimeoutPerGibSeconds: 120 },
    connectDisksVia: async (endpoint) => {
      link = await TcpLink.open(endpoint, { bytesPerSec: LINK_BYTES_PER_SEC });
      return link.endpoint;
    },
    onPrepared: async () => {
      targetAgent = await AgentClient.connect(guestPaths(nodeB.stateDir, guest).agent, { timeoutMs: 30_000 });
      agents.push(targetAgent);
    },
  });
  try {
    const result = await handOver(migration, { guest, from: nodeA, to: nodeB, record });
    const outcome = await migration.outcome;
    // Phase notes: a phase "changing" to itself, with the reason.
    const notes = migration.events.flatMap((e) =>
      e.phase !== undefined && e.phase !== null && e.phase.from === e.phase.to ? [e.phase.reason] : [],
    );
    const disk = Math.max(0, ...migration.events.map((e) => e.progress?.diskTransferredBytes ?? 0));
    console.log(
      `${guest}: ${outcome.result} (${outcome.reason}) in ${outcome.durationMs} ms, QEMU downtime ` +
        `${outcome.downtimeMs} ms, disks ${(disk / MiB).toFixed(1)} MiB, ` +
        `${client.log.acks.length - ackedBefore} transactions acknowledged during it; phases ` +
        `${outcome.phases.map((p) => `${p.phase.replace('MIGRATION_PHASE_', '')} ${p.durationMs} ms`).join(' → ')}; ` +
        `notes: ${notes.join(' | ')}`,
    );
    expect(`${outcome.result} ${outcome.reason}`).toMatch(/^RESULT_COMPLETED/);
    expect(result.owner).toBe(nodeB.name);
    // The background copy did not keep up: the engine made the guest's writes wait for the target.
    expect(notes.some((note) => /faster than the copy moves/.test(note))).toBe(true);
    expect(client.log.acks.length - ackedBefore).toBeGreaterThan(0);
  } finally {
    await link?.close();
  }
  service.port = await servicePort(nodeB, guest);
  const log = await settle(client);
  const running = await expectDurable(targetAgent!, [log], 'written faster than the link, read back on B');
  expect((await targetAgent!.verify()).ok).toBe(true);
  await stopGuest(nodeB, guest);
  expectSameLog(await recordsOnDisk(join(nodeB.disks, 'fastlog.img'), 'raw'), running, [log]);
  await deleteGuest(nodeB, guest);
  await rm(join(nodeB.disks, 'fastlog.img'));
}, 480_000);
