// `npm run bench:switchover` (test/bench/switchover.bench.ts) and its smoke test: the demo's workload (durable
// transactions from clients on the host, each acknowledged once it is on the guest's disk) on a busy test guest,
// migrated through Tern (the real operator, kube-apiserver and two daemon processes; back and forth) and directly
// QEMU→QEMU (two in-process supervisors, over TCP with QEMU's TLS as the daemons migrate), interleaved. Both guests
// have the same config and workload and their taps on one bridge of the bench's own; only the guest being migrated
// dirties memory and gets clients. Per migration: QEMU's downtime, the pause→resume gap (the switchover timeline
// for Tern, QMP's STOP and RESUME for direct), the clients' gap, the split of the gap after the resume (first
// guest frame, first TCP segment, first data segment from a capture on the bridge; the first acknowledgement at
// the client), the clients' TCP retransmissions, and the log on the guest's disk against every acknowledgement.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  isTerminalMigrationPhase,
  type HypervisorNode,
  type Migration,
  type VirtualMachine,
} from '../../../crds/index.js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { startDurableClient, type DurableClient } from '../../../guest/host/durable-client.js';
import { checkDurability, type ClientRecord } from '../../../guest/host/txlog.js';
import type { MigrationChannel } from '../../../hypervisor-node/src/migration/engine/channel.js';
import {
  channelSettings,
  resolveMigrationPolicy,
} from '../../../hypervisor-node/src/migration/engine/policy.js';
import { writePskFile } from '../../../hypervisor-node/src/migration/engine/psk.js';
import { SourceMigration } from '../../../hypervisor-node/src/migration/engine/source.js';
import { incomingSpec, TargetMigration } from '../../../hypervisor-node/src/migration/engine/target.js';
import { wallClockUs } from '../../../proto/index.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { BridgeNetwork } from '../../../hypervisor-node/src/network/guest-network.js';
import { GuestSupervisor } from '../../../hypervisor-node/src/runtime/supervisor.js';
import { handOverToTarget } from '../../fixtures/engine-handover.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { guestDirOfVm } from '../../harness/guest-lookup.js';
import { condition, eventually, kubectlOn, testDaemonArgs } from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import {
  createBenchNetwork,
  retransmissionsTo,
  startCapture,
  tcpCounters,
  type BenchNetwork,
  frozenSegments,
  type Capture,
  type FrozenSegments,
} from './network.js';
import { clientGap, describe, firstAfter, interleave, percentile } from './stats.js';

