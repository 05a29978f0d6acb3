// The migration engine against real QEMU (TCG): two supervisors with separate state roots on this machine, the
// source QEMU migrating straight into the target QEMU's incoming unix socket. Every migration ends with the
// agent's VERIFY (a lost page fails the test), and a watcher asserts throughout that at most one QEMU runs the
// guest. Every QEMU started here is killed in afterAll even when a test fails.
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { GuestSupervisor, type SupervisorOptions } from '../../../hypervisor-node/src/runtime/supervisor.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { UserModeNetwork } from '../../../hypervisor-node/src/network/guest-network.js';
import { switchoverGap, type SwitchoverGap } from '../../fixtures/switchover-gap.js';
import {
  assertAtMostOneQemuRunning,
  handOverToTarget,
  rollBackToSource,
  runStateOf,
} from '../../fixtures/engine-handover.js';
import type { MigrationChannel } from '../../../hypervisor-node/src/migration/engine/channel.js';
import type { EnginePhase } from '../../../hypervisor-node/src/migration/engine/phases.js';
import { writePskFile } from '../../../hypervisor-node/src/migration/engine/psk.js';
import {
  channelSettings,
  resolveMigrationPolicy,
  type ResolvedMigrationPolicy,
} from '../../../hypervisor-node/src/migration/engine/policy.js';
import { SourceMigration, type SourceOutcome } from '../../../hypervisor-node/src/migration/engine/source.js';
import { incomingSpec, TargetMigration } from '../../../hypervisor-node/src/migration/engine/target.js';

const MiB = 2 ** 20;
/** Emulates a slow link: the hot guest dirties its 32 MiB working set faster than this. */
const SLOW_LINK = 20 * MiB;
const HOT_DIRTY_PPS = 20_000;

interface Node {
  name: string;
  root: string;
  supervisor: GuestSupervisor;
}

/** Where a guest currently runs, with an agent client on that QEMU. */
interface Placement {
  node: Node;
  agent: AgentClient;
}

interface EngineMigration {
  source: SourceMigration;
  target: TargetMigration;
  targetAgent: AgentClient;
  targetPid: number;
  /** Every phase the source announced, subscribed before start(). */
  seenPhases: EnginePhase[];
  /** Stops the run-state watcher and returns what it saw (throws on a violation). */
  stopWatch: () => Promise<number>;
}

let work: string;
let images: TestGuestImages;
let nodeA: Node;
let nodeB: Node;
let migrationCount = 0;
const agents: AgentClient[] = [];
const guests = new Map<string, Placement>();

function spec(name: string, uuidSuffix: string, memoryMiB: number, wssMiB: number, dirtyPps: number) {
  return {
    name,
    uuid: `7c2f1d3b-4e5f-4a6b-9c8d-1e2f3a4b${uuidSuffix}`,
    cpus: 1,
    memoryMiB,
    boot: {
      kernel: images.kernel,
      initrd: images.initrd,
      cmdline: ['panic=-1', `tern.wss_mib=${wssMiB}`, `tern.dirty_pps=${dirtyPps}`],
    },
    disks: [],
    nics: [],
  };
}

async function connectAgent(node: Node, guest: string): Promise<AgentClient> {
  const agent = await AgentClient.connect(guestPaths(node.root, guest).agent, { timeoutMs: 30_000 });
  agents.push(agent);
  return agent;
}

async function boot(node: Node, input: ReturnType<typeof spec>): Promise<void> {
  await node.supervisor.create(input);
  const agent = await connectAgent(node, input.name);
  await agent.waitReady(90_000);
  guests.set(input.name, { node, agent });
}

async function expectVerifyOk(agent: AgentClient): Promise<void> {
  const result = await agent.verify();
  expect(result.detail).toMatch(/^OK /);
  expect(result.ok).toBe(true);
}

/**
 * Starts target and source; watches the at-most-one-running invariant every 25 ms until stopWatch(). `tcpTls`
 * migrates over loopback TCP with QEMU's TLS keyed by a fresh PSK (as the daemons do) instead of a unix socket.
 */
