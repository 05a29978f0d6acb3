// The durable transaction workload under real QEMU/TCG (launched directly, no daemon): the agent's log on a
// virtio-blk disk backed by one raw file that two QEMU processes open (shared storage on one host). Every
// acknowledged transaction survives a live migration of the memory from one QEMU to the other, and a kill -9 of
// QEMU followed by a boot from the same disk; and the checker reports a loss when the file is cut or damaged
// while the guest is stopped.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { AgentClient } from './host/agent-client.js';
import { startDurableClient, type DurableClient, type DurableClientLog } from './host/durable-client.js';
import { checkDurability, parseTxLogImage, SLOT_SIZE, type ClientRecord } from './host/txlog.js';
import { killGuest, launchGuest, Qmp, waitMigration, type DirectGuest } from './qemu-direct.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BOOT_TIMEOUT_MS = 120_000;
const DISK_MIB = 64;
/** The log disk's node names: the protocol node (the file) and the raw format node the device uses. */
const FILE_NODE = 'txlog-file';
const DISK_NODE = 'txlog';

describe('durable transaction log under QEMU/TCG', () => {
  let kernel: string;
  let initrd: string;
  let work: string;
  let disk: string;
  const started: DirectGuest[] = [];
  const agents: AgentClient[] = [];
  /** Every client that wrote to the log, for every check: a record nobody sent is a finding. */
  const clients: ClientRecord[] = [];
  let current: DirectGuest;
  let currentAgent: AgentClient;

  const diskArgs = (): string[] => [
    ...['-blockdev', `driver=file,filename=${disk},node-name=${FILE_NODE}`],
    ...['-blockdev', `driver=raw,file=${FILE_NODE},node-name=${DISK_NODE}`],
    ...['-device', `virtio-blk-pci,drive=${DISK_NODE},id=txlog-dev`],
  ];

  const boot = async (name: string, incoming?: string): Promise<DirectGuest> => {
    const guest = await launchGuest({
      kernel,
      initrd,
      name,
      memoryMib: 256,
      append: 'panic=-1 tern.wss_mib=32 tern.dirty_pps=2000 tern.ip=10.0.2.15/24 tern.txlog=/dev/vda',
      extraArgs: diskArgs(),
      ...(incoming ? { incoming } : {}),
    });
    started.push(guest);
    return guest;
  };

  const connectAgent = async (guest: DirectGuest): Promise<AgentClient> => {
    const agent = await AgentClient.connect(guest.agentSock);
    agents.push(agent);
    return agent;
  };

  /** Starts a durable client against `current` (read again at every reconnection), bounded by `durationMs`. */
  const runClient = (name: string, durationMs: number): DurableClient => {
    const client = startDurableClient({
      name,
      endpoint: () => ({ host: '127.0.0.1', port: current.tcpPort }),
      durationMs,
    });
    clients.push(client.log);
    return client;
  };

  const waitAcks = async (log: DurableClientLog, count: number, timeoutMs = 60_000): Promise<void> => {
    const deadline = performance.now() + timeoutMs;
    while (log.acks.length < count) {
      if (performance.now() > deadline) {
        throw new Error(
          `${log.name}: ${log.acks.length} of ${count} acks after ${timeoutMs} ms: ${JSON.stringify(log.errors)}`,
        );
      }
      await sleep(20);
    }
  };

  /** Node `node`'s `active` flag from query-named-block-nodes. */
  const active = async (qmp: Qmp, node: string): Promise<unknown> => {
    const nodes = (await qmp.execute('query-named-block-nodes', { flat: true })) as Record<string, unknown>[];
    return nodes.find((n) => n['node-name'] === node)?.active;
  };

  /** The log device's I/O counters (query-blockstats). */
  const blockStats = async (qmp: Qmp): Promise<{ wr_operations: number; flush_operations: number }> => {
    const all = (await qmp.execute('query-blockstats')) as {
      qdev?: string;
      stats: { wr_operations: number; flush_operations: number };
    }[];
    const dev = all.find((d) => d.qdev?.includes('txlog-dev'));
    if (!dev) throw new Error(`no blockstats for txlog-dev: ${JSON.stringify(all)}`);
    return dev.stats;
  };

  beforeAll(() => {
    const out = execFileSync('bash', [path.join(here, 'build.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    const built = (name: string): string => out.find((p) => path.basename(p) === name)!;
    [kernel, initrd] = [built('vmlinux'), built('initramfs.img')];
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-txlog-'));
    disk = path.join(work, 'log.raw');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, DISK_MIB * 2 ** 20);
  }, 60_000);

  afterAll(async () => {
    agents.forEach((a) => a.close());
    await Promise.all(started.map(killGuest));
    for (const g of started) fs.rmSync(g.dir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it(
    'formats a blank disk and acknowledges transactions after a flush reaches it',
    async () => {
      current = await boot('src');
      currentAgent = await connectAgent(current);
      await currentAgent.waitReady(90_000);
      const empty = await currentAgent.txlog();
      // write_back: the guest sees a volatile cache, so O_DSYNC sends a flush that QEMU turns into fdatasync.
      expect(empty).toMatchObject({
        dev: '/dev/vda',
        records: 0,
        last: 0,
        end: 'blank',
        writeCache: 'write_back',
      });
      expect(empty.capacity).toBe((DISK_MIB * 2 ** 20) / SLOT_SIZE - 1);
      const qmp = await Qmp.connect(current.qmpSock);
      const before = await blockStats(qmp);
      const warmup = runClient('w', 60_000);
      await waitAcks(warmup.log, 20);
      await warmup.stop();
      const after = await blockStats(qmp);
      qmp.close();
      // Each acknowledged transaction was one write and one flush that reached QEMU (O_DSYNC); the summary and
      // listing reads add no writes or flushes.
      const writes = after.wr_operations - before.wr_operations;
      const flushes = after.flush_operations - before.flush_operations;
      console.log(`warm-up: ${warmup.log.acks.length} acknowledged, ${writes} writes, ${flushes} flushes`);
      expect(writes).toBeGreaterThanOrEqual(warmup.log.acks.length);
      expect(flushes).toBeGreaterThanOrEqual(warmup.log.acks.length);
      const { records } = await currentAgent.readTxLog();
      const report = checkDurability(records, clients);
      console.log(`after warm-up: ${report.text}`);
      expect(report.ok).toBe(true);
      expect(warmup.log.acks.map((a) => a.seq)).toEqual(warmup.log.acks.map((_, i) => i + 1));
    },
    BOOT_TIMEOUT_MS,
  );

  it('image locking: a second QEMU that is not an incoming one cannot open the disk', async () => {
    const intruder = await boot('intruder');
    await intruder.exited;
    expect(intruder.proc.exitCode).not.toBe(0);
    expect(intruder.stderr()).toMatch(/Failed to get "write" lock/);
  }, 30_000);

  it(
    'live-migrates the memory to a second QEMU on the same disk with transactions running: none acknowledged is lost',
    async () => {
      // `-incoming defer`: the target opens the disk inactive (no write lock) while the source writes to it.
      const target = await boot('dst', 'defer');
      const targetAgent = await connectAgent(target);
      const targetQmp = await Qmp.connect(target.qmpSock);
      const sourceQmp = await Qmp.connect(current.qmpSock);
      try {
        expect(await active(targetQmp, DISK_NODE)).toBe(false);
        expect(await active(sourceQmp, DISK_NODE)).toBe(true);
        const migSock = path.join(target.dir, 'migrate.sock');
        await targetQmp.execute('migrate-incoming', { uri: `unix:${migSock}` });

        const client = runClient('m', 120_000);
        await waitAcks(client.log, 20);
        const ackedBefore = client.log.acks.length;
        const t0 = performance.now();
        await sourceQmp.execute('migrate-set-parameters', { 'downtime-limit': 50 });
        await sourceQmp.execute('migrate', { uri: `unix:${migSock}` });
        const info = await waitMigration(sourceQmp);
        const t1 = performance.now();
        expect(`${String(info.status)} ${String(info['error-desc'] ?? '')}`.trim()).toBe('completed');
        const ackedDuring = client.log.acks.filter((a) => a.atMs >= t0 && a.atMs <= t1).length;
        // The source let go of the disk; the target took it.
        expect(await active(sourceQmp, DISK_NODE)).toBe(false);
        for (let i = 0; (await active(targetQmp, DISK_NODE)) !== true; i++) {
          if (i > 200) throw new Error('the target never activated the disk');
          await sleep(50);
        }
        // The source stays paused; its clients' connections end with it, and the client moves to the target.
        const previous = current;
        current = target;
        currentAgent = targetAgent;
        await killGuest(previous);
        const afterSwitch = client.log.acks.length;
        await waitAcks(client.log, afterSwitch + 20);
        const log = await client.stop();
        console.log(
          `migration ${String(info['total-time'])} ms (QEMU downtime ${String(info.downtime)} ms); client m: ` +
            `${log.acks.length} acknowledged (${ackedBefore} before the migration, ${ackedDuring} while it ran, ` +
            `${log.acks.length - afterSwitch} by the target; ${((ackedDuring * 1000) / (t1 - t0)).toFixed(0)}/s ` +
            `during the migration), ${log.unknown.length} without a reply, ` +
            `errors ${JSON.stringify(log.errors.map((e) => e.message))}`,
        );
        // Transactions went on while the memory was copied, and on the target afterwards.
        expect(ackedDuring).toBeGreaterThan(0);

        const contents = await targetAgent.readTxLog();
        const report = checkDurability(contents.records, clients);
        console.log(`after the migration, read from the target: ${report.text}`);
        expect(report.ok).toBe(true);
        expect(report.acknowledged).toBeGreaterThan(40);
      } finally {
        targetQmp.close();
        sourceQmp.close();
      }
    },
    BOOT_TIMEOUT_MS * 2,
  );

  it(
    'keeps every acknowledged transaction through a kill -9 of QEMU and a boot from the same disk',
    async () => {
      const client = runClient('k', 120_000);
      await waitAcks(client.log, 30);
      await killGuest(current); // mid-transaction: the client has one in flight
      const log = await client.stop();
      console.log(
        `client k: ${log.acks.length} acknowledged before the kill, ${log.unknown.length} without a reply`,
      );

      // Read the disk file itself, QEMU gone: the parser finds the end of the log.
      const image = parseTxLogImage(fs.readFileSync(disk));
      const fromFile = checkDurability(image.records, clients);
      console.log(`read from the file after kill -9 (end: ${image.end}): ${fromFile.text}`);
      expect(fromFile.ok).toBe(true);

      current = await boot('restart');
      currentAgent = await connectAgent(current);
      await currentAgent.waitReady(90_000);
      const summary = await currentAgent.txlog();
      expect(summary.recovered).toBe(image.records.length);
      const more = runClient('r', 60_000);
      await waitAcks(more.log, 10);
      await more.stop();
      // The restarted agent continued the sequence right after the last record it found.
      expect(more.log.acks[0]!.seq).toBe(image.records.length + 1);
      const report = checkDurability((await currentAgent.readTxLog()).records, clients);
      console.log(`after the restart, read by the agent: ${report.text}`);
      expect(report.ok).toBe(true);
    },
    BOOT_TIMEOUT_MS * 2,
  );

  it(
    'reports the loss when the log is cut or damaged while the guest is stopped',
    async () => {
      await killGuest(current);
      const before = parseTxLogImage(fs.readFileSync(disk));
      expect(checkDurability(before.records, clients).ok).toBe(true);
      const acked = clients.flatMap((c) => c.acks);

      // Cut the file: the last five records are gone. The parser reads the shorter image to its end.
      const keep = before.records.length - 5;
      fs.truncateSync(disk, (keep + 1) * SLOT_SIZE);
      const cut = parseTxLogImage(fs.readFileSync(disk));
      expect(cut).toMatchObject({ end: 'device-end', capacity: keep });
      const cutReport = checkDurability(cut.records, clients);
      console.log(`after cutting the file to ${keep} records, read from the file: ${cutReport.text}`);
      expect(cutReport.ok).toBe(false);
      expect(cutReport.lost.map((a) => a.seq)).toEqual(acked.filter((a) => a.seq > keep).map((a) => a.seq));
      expect(cutReport.lost.length).toBeGreaterThanOrEqual(4); // at most the last one was unacknowledged

      // Damage one acknowledged record in the middle (two payload bytes), then boot: the agent's reader stops
      // there and refuses to append after it, and the check names every acknowledged record from there on.
      const damaged = Math.floor(keep / 2);
      const fd = fs.openSync(disk, 'r+');
      fs.writeSync(fd, Buffer.from('XX'), 0, 2, damaged * SLOT_SIZE + 32);
      fs.closeSync(fd);
      current = await boot('damaged');
      currentAgent = await connectAgent(current);
      await currentAgent.waitReady(90_000);
      const read = await currentAgent.readTxLog();
      expect(read.summary).toMatchObject({ last: damaged - 1, end: 'torn', recoveredEnd: 'torn' });
      const report = checkDurability(read.records, clients);
      console.log(`after damaging seq ${damaged}, read by the agent: ${report.text}`);
      expect(report.ok).toBe(false);
      expect(report.lost.map((a) => a.seq)).toEqual(acked.filter((a) => a.seq >= damaged).map((a) => a.seq));
      expect(report.text).toContain(`lost (acknowledged, not in the log)`);
      const refused = startDurableClient({
        name: 'x',
        endpoint: () => ({ host: '127.0.0.1', port: current.tcpPort }),
        transactions: 1,
      });
      const refusedLog = await refused.done;
      expect(refusedLog.acks).toEqual([]);
      expect(refusedLog.errors[0]?.message).toMatch(/ERR TX log failed: damaged at seq/);
    },
    BOOT_TIMEOUT_MS * 2,
  );
});