export interface SwitchoverBenchOptions {
  ternRuns: number;
  directRuns: number;
  /** Clients per migration, each with one transaction in flight. */
  clients: number;
  memoryMib: number;
  wssMib: number;
  dirtyPps: number;
  /** Extra kernel command line words for both guests (experiments: clocksource, timers). */
  guestCmdline: string[];
  /** No migration starts after this many minutes from the first (the summary covers those that ran). */
  maxMinutes: number;
  /** Where the lines go; the last one is the summary line. */
  log: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<SwitchoverBenchOptions, 'log'> = {
  ternRuns: 30,
  directRuns: 10,
  clients: 3,
  // The demo's VM: 512 MiB, 256 MiB working set, 5000 pages dirtied per second.
  memoryMib: 512,
  wssMib: 256,
  dirtyPps: 5000,
  guestCmdline: [],
  maxMinutes: Infinity,
};

/** One migration's figures; times in ms. */
export interface SwitchoverSample {
  mode: 'tern' | 'direct';
  qemuDowntimeMs: number;
  pauseResumeMs: number;
  /** The longest interval without a completed transaction, of any client, across the switchover. */
  clientGapMs: number;
  /** After the target's resume: its first frame of the guest, first TCP segment, first data segment (capture). */
  firstFrameMs?: number;
  firstSegmentMs?: number;
  firstDataMs?: number;
  /** After the target's resume: the guest agent's first heartbeat (its user space runs), on the agent channel. */
  firstBeatMs?: number;
  /** After the target's resume: the first acknowledgement a client received. */
  firstReplyMs: number;
  ackedLost: number;
  /**
   * TCP retransmissions of the clients' connections (ss), and host-wide during the run (any process): RTOs fired
   * (TCPTimeouts) and tail loss probes sent (TCPLossProbes).
   */
  retrans: number;
  /** The clients' segments sent while the guest was frozen, from the capture. */
  frozen?: FrozenSegments;
  hostRtos: number;
  hostLossProbes: number;
}

const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const VM = 'sbench';
const GUEST = 'bench';
const PORT = 7000;
const TERN_MAC = '52:54:00:5b:00:01';
const DIRECT_MAC = '52:54:00:5b:00:02';
/** The log disk: sparse; 4 KiB per transaction. */
const LOG_DISK_MIB = 1024;
const MIGRATION_TIMEOUT_MS = 240_000;
/** Transactions before the migration (warm clients). */
const SETTLE_MS = 1_500;
/** Transactions after every client was served again, before the clients stop. */
const AFTER_MS = 500;

/** Runs the bench; returns the samples. Everything it started is stopped and removed, also on failure. */
export async function runSwitchoverBench(options: SwitchoverBenchOptions): Promise<SwitchoverSample[]> {
  const bench = new Bench(options);
  try {
    await bench.setUp();
    return await bench.run();
  } finally {
    await bench.tearDown();
  }
}

class Bench {
  private work = '';
  private network: BenchNetwork | undefined;
  private cp: ControlPlane | undefined;
  private operator: OperatorProcess | undefined;
  private readonly daemons = new Map<NodeName, DaemonProcess>();
  private readonly supervisors: GuestSupervisor[] = [];
  private capture: Capture | undefined;
  private readonly agents = new Set<AgentClient>();
  private readonly clients = new Set<DurableClient>();
  private images!: TestGuestImages;
  private certs!: DevCerts;
  private readonly kube = kubectlOn(() => this.cp!);
  private ternAgent!: AgentClient;
  private directAgent!: AgentClient;
  private directAt = 0;
  private directRoots: string[] = [];

  constructor(private readonly options: SwitchoverBenchOptions) {}

  private say(line: string): void {
    this.options.log(line);
  }

  private get ternIp(): string {
    return `${this.network!.prefix}.100`;
  }

  private get directIp(): string {
    return `${this.network!.prefix}.101`;
  }

  private stateDir(node: NodeName): string {
    return join(this.work, node.slice(-1));
  }