async function startMigration(
  guest: string,
  to: Node,
  policy: ResolvedMigrationPolicy,
  options: { quiesce?: () => Promise<void>; tcpTls?: boolean } = {},
): Promise<EngineMigration> {
  const { quiesce } = options;
  const from = guests.get(guest)!.node;
  const status = from.supervisor.get(guest)!;
  const count = ++migrationCount;
  const key = randomBytes(32);
  const tlsIn = (side: string) => writePskFile(path.join(work, `psk-${side}-${count}`), `m${count}`, key);
  const channel: MigrationChannel = options.tcpTls
    ? { transport: 'tcp', host: '127.0.0.1', port: 0, tls: await tlsIn('target') }
    : { transport: 'unix', path: path.join(work, `m${count}.sock`) };
  const target = await TargetMigration.prepare({
    supervisor: to.supervisor,
    spec: incomingSpec(status.spec, status.accelerator),
    channel,
    settings: channelSettings(policy),
  });
  const sourceChannel: MigrationChannel =
    channel.transport === 'tcp' ? { ...channel, port: target.port, tls: await tlsIn('source') } : channel;
  const targetPid = to.supervisor.get(guest)!.pid!;
  const seenPhases: EnginePhase[] = [];
  // Connect before the target runs: the ISA serial agent channel drops what the guest writes while no one listens.
  const targetAgent = await connectAgent(to, guest);
  const source = new SourceMigration({
    supervisor: from.supervisor,
    guest,
    channel: sourceChannel,
    policy,
    ...(quiesce ? { quiesce } : {}),
  });
  source.on('phase', (change) => seenPhases.push(change.to));
  await source.start();
  let checks = 0;
  let violation: unknown;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      await assertAtMostOneQemuRunning(source.qmp, target.qmp).then(
        () => checks++,
        (err: unknown) => (violation ??= err),
      );
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  const stopWatch = async (): Promise<number> => {
    watching = false;
    await watch;
    if (violation !== undefined) throw violation;
    return checks;
  };
  return { source, target, targetAgent, targetPid, seenPhases, stopWatch };
}

/** Hand-over on success; checks the source is gone, then VERIFY on the target. Returns the guest-perceived gap. */
async function completeMigration(
  guest: string,
  to: Node,
  migration: EngineMigration,
): Promise<SwitchoverGap> {
  const from = guests.get(guest)!;
  const loadedAt = migration.target.loaded.then((loaded) => loaded.atMs);
  // The record names the target (this test is the record): resume the target, release the source.
  const resumedAtMs = await handOverToTarget(migration.source, migration.target);
  console.log(`${guest}: target loaded → resumed in ${resumedAtMs - (await loadedAt)} ms`);
  const checks = await migration.stopWatch();
  expect(checks).toBeGreaterThan(0);
  expect(await runStateOf(migration.target.qmp)).toBe('running');
  expect(await runStateOf(migration.source.qmp)).toBe('absent');
  await expect(access(guestPaths(from.node.root, guest).dir)).rejects.toThrow(/ENOENT/);
  // Let the target's heartbeats flow before measuring the gap.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const gap = switchoverGap(from.agent.heartbeats, migration.targetAgent.heartbeats);
  guests.set(guest, { node: to, agent: migration.targetAgent });
  await expectVerifyOk(migration.targetAgent);
  return gap;
}

/** After a migration that ended before the hand-over: the source runs, the target leaves nothing behind. */
async function expectStillOnSource(guest: string, to: Node, migration: EngineMigration): Promise<void> {
  const here = guests.get(guest)!;
  await migration.target.abort();
  await migration.stopWatch();
  expect(await runStateOf(migration.source.qmp)).toBe('running');
  expect(here.node.supervisor.get(guest)?.phase).toBe('Running');
  expect(to.supervisor.get(guest)).toBeUndefined();
  expect(() => process.kill(migration.targetPid, 0)).toThrow(/ESRCH/);
  await expect(access(guestPaths(to.root, guest).dir)).rejects.toThrow(/ENOENT/);
  const heartbeats = here.agent.heartbeats.length;
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(here.agent.heartbeats.length).toBeGreaterThan(heartbeats);
  await expectVerifyOk(here.agent);
}

function phasesOf(outcome: SourceOutcome): EnginePhase[] {
  return outcome.phases.map((p) => p.phase);
}

