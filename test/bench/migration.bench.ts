// Live migration through the two daemons' Migration service vs QEMU→QEMU directly, same busy guest, real QEMU:
//   npm run bench:migration -- [--runs 5] [--memory-mib 1024] [--wss-mib 768] [--dirty-pps 20000] [--direct-tls]
//
// Two guests with the same spec and workload: D migrates back and forth directly (two in-process supervisors,
// the source QEMU migrating straight into the target QEMU's unix socket, or with --direct-tls over TCP with QEMU's
// TLS as the daemons do), T migrates back and forth through two real daemon processes (PrepareIncoming /
// StartMigration / WatchMigration / ResumeTarget / ReleaseSource; the data over TCP with QEMU's TLS keyed by the
// migration's token). Runs alternate (a) and (b); only the guest being migrated dirties memory, the other is set
// to 0 pages/s. Both use the default policy. Total time = start of the migration to target resumed.
// After every migration the agent VERIFYs the guest's memory. Prints medians and ratios (b)/(a); last line:
// `total_ratio=<x> downtime_delta_ms=<y> gap_delta_ms=<z>`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { AgentClient } from '../../guest/host/agent-client.js';
import { generateDevCerts } from '../harness/certificates.js';
import { guestPaths } from '../../hypervisor-node/src/model/state-dir.js';
import { GuestSupervisor } from '../../hypervisor-node/src/runtime/supervisor.js';
import { testGuestImages } from '../fixtures/test-guest.js';
import type { MigrationChannel } from '../../hypervisor-node/src/migration/engine/channel.js';
import { switchoverGap } from '../fixtures/switchover-gap.js';
import { handOverToTarget } from '../fixtures/engine-handover.js';
import {
  channelSettings,
  resolveMigrationPolicy,
} from '../../hypervisor-node/src/migration/engine/policy.js';
import { writePskFile } from '../../hypervisor-node/src/migration/engine/psk.js';
import { SourceMigration } from '../../hypervisor-node/src/migration/engine/source.js';
import { incomingSpec, TargetMigration } from '../../hypervisor-node/src/migration/engine/target.js';
import { UserModeNetwork } from '../../hypervisor-node/src/network/guest-network.js';
import { controlClient, unary } from '../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../harness/daemon-process.js';
import {
  begin,
  handOver,
  migrationClient,
  InMemoryOwnership,
  type NodeHandle,
} from '../harness/migration-driver.js';

const options = new Command()
  .option('--runs <n>', 'migrations per mode', '5')
  .option('--memory-mib <n>', 'guest RAM', '1024')
  .option('--wss-mib <n>', 'working set the guest agent fills and dirties', '768')
  .option('--dirty-pps <n>', 'pages per second the guest agent rewrites', '20000')
  .option('--direct-tls', 'direct runs over TCP with QEMU TLS (PSK) instead of a unix socket (diagnostic)')
  .parse()
  .opts<{ runs: string; memoryMib: string; wssMib: string; dirtyPps: string; directTls?: boolean }>();
const runs = Number(options.runs);
const dirtyPps = Number(options.dirtyPps);

interface Sample {
  totalMs: number;
  downtimeMs: number;
  gapMs: number;
  throughputMBps: number;
}

const work = mkdtempSync(join(tmpdir(), 'tern-mbench-'));
const daemons: DaemonProcess[] = [];
const supervisors: GuestSupervisor[] = [];
const agents: AgentClient[] = [];
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function connectAgent(path: string): Promise<AgentClient> {
  const agent = await AgentClient.connect(path, { timeoutMs: 30_000 });
  agents.push(agent);
  return agent;
}

async function verify(agent: AgentClient, label: string): Promise<void> {
  const result = await agent.verify();
  if (!result.ok) throw new Error(`${label}: VERIFY failed: ${result.detail}`);
}