  async setUp(): Promise<void> {
    const { options } = this;
    this.work = await mkdtemp(join(tmpdir(), 'tsb-'));
    this.network = await createBenchNetwork();
    this.say(`network: bridge ${this.network.bridge}, host ${this.network.hostIp}`);
    const namespaces = join(this.work, 'ns');
    await mkdir(join(namespaces, 'default'), { recursive: true });
    const logDisk = async (name: string) => {
      const path = join(namespaces, 'default', name);
      await writeFile(path, '');
      await truncate(path, LOG_DISK_MIB * 2 ** 20);
      return path;
    };
    const [ternDisk, directDisk] = await Promise.all([
      logDisk('tern-txlog.raw'),
      logDisk('direct-txlog.raw'),
    ]);
    let cp: ControlPlane;
    [cp, this.images] = await Promise.all([
      startControlPlane({ name: 'switchover-bench' }),
      testGuestImages(),
    ]);
    this.cp = cp;
    const { kubectl, apply, getJson } = this.kube;
    await kubectl('apply', '-f', CRDS);
    await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
    await kubectl('create', 'namespace', 'tern-system');
    this.certs = generateDevCerts(join(this.work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
    const started = await Promise.all(
      NODES.map((node) =>
        startDaemonProcess(
          testDaemonArgs({
            node,
            certs: this.certs,
            stateDir: this.stateDir(node),
            imagesRoot: this.images.root,
            kubeconfig: cp.kubeconfigPath,
            leaseDurationSeconds: 15,
          }).concat(['--network', 'bridge', '--bridge', this.network!.bridge, '--image-root', namespaces]),
        ),
      ),
    );
    NODES.forEach((node, i) => this.daemons.set(node, started[i]!));
    this.operator = await startOperatorProcess([
      ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
      ...['--tls-cert', this.certs.operator.cert, '--tls-key', this.certs.operator.key],
      ...['--tls-ca', this.certs.ca.cert, '--guest-poll-interval-ms', '1000'],
      ...['--guest-stop-timeout-ms', '3000', '--migration-progress-interval-ms', '500'],
    ]);
    for (const node of NODES) {
      await eventually(`${node} Ready`, async () => {
        const hvn = await getJson<HypervisorNode>('hypervisornode', node);
        return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
      });
    }
    // Both guests: the same kernel command line but for the address; idle until their turn.
    const cmdline = (ip: string) => [
      ...this.images.cmdline.filter((word) => !word.startsWith('tern.wss_mib=')),
      `tern.wss_mib=${options.wssMib}`,
      'tern.dirty_pps=0',
      `tern.ip=${ip}/24`,
      `tern.port=${PORT}`,
      'tern.txlog=/dev/vda',
      ...options.guestCmdline,
    ];
    await apply({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: VM, namespace: 'default' },
      spec: {
        running: true,
        cpu: { cores: 1 },
        memory: `${options.memoryMib}Mi`,
        evictionStrategy: 'LiveMigrate',
        boot: {
          kernel: {
            path: this.images.kernel,
            initrdPath: this.images.initrd,
            cmdline: cmdline(this.ternIp).join(' '),
          },
        },
        disks: [{ name: 'txlog', path: ternDisk, format: 'raw', storage: 'shared' }],
        network: { macAddress: TERN_MAC },
      },
    });

    // The direct guests' two supervisors, in this process, with taps on the same bridge.
    const policy = {
      imageRoots: { sharedRoots: [this.images.root], namespaceRoot: namespaces },
      maxCpus: 2,
      maxMemoryMiB: 4096,
    };
    this.directRoots = ['da', 'db'].map((n) => join(this.work, n));
    this.directRoots.forEach((stateRoot, i) =>
      this.supervisors.push(
        new GuestSupervisor({
          accel: 'tcg',
          policy,
          stateRoot,
          // Taps are named after the node and the guest: a name of this process's own, so that a second bench on the
          // host (or its smoke test) never takes over or deletes this one's taps.
          network: new BridgeNetwork(`direct-${process.pid}-${'ab'[i]}`, this.network!.bridge),
        }),
      ),
    );
    await this.supervisors[0]!.create({
      name: GUEST,
      uuid: '5b0c0e2e-3d4a-4b5c-8d6e-7f8091a2b3c4',
      namespace: 'default',
      cpus: 1,
      memoryMiB: options.memoryMib,
      boot: { kernel: this.images.kernel, initrd: this.images.initrd, cmdline: cmdline(this.directIp) },
      disks: [
        {
          name: 'txlog',
          path: directDisk,
          readOnly: false,
          format: 'raw',
          bus: 'virtio',
          cache: 'writeback',
          io: 'threads',
          storage: 'shared',
          boot: false,
        },
      ],
      nics: [{ mac: DIRECT_MAC }],
    });
    const vm = await eventually(
      'VM Running',
      async () => {
        const current = await getJson<VirtualMachine>('virtualmachine', VM);
        return current.status?.phase === 'Running' ? current : undefined;
      },
      180_000,
    );
    this.ternAgent = await this.connect(
      join(await guestDirOfVm(this.stateDir(vm.status!.node as NodeName), VM), 'agent.sock'),
    );
    this.directAgent = await this.connect(guestPaths(this.directRoots[0]!, GUEST).agent);
    this.say(`booting two ${options.memoryMib} MiB guests (${options.wssMib} MiB working set)...`);
    await Promise.all([this.ternAgent.waitReady(300_000), this.directAgent.waitReady(300_000)]);
    this.capture = await startCapture(this.network.bridge, [TERN_MAC, DIRECT_MAC], PORT);
    if (this.capture === undefined)
      this.say('tcpdump is not installed: no capture (first frame from the timeline only, no segment split)');
  }

  private async connect(path: string): Promise<AgentClient> {
    const agent = await AgentClient.connect(path, { timeoutMs: 30_000 });
    this.agents.add(agent);
    return agent;
  }

  private drop(agent: AgentClient): void {
    agent.close();
    this.agents.delete(agent);
  }

  async run(): Promise<SwitchoverSample[]> {
    const { options } = this;
    const samples: SwitchoverSample[] = [];
    const order = interleave(options.ternRuns, options.directRuns);
    const deadline = performance.now() + options.maxMinutes * 60_000;
    for (const [i, mode] of order.entries()) {
      if (performance.now() > deadline) {
        this.say(
          `--max-minutes ${options.maxMinutes} reached: stopped after ${i} of ${order.length} migrations`,
        );
        break;
      }
      const sample = await this.migrateOnce(i, mode).catch((error: Error) => {
        this.say(`run ${i + 1}/${order.length} ${mode} failed: ${error.message}; the runs before it:`);
        report(samples, options.log);
        throw error;
      });
      samples.push(sample);
      const opt = (ms: number | undefined) => (ms === undefined ? 'n/a' : ms.toFixed(1));
      this.say(
        `run ${String(i + 1).padStart(2)}/${order.length} ${mode.padEnd(6)} QEMU downtime ${sample.qemuDowntimeMs} ms, ` +
          `pause→resume ${sample.pauseResumeMs.toFixed(1)} ms, client gap ${sample.clientGapMs.toFixed(1)} ms; ` +
          `after resume: frame ${opt(sample.firstFrameMs)}, heartbeat ${opt(sample.firstBeatMs)}, segment ` +
          `${opt(sample.firstSegmentMs)}, data ${opt(sample.firstDataMs)}, reply ${sample.firstReplyMs.toFixed(1)} ms; acked lost ${sample.ackedLost}, ` +
          `retransmissions ${sample.retrans}${frozenText(sample.frozen)}, host RTOs ${sample.hostRtos}, loss probes ${sample.hostLossProbes}`,
      );
    }
    report(samples, options.log);
    return samples;
  }

  /** One migration of the guest `mode` names, with its clients running from before the pause to after the resume. */
  private async migrateOnce(run: number, mode: 'tern' | 'direct'): Promise<SwitchoverSample> {
    const [busy, idle] =
      mode === 'tern' ? [this.ternAgent, this.directAgent] : [this.directAgent, this.ternAgent];
    const guestIp = mode === 'tern' ? this.ternIp : this.directIp;
    await idle.setDirtyRate(0);
    await busy.setDirtyRate(this.options.dirtyPps);
    const logStart = (await busy.txlog()).last;
    const clients = Array.from({ length: this.options.clients }, (_, c) => {
      const client = startDurableClient({
        name: `r${run}c${c}`,
        endpoint: () => ({ host: guestIp, port: PORT }),
        durationMs: MIGRATION_TIMEOUT_MS + 60_000,
        // Never give up on a request during a slow switchover: a request abandoned on its connection can still
        // land in the log after the ones the client sent on its next connection (out of order for the checker).
        requestTimeoutMs: MIGRATION_TIMEOUT_MS,
      });
      this.clients.add(client);
      return client;
    });
    const countersBefore = await tcpCounters();
    await eventually('every client acknowledged', async () =>
      clients.every((c) => c.log.acks.length > 0) ? true : undefined,
    );
    await sleep(SETTLE_MS);
    const moved = mode === 'tern' ? await this.ternMigration(run) : await this.directMigration(run);
    // Until every client was served by the target (on a loaded TCG host that can take seconds), and a little more.
    await eventually(
      'every client served after the resume',
      async () => {
        const toWall = wallClockUs() / 1000 - performance.now();
        return clients.every((c) => (c.log.acks.at(-1)?.atMs ?? 0) + toWall > moved.resumedMs)
          ? true
          : undefined;
      },
      MIGRATION_TIMEOUT_MS,
    );
    await sleep(AFTER_MS);
    const { retrans } = await retransmissionsTo(guestIp, PORT);
    const counters = await tcpCounters();
    for (const client of clients) {
      await client.stop();
      this.clients.delete(client);
    }
    // The guest after the migration: its memory, and its log on the disk against every acknowledgement of this run.
    const firstBeat = moved.agent.heartbeats.find((beat) => beat.wallMs + toWallMsNow() > moved.resumedMs);
    const agent = moved.reconnect ? await moved.reconnect() : moved.agent;
    const verify = await agent.verify();
    if (!verify.ok) throw new Error(`${mode} run ${run + 1}: VERIFY failed: ${verify.detail}`);
    const summary = await agent.txlog();
    const records = [];
    while (logStart + records.length < summary.last) {
      const page = await agent.txlogList(logStart + records.length + 1);
      if (page.length === 0) throw new Error(`TXLOG listing ended at seq ${logStart + records.length}`);
      records.push(...page);
    }
    const logs: ClientRecord[] = clients.map((c) => c.log);
    const durability = checkDurability(records, logs);
    if (!durability.ok) this.say(`${mode} run ${run + 1}: ${durability.text}`);

    const toWallMs = toWallMsNow();
    const completions = clients.map((c) =>
      c.log.acks.map((ack) => performance.timeOrigin + ack.atMs + toWallMs),
    );
    completions.forEach((list, c) => {
      if (!list.some((t) => t > moved.resumedMs))
        this.say(
          `${mode} run ${run + 1}: client ${c} completed nothing after the resume (${list.length} in all, the last ` +
            `${(list.at(-1)! - moved.resumedMs).toFixed(1)} ms from the resume); errors: ${JSON.stringify(clients[c]!.log.errors)}`,
        );
    });
    const gaps = completions.map((list) => clientGap(list, moved.pausedMs, moved.resumedMs) ?? NaN);
    const firstReply = firstAfter(completions, moved.resumedMs);
    const frames = this.capture?.framesOf(mode === 'tern' ? TERN_MAC : DIRECT_MAC) ?? [];
    // Nothing leaves the guest while it is paused (the source's frames end at the pause, the target's begin at the
    // resume): its first frame after the middle of the switchover is the target's.
    const middle = (moved.pausedMs + moved.resumedMs) / 2;
    const first = (kinds: string[]) =>
      frames.find((f) => f.from === 'guest' && f.atMs > middle && kinds.includes(f.kind));
    const frozen = this.capture ? frozenSegments(frames, moved.pausedMs, moved.resumedMs) : undefined;
    const since = (frame: { atMs: number } | undefined) =>
      frame === undefined ? undefined : frame.atMs - moved.resumedMs;
    this.capture?.forget(Date.now());
    if (moved.untimed)
      return {
        mode,
        qemuDowntimeMs: moved.qemuDowntimeMs,
        pauseResumeMs: NaN,
        clientGapMs: NaN,
        firstReplyMs: NaN,
        ackedLost: durability.lost.length + durability.moved.length,
        retrans,
        hostRtos: counters.timeouts - countersBefore.timeouts,
        hostLossProbes: counters.lossProbes - countersBefore.lossProbes,
      };
    return {
      mode,
      qemuDowntimeMs: moved.qemuDowntimeMs,
      pauseResumeMs: moved.resumedMs - moved.pausedMs,
      clientGapMs: Math.max(...gaps),
      firstFrameMs: since(first(['other', 'tcp-ack', 'tcp-data'])) ?? moved.firstFrameMs,
      firstSegmentMs: since(first(['tcp-ack', 'tcp-data'])),
      firstDataMs: since(first(['tcp-data'])),
      ...(firstBeat ? { firstBeatMs: firstBeat.wallMs + toWallMs - moved.resumedMs } : {}),
      firstReplyMs: firstReply === undefined ? NaN : firstReply - moved.resumedMs,
      ackedLost: durability.lost.length + durability.moved.length,
      retrans,
      ...(frozen ? { frozen } : {}),
      hostRtos: counters.timeouts - countersBefore.timeouts,
      hostLossProbes: counters.lossProbes - countersBefore.lossProbes,
    };
  }

  /** A Migration through the operator; the times from its switchover timeline (the operator's clock = this host's). */
  private async ternMigration(run: number): Promise<Moved> {
    const { apply, getJson } = this.kube;
    const from = (await getJson<VirtualMachine>('virtualmachine', VM)).status!.node as NodeName;
    const to: NodeName = from === 'node-a' ? 'node-b' : 'node-a';
    const name = `sb-${run}`;
    // The target's agent, connected while the target waits for the guest: it hears the guest's first heartbeat.
    const early = eventually(
      'the target guest',
      () => guestDirOfVm(this.stateDir(to), VM).catch(() => undefined),
      MIGRATION_TIMEOUT_MS,
      20,
    ).then((dir) => this.connect(join(dir, 'agent.sock')));
    early.catch(() => undefined);
    await apply({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name, namespace: 'default' },
      spec: { vmName: VM, targetNode: to },
    });
    const finished = await eventually(
      `${name} finished`,
      async () => {
        const migration = await getJson<Migration>('migration', name);
        return isTerminalMigrationPhase(migration.status?.phase) ? migration : undefined;
      },
      MIGRATION_TIMEOUT_MS,
      500,
    );
    if (finished.status?.phase !== 'Succeeded')
      throw new Error(
        `${name}: ${finished.status?.phase} ${finished.status?.failureReason}: ${finished.status?.message}`,
      );
    // On a loaded host the timeline's steps may land in a status write after the one that says Succeeded.
    const hasSteps = (m: Migration) =>
      ['SourcePaused', 'TargetResumed'].every((n) => m.status?.switchover?.steps?.some((s) => s.step === n));
    const done = hasSteps(finished)
      ? finished
      : await eventually(
          `${name}'s switchover timeline`,
          async () => {
            const migration = await getJson<Migration>('migration', name);
            return hasSteps(migration) ? migration : undefined;
          },
          30_000,
          500,
        ).catch(() => finished);
    const steps = done.status!.switchover?.steps ?? [];
    const step = (n: string) => steps.find((s) => s.step === n);
    const paused = step('SourcePaused');
    const resumed = step('TargetResumed');
    if (paused === undefined || resumed === undefined) {
      // The operator could not read a node's clock (a heavily loaded host): no times for this run, its counts stand.
      this.say(`${name}: no SourcePaused/TargetResumed in the switchover timeline: this run has no times`);
      this.drop(this.ternAgent);
      this.ternAgent = await early;
      const nowMs = Date.now();
      return {
        agent: this.ternAgent,
        reconnect: async () => {
          this.drop(this.ternAgent);
          this.ternAgent = await this.connect(join(await guestDirOfVm(this.stateDir(to), VM), 'agent.sock'));
          return this.ternAgent;
        },
        pausedMs: nowMs,
        resumedMs: nowMs,
        untimed: true,
        qemuDowntimeMs: done.status!.downtime?.qemuMs ?? NaN,
      };
    }
    // The timeline puts each node's steps on the operator's clock with an offset it measured (off by up to its
    // error bound, a few ms on a busy host). Here every process reads the same clock: the bench undoes the offsets
    // to compare the steps with the clients' and the capture's times. `at` is rounded to the ms, offsetMs is exact.
    const clocks = done.status!.switchover?.clocks ?? [];
    const raw = (s: { offsetMs: number; node?: string }) =>
      s.offsetMs + (clocks.find((c) => c.node === s.node)?.offsetMs ?? 0);
    const pausedMs = Date.parse(paused.at) + raw(paused) - paused.offsetMs;
    const firstFrame = step('FirstFrame');
    // The early connection hears the first heartbeat; VERIFY and TXLOG go over a connection made once the clients
    // are done, to the guest the daemon runs after the hand-over (QEMU serves one connection to the agent at a time).
    this.drop(this.ternAgent);
    this.ternAgent = await early;
    return {
      agent: this.ternAgent,
      reconnect: async () => {
        this.drop(this.ternAgent);
        this.ternAgent = await this.connect(join(await guestDirOfVm(this.stateDir(to), VM), 'agent.sock'));
        return this.ternAgent;
      },
      pausedMs,
      resumedMs: pausedMs + raw(resumed) - raw(paused),
      qemuDowntimeMs: done.status!.downtime?.qemuMs ?? NaN,
      ...(firstFrame ? { firstFrameMs: raw(firstFrame) - raw(resumed) } : {}),
    };
  }