function report(label: string, outcome: SourceOutcome, gap?: SwitchoverGap): void {
  const decisions = outcome.decisions.map((d) => `\n  [round ${d.round}] ${d.action}: ${d.reason}`).join('');
  const phases = outcome.phases.map((p) => `${p.phase} ${p.durationMs ?? '?'} ms`).join(' → ');
  const perceived =
    gap === undefined
      ? '-'
      : `${gap.gapMs.toFixed(1)} ms (last source → first target heartbeat ${gap.switchoverMs.toFixed(1)} ms)`;
  const moved = `${((outcome.transferredBytes ?? 0) / MiB).toFixed(1)} MiB in ${outcome.rounds ?? '-'} rounds`;
  console.log(
    `${label}: ${outcome.result} (${outcome.reason}) in ${outcome.durationMs} ms; QEMU total ` +
      `${outcome.qemuTotalTimeMs ?? '-'} ms, QEMU downtime ${outcome.downtimeMs ?? '-'} ms, guest-perceived gap ` +
      `${perceived}; ${moved}\n  ${phases}${decisions}`,
  );
}

beforeAll(async () => {
  // Short path: unix socket paths are limited to 107 bytes.
  work = await mkdtemp(path.join(tmpdir(), 'tern-eng-'));
  images = await testGuestImages();
  const base: Omit<SupervisorOptions, 'stateRoot'> = {
    accel: 'tcg',
    policy: { imageRoots: { sharedRoots: [images.root] }, maxCpus: 2, maxMemoryMiB: 2048 },
    network: new UserModeNetwork(7000),
    pollIntervalMs: 200,
  };
  nodeA = {
    name: 'a',
    root: path.join(work, 'a'),
    supervisor: new GuestSupervisor({ ...base, stateRoot: path.join(work, 'a') }),
  };
  nodeB = {
    name: 'b',
    root: path.join(work, 'b'),
    supervisor: new GuestSupervisor({ ...base, stateRoot: path.join(work, 'b') }),
  };
  // Boot in parallel; the hot guest starts idle and dirties only during its own tests.
  await Promise.all([
    boot(nodeA, spec('idle', '0001', 256, 16, 0)),
    boot(nodeA, spec('busy', '0002', 512, 256, 5000)),
    boot(nodeA, spec('hot', '0003', 256, 32, 0)),
  ]);
}, 180_000);