async function main(): Promise<void> {
  const images = await testGuestImages();
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const spec = (name: string, uuid: string) => ({
    name,
    uuid,
    cpus: 1,
    memoryMiB: Number(options.memoryMib),
    boot: {
      kernel: images.kernel,
      initrd: images.initrd,
      cmdline: ['panic=-1', `tern.wss_mib=${options.wssMib}`, 'tern.dirty_pps=0'],
    },
    disks: [],
    nics: [],
  });

  // (a) direct: two supervisors in this process.
  const base = {
    accel: 'tcg' as const,
    policy: { imageRoots: { sharedRoots: [images.root] }, maxCpus: 2, maxMemoryMiB: 4096 },
    network: new UserModeNetwork(7000),
  };
  const direct = ['da', 'db'].map((n) => {
    const supervisor = new GuestSupervisor({ ...base, stateRoot: join(work, n) });
    supervisors.push(supervisor);
    return { root: join(work, n), supervisor };
  });

  // (b) through two daemon processes.
  const nodes: (NodeHandle & { stateDir: string })[] = [];
  for (const name of ['node-a', 'node-b']) {
    const stateDir = join(work, name.slice(-1)); // short: unix socket paths are limited to 107 bytes
    const daemon = await startDaemonProcess(
      loopbackDaemonArgs(
        { node: name, certs, stateDir, sharedImageRoot: images.root },
        ...['--migration-address', '127.0.0.1', '--network', 'user'],
      ),
    );
    daemons.push(daemon);
    const address = `127.0.0.1:${daemon.grpcPort}`;
    const files = { ca: certs.ca.cert, ...certs.operator };
    nodes.push({
      name,
      stateDir,
      control: controlClient(address, files),
      migration: migrationClient(address, files),
    });
  }

  const directSpec = spec('bench', '9b1f0c2e-3d4a-4b5c-8d6e-7f8091a2b3c4');
  await direct[0]!.supervisor.create(directSpec);
  const wireSpec = {
    ...directSpec,
    memoryMib: directSpec.memoryMiB,
    boot: { ...directSpec.boot },
  };
  await unary((done) => nodes[0]!.control.createGuest({ spec: wireSpec }, done));
  let directAgent = await connectAgent(guestPaths(direct[0]!.root, 'bench').agent);
  let daemonAgent = await connectAgent(guestPaths(nodes[0]!.stateDir, 'bench').agent);
  console.log(`booting two ${options.memoryMib} MiB guests (${options.wssMib} MiB working set)...`);
  await Promise.all([directAgent.waitReady(300_000), daemonAgent.waitReady(300_000)]);

  const policy = resolveMigrationPolicy();
  let directAt = 0;
  const directRun = async (i: number): Promise<Sample> => {
    const from = direct[directAt]!;
    const to = direct[1 - directAt]!;
    const status = from.supervisor.get('bench')!;
    // --direct-tls: the daemons' transport (TCP, QEMU's TLS keyed by a PSK) without the daemons, to tell the
    // transport's cost from the daemons'.
    const key = randomBytes(32);
    const psk = (side: string) => writePskFile(join(work, `direct-${i}-${side}`), `direct-${i}`, key);
    const channel: MigrationChannel = options.directTls
      ? { transport: 'tcp', host: '127.0.0.1', port: 0, tls: await psk('in') }
      : { transport: 'unix', path: join(work, `direct-${i}.sock`) };
    const target = await TargetMigration.prepare({
      supervisor: to.supervisor,
      spec: incomingSpec(status.spec, status.accelerator),
      channel,
      settings: channelSettings(policy),
    });
    const sourceChannel: MigrationChannel =
      channel.transport === 'tcp' ? { ...channel, port: target.port, tls: await psk('out') } : channel;
    const targetAgent = await connectAgent(guestPaths(to.root, 'bench').agent);
    const source = new SourceMigration({
      supervisor: from.supervisor,
      guest: 'bench',
      channel: sourceChannel,
      policy,
    });
    const startedAt = Date.now();
    await source.start();
    // No ownership record in this process: the target owns the guest once it is loaded.
    const resumedAtMs = await handOverToTarget(source, target).catch((error: Error) => {
      throw new Error(`direct run ${i}: ${error.message}`);
    });
    const outcome = await source.done;
    await sleep(300);
    const gap = switchoverGap(directAgent.heartbeats, targetAgent.heartbeats);
    directAgent.close();
    directAgent = targetAgent;
    directAt = 1 - directAt;
    await verify(directAgent, `direct run ${i}`);
    return sample(resumedAtMs - startedAt, outcome.downtimeMs ?? 0, gap.gapMs, outcome);
  };

  const record = new InMemoryOwnership();
  record.set('bench', 'node-a');
  let daemonAt = 0;
  const daemonRun = async (i: number): Promise<Sample> => {
    const from = nodes[daemonAt]!;
    const to = nodes[1 - daemonAt]!;
    let targetAgent: AgentClient | undefined;
    const run = await begin({
      guest: 'bench',
      from,
      to,
      onPrepared: async () => void (targetAgent = await connectAgent(guestPaths(to.stateDir, 'bench').agent)),
    });
    // begin() returns after StartMigration: its start is the migration's first phase change.
    const initializing = await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_INITIALIZING');
    const result = await handOver(run, { guest: 'bench', from, to, record });
    const outcome = await run.outcome;
    if (result.owner !== to.name) throw new Error(`daemon run ${i}: ${outcome.result} ${outcome.reason}`);
    await sleep(300);
    const gap = switchoverGap(daemonAgent.heartbeats, targetAgent!.heartbeats);
    daemonAgent.close();
    daemonAgent = targetAgent!;
    daemonAt = 1 - daemonAt;
    await verify(daemonAgent, `daemon run ${i}`);
    return sample(result.resumedAtMs! - Number(initializing.atUnixMs), outcome.downtimeMs, gap.gapMs, {
      transferredBytes: outcome.transferredBytes,
      qemuTotalTimeMs: outcome.qemuTotalTimeMs,
    });
  };

  const results = { direct: [] as Sample[], daemons: [] as Sample[] };
  for (let i = 1; i <= runs; i++) {
    for (const mode of ['direct', 'daemons'] as const) {
      // Only the guest being migrated dirties memory.
      await (mode === 'direct' ? daemonAgent : directAgent).setDirtyRate(0);
      await (mode === 'direct' ? directAgent : daemonAgent).setDirtyRate(dirtyPps);
      await sleep(1000);
      const s = mode === 'direct' ? await directRun(i) : await daemonRun(i);
      results[mode].push(s);
      console.log(
        `run ${i} ${mode.padEnd(7)} total ${s.totalMs} ms, QEMU downtime ${s.downtimeMs} ms, guest gap ` +
          `${s.gapMs.toFixed(1)} ms, ${s.throughputMBps.toFixed(0)} MB/s; VERIFY OK`,
      );
    }
  }

  const med = (mode: 'direct' | 'daemons', key: keyof Sample) => median(results[mode].map((s) => s[key]));
  for (const mode of ['direct', 'daemons'] as const) {
    console.log(
      `median ${mode.padEnd(7)} total ${med(mode, 'totalMs').toFixed(0)} ms, QEMU downtime ` +
        `${med(mode, 'downtimeMs').toFixed(0)} ms, guest gap ${med(mode, 'gapMs').toFixed(1)} ms, throughput ` +
        `${med(mode, 'throughputMBps').toFixed(0)} MB/s`,
    );
  }
  const totalRatio = med('daemons', 'totalMs') / med('direct', 'totalMs');
  const throughputRatio = med('daemons', 'throughputMBps') / med('direct', 'throughputMBps');
  const downtimeDelta = med('daemons', 'downtimeMs') - med('direct', 'downtimeMs');
  const gapDelta = med('daemons', 'gapMs') - med('direct', 'gapMs');
  console.log(`ratios (b)/(a): total ${totalRatio.toFixed(2)}, throughput ${throughputRatio.toFixed(2)}`);
  console.log(
    `total_ratio=${totalRatio.toFixed(3)} downtime_delta_ms=${downtimeDelta.toFixed(1)} gap_delta_ms=${gapDelta.toFixed(1)}`,
  );
}

function sample(
  totalMs: number,
  downtimeMs: number,
  gapMs: number,
  qemu: { transferredBytes?: number; qemuTotalTimeMs?: number },
): Sample {
  const seconds = (qemu.qemuTotalTimeMs ?? 0) / 1000;
  return {
    totalMs,
    downtimeMs,
    gapMs,
    throughputMBps: seconds > 0 ? (qemu.transferredBytes ?? 0) / 1e6 / seconds : 0,
  };
}

async function cleanup(): Promise<void> {
  for (const agent of agents) agent.close();
  for (const daemon of daemons) await daemon.stop();
  for (const name of ['node-a', 'node-b']) await killGuestsIn(join(work, name.slice(-1)));
  for (const supervisor of supervisors) {
    for (const guest of supervisor.list())
      await supervisor.delete(guest.name, { timeoutMs: 0 }).catch(() => undefined);
    await supervisor.close();
  }
  for (const name of ['da', 'db']) await killGuestsIn(join(work, name.slice(-1)));
  rmSync(work, { recursive: true, force: true });
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (error: unknown) => {
    console.error(error);
    void cleanup().then(() => process.exit(1));
  },
);