  /** A direct QEMU→QEMU migration over TCP with QEMU's TLS (a PSK), as the daemons' transport; QMP's timestamps. */
  private async directMigration(run: number): Promise<Moved> {
    const from = this.supervisors[this.directAt]!;
    const to = this.supervisors[1 - this.directAt]!;
    const toRoot = this.directRoots[1 - this.directAt]!;
    const status = from.get(GUEST)!;
    const policy = resolveMigrationPolicy();
    const key = randomBytes(32);
    const psk = (side: string) =>
      writePskFile(join(this.work, `direct-${run}-${side}`), `direct-${run}`, key);
    const channel: MigrationChannel = { transport: 'tcp', host: '127.0.0.1', port: 0, tls: await psk('in') };
    const target = await TargetMigration.prepare({
      supervisor: to,
      spec: incomingSpec(status.spec, status.accelerator),
      channel,
      settings: channelSettings(policy),
    });
    const targetAgent = await this.connect(guestPaths(toRoot, GUEST).agent);
    const source = new SourceMigration({
      supervisor: from,
      guest: GUEST,
      channel: { ...channel, port: target.port, tls: await psk('out') },
      policy,
    });
    await source.start();
    const cancel = new AbortController();
    const timeout = sleep(MIGRATION_TIMEOUT_MS, undefined, { signal: cancel.signal }).then(() => {
      throw new Error(`direct run ${run + 1}: not done within ${MIGRATION_TIMEOUT_MS} ms`);
    });
    try {
      await Promise.race([handOverToTarget(source, target), timeout]);
    } finally {
      cancel.abort();
    }
    const outcome = await source.done;
    const firstFrame = await target.firstFrame;
    const pausedUs = outcome.switchover?.pausedAtUs;
    const resumedUs = target.switchover.resumedAtUs;
    if (pausedUs === undefined || resumedUs === undefined)
      throw new Error(`direct run ${run + 1}: no STOP or RESUME timestamp`);
    this.directAt = 1 - this.directAt;
    this.drop(this.directAgent);
    this.directAgent = targetAgent;
    return {
      agent: this.directAgent,
      pausedMs: pausedUs / 1000,
      resumedMs: resumedUs / 1000,
      qemuDowntimeMs: outcome.downtimeMs ?? NaN,
      ...(firstFrame && 'atUs' in firstFrame ? { firstFrameMs: (firstFrame.atUs - resumedUs) / 1000 } : {}),
    };
  }