afterAll(async () => {
  for (const agent of agents) agent.close();
  for (const node of [nodeA, nodeB]) await node?.supervisor.close().catch(() => undefined);
  for (const root of [nodeA?.root, nodeB?.root]) {
    if (root === undefined) continue;
    for (const name of await readdir(root).catch(() => [])) {
      const pid = Number((await readFile(guestPaths(root, name).pid, 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test('an idle guest migrates; the hand-over resumes the target and releases the source', async () => {
  const migration = await startMigration('idle', nodeB, resolveMigrationPolicy());
  const gap = await completeMigration('idle', nodeB, migration);
  const outcome = await migration.source.done;
  report('idle 256 MiB', outcome, gap);
  expect(outcome.result).toBe('Completed');
  expect(phasesOf(outcome)).toEqual(['Initializing', 'Copying', 'Quiescing', 'Freezing', 'Completed']);
  expect(migration.seenPhases).toEqual(['Initializing', 'Copying', 'Quiescing', 'Freezing', 'Completed']);
  for (const phase of outcome.phases.slice(0, -1)) expect(phase.durationMs).toBeGreaterThanOrEqual(0);
  expect(outcome.downtimeMs).toBeGreaterThan(0);
  expect(outcome.decisions).toEqual([]);
  expect(migration.source.history.length).toBeGreaterThan(0);
});

test('when the ownership record does not move, the hand-over rolls back: the source runs again', async () => {
  // The idle guest now runs on B; its migration back to A completes, but the owner stays B.
  const migration = await startMigration('idle', nodeA, resolveMigrationPolicy());
  await migration.target.loaded;
  expect((await migration.source.done).result).toBe('Completed');
  // The record still names the source: abort the target, resume the source; the source owns and runs the guest.
  await rollBackToSource(migration.source, migration.target);
  expect(await assertAtMostOneQemuRunning(migration.source.qmp, migration.target.qmp)).toEqual({
    source: 'running',
    target: 'absent',
  });
  const outcome = await migration.source.done;
  report('idle, record not moved (rollback)', outcome);
  expect(outcome.result).toBe('Completed');
  await expectStillOnSource('idle', nodeA, migration);
});

test('multifd over TCP with TLS (PSK): the idle guest migrates over 2 extra zstd channels, zero pages found in them', async () => {
  // The idle guest runs on B after the rollback.
  const policy = resolveMigrationPolicy({ multifdChannels: 2, multifdCompression: 'zstd' });
  const migration = await startMigration('idle', nodeA, policy, { tcpTls: true });
  // What the source set before `migrate` (it quits once released).
  const sourceParameters =
    await migration.source.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
  expect(sourceParameters).toMatchObject({
    'multifd-channels': 2,
    'multifd-compression': 'zstd',
    'zero-page-detection': 'multifd',
  });
  const gap = await completeMigration('idle', nodeA, migration);
  const outcome = await migration.source.done;
  report('idle, multifd 2 zstd', outcome, gap);
  expect(outcome.result).toBe('Completed');
  const capabilities = await migration.target.qmp.queryMigrateCapabilities();
  expect(capabilities.find((c) => c.capability === 'multifd')?.state).toBe(true);
  expect(await migration.target.qmp.execute('query-migrate-parameters')).toMatchObject({
    'multifd-channels': 2,
    'multifd-compression': 'zstd',
  });
});

test('a migration socket nobody serves fails at once and the guest keeps running', async () => {
  const here = guests.get('idle')!;
  const source = new SourceMigration({
    supervisor: here.node.supervisor,
    guest: 'idle',
    channel: { transport: 'unix', path: path.join(work, 'nobody.sock') },
    policy: resolveMigrationPolicy(),
  });
  await source.start();
  const outcome = await source.done;
  expect(outcome).toMatchObject({ result: 'Failed', cause: 'Connection', sourceRunState: 'running' });
  expect(outcome.reason).toMatch(/nobody\.sock/);
  await expectVerifyOk(here.agent);
});

test('a busy guest (256 MiB working set, dirty rate well below the link) converges under the default policy', async () => {
  const before = await guests.get('busy')!.agent.stats();
  const migration = await startMigration('busy', nodeB, resolveMigrationPolicy());
  const gap = await completeMigration('busy', nodeB, migration);
  const outcome = await migration.source.done;
  report('busy 512 MiB / 256 MiB wss @ 5000 pages/s', outcome, gap);
  expect(outcome.result).toBe('Completed');
  expect(outcome.postCopy).toBe(false);
  const after = await guests.get('busy')!.agent.stats();
  expect(after.writes).toBeGreaterThan(before.writes);
});

describe('a guest dirtying faster than the link (32 MiB working set at 20000 pages/s, link 20 MiB/s)', () => {
  const slow = { bandwidthBytesPerSec: SLOW_LINK, downtimeSteps: 1, stallRounds: 1 };

  beforeAll(async () => {
    expect(await guests.get('hot')!.agent.setDirtyRate(HOT_DIRTY_PPS)).toBe(HOT_DIRTY_PPS);
  });

  test('cancel during Copying: the guest keeps running on the source, the target leaves nothing', async () => {
    const migration = await startMigration('hot', nodeB, resolveMigrationPolicy(slow));
    await new Promise<void>((resolve) =>
      migration.source.on('progress', (p) => p.transferredBytes > 4 * MiB && resolve()),
    );
    expect(migration.source.phase).toBe('Copying');
    const outcome = await migration.source.cancel('test: cancel during Copying');
    report('cancel during Copying', outcome);
    expect(outcome).toMatchObject({
      result: 'Aborted',
      cause: 'Cancelled',
      reason: 'test: cancel during Copying',
      sourceRunState: 'running',
    });
    expect(phasesOf(outcome)).toEqual(['Initializing', 'Copying', 'Aborted']);
    await expect(migration.target.loaded).rejects.toThrow(/^the incoming migration failed/);
    await expectStillOnSource('hot', nodeB, migration);
  });

  test('cancel during Quiescing: the paused source runs again, the target leaves nothing', async () => {
    let quiescing!: () => void;
    const reachedQuiescing = new Promise<void>((resolve) => (quiescing = resolve));
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    // Unlimited bandwidth so the migration reaches the switchover; the quiesce step holds it there.
    const migration = await startMigration('hot', nodeB, resolveMigrationPolicy(), {
      quiesce: async () => {
        quiescing();
        await held;
      },
    });
    await reachedQuiescing;
    expect(migration.source.phase).toBe('Quiescing');
    expect(await runStateOf(migration.source.qmp)).not.toBe('running');
    const outcome = await migration.source.cancel('test: cancel during Quiescing');
    letGo();
    report('cancel during Quiescing', outcome);
    expect(outcome).toMatchObject({ result: 'Aborted', sourceRunState: 'running' });
    expect(phasesOf(outcome)).toEqual(['Initializing', 'Copying', 'Quiescing', 'Aborted']);
    await expectStillOnSource('hot', nodeB, migration);
  });

  test('the target failing during Copying fails the migration; the guest keeps running on the source', async () => {
    const migration = await startMigration('hot', nodeB, resolveMigrationPolicy(slow));
    await new Promise<void>((resolve) =>
      migration.source.on('progress', (p) => p.transferredBytes > 4 * MiB && resolve()),
    );
    await migration.target.abort(); // the target QEMU goes away mid-stream, as on a target crash or a cut link
    const outcome = await migration.source.done;
    report('target gone during Copying', outcome);
    expect(outcome).toMatchObject({ result: 'Failed', cause: 'Connection' });
    expect(outcome.reason).toMatch(/^QEMU failed the migration: /);
    expect(outcome.sourceRunState).toBe('running');
    await expectStillOnSource('hot', nodeB, migration);
  });

  test('with no convergence measure allowed it fails at the completion timeout and stays on the source', async () => {
    const policy = resolveMigrationPolicy({
      ...slow,
      allowAutoConverge: false,
      allowPostCopy: false,
      // 300 ms at 20 MiB/s lets QEMU switch over below 6 MiB: far from the 32 MiB working set even on a busy host.
      maxDowntimeMs: 300,
      completionTimeoutPerGiBSeconds: 40, // 10 s for 256 MiB
    });
    const migration = await startMigration('hot', nodeB, policy);
    const outcome = await migration.source.done;
    report('nothing allowed, 10 s budget', outcome);
    expect(outcome.result).toBe('Failed');
    expect(outcome.cause).toBe('Timeout');
    expect(outcome.reason).toMatch(/^not completed within 10\.0 s/);
    expect(outcome.decisions.map((d) => d.action)).toEqual(['raise-downtime', 'abort']);
    expect(outcome.decisions[0]).toMatchObject({ downtimeLimitMs: 300 });
    expect(outcome.sourceRunState).toBe('running');
    await expectStillOnSource('hot', nodeB, migration);
  });

  test('with auto-converge allowed it throttles the guest and completes', async () => {
    const policy = resolveMigrationPolicy({
      ...slow,
      allowAutoConverge: true,
      cpuThrottleSteps: [60, 90, 99],
    });
    const migration = await startMigration('hot', nodeB, policy);
    const gap = await completeMigration('hot', nodeB, migration);
    const outcome = await migration.source.done;
    report('auto-converge', outcome, gap);
    expect(outcome.result).toBe('Completed');
    expect(outcome.decisions.map((d) => d.action)).toContain('raise-throttle');
    expect(migration.source.history.some((p) => p.cpuThrottlePercent >= 60)).toBe(true);
  });

  test('with post-copy allowed it switches to post-copy and completes', async () => {
    const policy = resolveMigrationPolicy({ ...slow, allowAutoConverge: false, allowPostCopy: true });
    const migration = await startMigration('hot', nodeA, policy);
    const gap = await completeMigration('hot', nodeA, migration);
    const outcome = await migration.source.done;
    report('post-copy', outcome, gap);
    expect(outcome.result).toBe('Completed');
    expect(outcome.postCopy).toBe(true);
    expect(outcome.decisions.map((d) => d.action)).toEqual(['raise-downtime', 'start-postcopy']);
    expect(phasesOf(outcome)).toEqual([
      'Initializing',
      'Copying',
      'Quiescing',
      'Freezing',
      'PostCopy',
      'Completed',
    ]);
  });
});