  async tearDown(): Promise<void> {
    const quietly = (p: Promise<unknown> | undefined) => p?.catch(() => undefined);
    for (const client of this.clients) await quietly(client.stop());
    for (const agent of this.agents) agent.close();
    await quietly(this.capture?.stop());
    await quietly(this.operator?.stop());
    await Promise.all([...this.daemons.values()].map((daemon) => quietly(daemon.stop())));
    for (const supervisor of this.supervisors) {
      for (const guest of supervisor.list()) await quietly(supervisor.delete(guest.name, { timeoutMs: 0 }));
      await quietly(supervisor.close());
    }
    if (this.work) {
      for (const dir of ['a', 'b', 'da', 'db']) await quietly(killGuestsIn(join(this.work, dir)));
    }
    await quietly(this.network?.remove());
    await quietly(this.cp?.stop());
    if (this.work) await rm(this.work, { recursive: true, force: true });
  }
}

/**
 * performance.timeOrigin + performance.now() + this = the wall clock: the clients and the agent stamp with
 * performance.now(), which drifts from the wall clock the switchover is stamped with.
 */
function toWallMsNow(): number {
  return wallClockUs() / 1000 - (performance.timeOrigin + performance.now());
}

/** Where a migration left the guest, and its switchover on this host's wall clock (ms). */
interface Moved {
  /** Connected to the target before the resume: its heartbeats include the guest's first after the resume. */
  agent: AgentClient;
  /** A new connection to the guest, replacing `agent`. */
  reconnect?: () => Promise<AgentClient>;
  pausedMs: number;
  resumedMs: number;
  /** No switchover timeline: pausedMs and resumedMs are only when the bench saw the migration end. */
  untimed?: boolean;
  qemuDowntimeMs: number;
  firstFrameMs?: number;
}

/** The summary: percentiles per mode, Tern against direct, the split after the resume, the summary line last. */
export function report(samples: readonly SwitchoverSample[], log: (line: string) => void): void {
  const of = (mode: 'tern' | 'direct', key: keyof SwitchoverSample) =>
    samples
      .filter((s) => s.mode === mode)
      .map((s) => s[key] as number | undefined)
      .filter((v): v is number => v !== undefined && !Number.isNaN(v));
  const p50 = (mode: 'tern' | 'direct', key: keyof SwitchoverSample) => percentile(of(mode, key), 0.5);
  const metrics: [string, keyof SwitchoverSample][] = [
    ['QEMU downtime', 'qemuDowntimeMs'],
    ['pause→resume', 'pauseResumeMs'],
    ['client gap', 'clientGapMs'],
  ];
  const counts = (mode: 'tern' | 'direct') => samples.filter((s) => s.mode === mode).length;
  log(`\nms over ${counts('tern')} Tern and ${counts('direct')} direct migrations:`);
  for (const [label, key] of metrics) {
    for (const mode of ['tern', 'direct'] as const)
      log(`${`${label} (${mode})`.padEnd(24)} ${describe(of(mode, key))}`);
  }
  log('Tern against direct, p50:');
  for (const [label, key] of metrics) {
    const [t, d] = [p50('tern', key), p50('direct', key)];
    log(`  ${label.padEnd(14)} ratio ${(t / d).toFixed(2)}, delta ${(t - d).toFixed(1)} ms`);
  }
  log(
    'after the target resumed (p50, ms): first frame, first agent heartbeat, first TCP segment, first data ' +
      'segment, first reply at a client',
  );
  for (const mode of ['tern', 'direct'] as const) {
    const cell = (key: keyof SwitchoverSample) => {
      const values = of(mode, key);
      return values.length === 0 ? 'n/a' : percentile(values, 0.5).toFixed(1);
    };
    log(
      `  ${mode.padEnd(6)} ${cell('firstFrameMs')}, ${cell('firstBeatMs')}, ${cell('firstSegmentMs')}, ` +
        `${cell('firstDataMs')}, ` +
        `${cell('firstReplyMs')}`,
    );
  }
  const sum = (key: keyof SwitchoverSample) => samples.reduce((total, s) => total + (s[key] as number), 0);
  log(
    `clients' TCP retransmissions over all runs: ${sum('retrans')} (runs with any: ` +
      `${samples.filter((s) => s.retrans > 0).length} of ${samples.length}); host-wide during the runs (any ` +
      `process): ${sum('hostRtos')} RTOs (TCPTimeouts), ${sum('hostLossProbes')} tail loss probes`,
  );
  const frozen = samples.flatMap((s) => (s.frozen ? [s.frozen] : []));
  if (frozen.length > 0) {
    const total = (key: keyof FrozenSegments) => frozen.reduce((n, f) => n + f[key], 0);
    log(
      `clients' segments sent while the guest was frozen (capture): ${total('sent')}; the guest acknowledged the ` +
        `first copy of ${total('delivered')}, only a later copy of ${total('lost')} (the first lost), none of ` +
        `${total('unacknowledged')}; sent again after a retransmission timeout: ${total('resentAfterTimeout')}`,
    );
  }
  for (const mode of ['tern', 'direct'] as const) {
    const runs = samples.filter((s) => s.mode === mode);
    const lost = runs.reduce((n, s) => n + (s.frozen ? s.frozen.lost + s.frozen.unacknowledged : 0), 0);
    log(
      `  ${mode.padEnd(6)} runs with a retransmission timeout (TCPTimeouts) ${runs.filter((s) => s.hostRtos > 0).length} ` +
        `of ${runs.length}, timeouts ${runs.reduce((n, s) => n + s.hostRtos, 0)}, frozen segments lost ${lost}`,
    );
  }
  const fmt = (value: number) => (Number.isNaN(value) ? 'nan' : value.toFixed(1));
  log(
    `client_gap_p50_ms=${fmt(p50('tern', 'clientGapMs'))} client_gap_p99_ms=${fmt(percentile(of('tern', 'clientGapMs'), 0.99))} ` +
      `direct_client_gap_p50_ms=${fmt(p50('direct', 'clientGapMs'))} pause_resume_p50_ms=${fmt(p50('tern', 'pauseResumeMs'))} ` +
      `qemu_downtime_p50_ms=${fmt(p50('tern', 'qemuDowntimeMs'))} acked_lost=${sum('ackedLost')}`,
  );
}

function frozenText(frozen: FrozenSegments | undefined): string {
  if (frozen === undefined) return '';
  return (
    ` (segments sent while frozen ${frozen.sent}: delivered ${frozen.delivered}, lost ${frozen.lost}, ` +
    `unacknowledged ${frozen.unacknowledged}, resent by timeout ${frozen.resentAfterTimeout})`
  );
}
