// The target side of a live migration: starts the incoming QEMU through the supervisor (same machine, CPU
// model, memory and uuid as the source, -S -incoming defer), sets what must match the source, listens with
// `migrate-incoming` on its channel, and reports when the guest is loaded. It never resumes the guest by itself:
// resume() is the caller's, after the ownership hand-over. abort() leaves nothing behind.
import { EventEmitter } from 'node:events';
import { DEFAULT_MACHINE } from '../../qemu/argv.js';
import type { QmpMigrationStatus, QmpClient, QmpEvent } from '../../qemu/qmp-client.js';
import { assertMigrationSupported } from '../../qemu/version.js';
import { GuestNotFoundError, type GuestSupervisor } from '../../runtime/supervisor.js';
import type { Accelerator, GuestDefinition } from '../../model/guest.js';
import { channelCapabilities, channelParameters, type ChannelSettings } from './policy.js';
import {
  applyChannelTls,
  channelUri,
  listeningPort,
  TLS_CREDS_ID,
  type MigrationChannel,
} from './channel.js';
import { exportTargetDisks, localDiskIndices, stopTargetExports } from './local-disks.js';
import { qmpTimestampUs, wallClockUs } from '../../../../proto/index.js';
import { watchFirstFrame, type FirstFrame } from '../../network/first-frame.js';
import { guestPorts } from '../../network/fdb.js';
import { FrameSteerer } from '../../network/frame-steering.js';
import { announceSelf } from './announce.js';

export interface TargetMigrationOptions {
  supervisor: GuestSupervisor;
  /** The source's spec with machine type and CPU model pinned (incomingSpec). */
  spec: GuestDefinition;
  /** Where the target QEMU listens (TCP port 0: a free port, see `port`). */
  channel: MigrationChannel;
  /** From the source's policy (channelSettings): must match on both ends. */
  settings: ChannelSettings;
  /**
   * Interval of the run-state poll that detects a post-copy guest ready to resume (default 5 ms: QEMU sends no event
   * for it, and the guest is paused on both nodes until it is found).
   */
  readyPollMs?: number;
}

export interface TargetLoaded {
  /** Date.now() when the target was found loaded and paused. */
  atMs: number;
  /** True when the guest is loaded for post-copy: it may resume while the remaining pages still stream. */
  postCopy: boolean;
}

/** The switchover as the target sees it, in µs since the epoch on this node's wall clock (QMP's timestamps). */
export interface TargetSwitchoverSteps {
  /**
   * QEMU's incoming migration completed (MIGRATION `completed`): loaded, paused. For post-copy: when the poll found
   * the device state loaded (the remaining pages still to come).
   */
  loadedAtUs?: number;
  /** The network sends the guest's frames to this node (steerFrames()), while the source holds it paused. */
  framesSteeredAtUs?: number;
  /** QEMU runs the vCPUs (RESUME, on `cont`). */
  resumedAtUs?: number;
  /** The first frame from the guest's NIC on its tap after the resume (network/first-frame.ts), once known. */
  firstFrame?: FirstFrame;
  /** Frames on the guest's taps before `cont`, the guest paused here. */
  framesBeforeResume?: number;
}

interface TargetMigrationEvents {
  status: [QmpMigrationStatus];
}

/**
 * The spec a migration target is started with: the source's, with the defaults the source's daemon applied made
 * explicit, so a target daemon with other defaults still builds an identical machine.
 */
export function incomingSpec(spec: GuestDefinition, sourceAccel: Accelerator): GuestDefinition {
  return {
    ...spec,
    machine: spec.machine ?? DEFAULT_MACHINE,
    cpuModel: spec.cpuModel ?? (sourceAccel === 'kvm' ? 'host' : 'max'),
  };
}

export class TargetMigration extends EventEmitter<TargetMigrationEvents> {
  /** Resolves when the guest is loaded and paused, ready for resume(); rejects when the incoming migration fails. */
  readonly loaded: Promise<TargetLoaded>;
  /** Resolves when the incoming migration completed (for post-copy: after the last page); rejects on failure. */
  readonly completed: Promise<void>;
  private resolveLoaded!: (loaded: TargetLoaded) => void;
  private rejectLoaded!: (err: Error) => void;
  private resolveCompleted!: () => void;
  private rejectCompleted!: (err: Error) => void;
  private status: QmpMigrationStatus = 'none';
  private isLoaded = false;
  private resumed = false;
  private aborted = false;
  private settled = false;
  private readyTimer: NodeJS.Timeout | undefined;
  /** Started with the target (network/frame-steering.ts); undefined once used or no longer useful. */
  private steerer: FrameSteerer | undefined;
  private steerClosed = false;
  private steered: Promise<string[]> | undefined;
  private readonly onEvent = (event: QmpEvent): void => this.handleEvent(event);
  private readonly onClose = (err: Error | undefined): void =>
    this.fail(new Error(`the target QEMU went away: ${err?.message ?? 'QMP closed'}`));

  /** The TCP port QEMU listens on; 0 for a unix socket. */
  port = 0;
  readonly switchover: TargetSwitchoverSteps = {};
  /** Set by resume(): settles once the first frame after the resume is known (or why it is not). */
  firstFrame: Promise<FirstFrame> | undefined;
  /** The TCP port of the NBD server the local disks are mirrored into; 0 without local disks. */
  diskPort = 0;

  private constructor(
    private readonly options: TargetMigrationOptions,
    readonly qmp: QmpClient,
  ) {
    super();
    this.loaded = new Promise((resolve, reject) => {
      this.resolveLoaded = resolve;
      this.rejectLoaded = reject;
    });
    this.completed = new Promise((resolve, reject) => {
      this.resolveCompleted = resolve;
      this.rejectCompleted = reject;
    });
    // Callers may await only one of them; an unobserved rejection must not crash the daemon.
    this.loaded.catch(() => undefined);
    this.completed.catch(() => undefined);
  }

  /**
   * Starts the incoming QEMU and makes it listen. On any error the half-prepared target is removed again and the
   * error rethrown.
   */
  static async prepare(options: TargetMigrationOptions): Promise<TargetMigration> {
    const uri = channelUri(options.channel);
    const { supervisor, spec, settings } = options;
    const status = await supervisor.create(spec, { incoming: true });
    let target: TargetMigration | undefined;
    try {
      const qmp = supervisor.qmp(spec.name);
      const version = await qmp.queryVersion();
      assertMigrationSupported(status.accelerator, { ...version.qemu, text: version.package });
      await qmp.migrateSetCapabilities(channelCapabilities(settings));
      const multifd = channelParameters(settings);
      if (Object.keys(multifd).length > 0) await qmp.migrateSetParameters({ ...multifd });
      target = new TargetMigration(options, qmp);
      qmp.on('event', target.onEvent);
      qmp.on('close', target.onClose);
      // QEMU stays up after a failed incoming migration, so abort() stops it through the supervisor like any
      // other guest and its error stays readable (query-migrate) until then.
      await applyChannelTls(qmp, options.channel, 'server');
      // A connection that fails the TLS handshake is dropped and QEMU keeps listening for the real source.
      await qmp.execute('migrate-incoming', { uri, 'exit-on-error': false });
      if (options.channel.transport === 'tcp') target.port = await listeningPort(qmp);
      const ports = guestPorts(supervisor.get(spec.name));
      if (ports.length > 0) target.steerer = new FrameSteerer(ports);
      const local = localDiskIndices(spec);
      if (local.length > 0) {
        if (options.channel.transport !== 'tcp') throw new Error('local disks migrate over TCP only');
        // Same address and credentials as the memory stream: a peer without the token fails the handshake.
        target.diskPort = await exportTargetDisks(qmp, options.channel.host, local, TLS_CREDS_ID);
      }
      return target;
    } catch (err) {
      target?.closeSteerer();
      await supervisor.delete(spec.name, { timeoutMs: 0 }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Takes over an incoming QEMU that a daemon which went away had prepared: follows its migration from where it
   * is (still listening, loading, loaded and paused, or failed). `port` is the one it was listening on.
   */
  static async adopt(options: TargetMigrationOptions, port: number): Promise<TargetMigration> {
    const qmp = options.supervisor.qmp(options.spec.name);
    const target = new TargetMigration(options, qmp);
    // 0: the daemon died before it learnt the port; QEMU still knows it while it listens.
    target.port = port || (await listeningPort(qmp).catch(() => 0));
    qmp.on('event', target.onEvent);
    qmp.on('close', target.onClose);
    const [info, run] = await Promise.all([qmp.queryMigrate(), qmp.queryStatus()]);
    if (run.running) {
      // Resumed before the daemon went away: the guest runs here.
      target.isLoaded = target.resumed = true;
      target.resolveLoaded({ atMs: Date.now(), postCopy: false });
    }
    if (info.status !== undefined)
      target.handleEvent({
        event: 'MIGRATION',
        data: { status: info.status },
        timestamp: { seconds: 0, microseconds: 0 },
      });
    return target;
  }

  get name(): string {
    return this.options.spec.name;
  }

  get migrationStatus(): QmpMigrationStatus {
    return this.status;
  }

  /** True once QEMU runs the guest here (`cont` succeeded, or it ran already when adopted). */
  get isResumed(): boolean {
    return this.resumed;
  }

  /** Hand-over, success side: runs the loaded guest (`cont`) and announces its MACs to the network. */
  async resume(): Promise<void> {
    if (this.aborted) throw new Error(`target ${this.name} was aborted`);
    if (!this.isLoaded) throw new Error(`target ${this.name} is not loaded yet: nothing to resume`);
    if (this.resumed) return;
    // The source completed its mirrors before the switchover; nothing but the guest may write its disks now.
    const local = localDiskIndices(this.options.spec);
    if (local.length > 0) await stopTargetExports(this.qmp, local);
    // QEMU sends RESUME (with its timestamp) before it answers `cont`.
    const onResume = (event: QmpEvent): void => {
      if (event.event === 'RESUME') this.switchover.resumedAtUs ??= qmpTimestampUs(event.timestamp);
    };
    const taps = (this.options.supervisor.get(this.name)?.nics ?? []).flatMap((nic) =>
      nic.kind === 'tap' ? [nic.ifname] : [],
    );
    // The counters' baseline right before `cont`; the watch ends by itself after its window.
    const watch = watchFirstFrame(taps);
    this.switchover.framesBeforeResume = watch.baseline;
    this.qmp.on('event', onResume);
    try {
      await this.qmp.cont();
    } catch (error) {
      watch.cancel();
      throw error;
    } finally {
      this.qmp.off('event', onResume);
    }
    this.resumed = true;
    this.closeSteerer();
    this.switchover.resumedAtUs ??= wallClockUs();
    this.firstFrame = watch.result.then((frame) => (this.switchover.firstFrame = frame));
    await announceSelf(this.qmp);
  }

  /**
   * The source paused the guest for the switchover: the network sends its frames here from now on, where this QEMU
   * keeps them until it runs the guest (network/frame-steering.ts). Returns what failed; an empty list when the
   * frames come here. Once: a second call, or one after the target ran, was aborted or failed, changes nothing.
   */
  steerFrames(): Promise<string[]> {
    if (this.steered === undefined) {
      if (this.steerClosed) return Promise.resolve(['the target no longer waits for the guest']);
      const ports = guestPorts(this.options.supervisor.get(this.name));
      if (ports.length === 0) return Promise.resolve([]);
      // An adopted target (its daemon restarted) has no helpers waiting: they start now.
      const steerer = this.steerer ?? new FrameSteerer(ports);
      this.steerer = undefined;
      this.steered = steerer.steer().then((problems) => {
        if (problems.length === 0) this.switchover.framesSteeredAtUs = wallClockUs();
        return problems;
      });
    }
    return this.steered;
  }

  private closeSteerer(): void {
    this.steerClosed = true;
    this.steerer?.close();
    this.steerer = undefined;
  }

  /**
   * A post-copy whose stream broke (`postcopy-paused`): listens again on the same address and port
   * (`migrate-recover`) for the source to resume the stream. The channel's key file must be there again, because the
   * server side reads it at each handshake.
   */
  async listenForRecovery(): Promise<void> {
    const channel = this.options.channel;
    const uri = channelUri(channel.transport === 'tcp' ? { ...channel, port: this.port } : channel);
    // Out of band where QEMU offers it: once the guest runs here, a vCPU blocked on a page that has not arrived may
    // hold QEMU's big lock, which an in-band command waits for — for the very stream it is to bring back (seen
    // under TCG: no reply within 10 s, the post-copy lost).
    if (this.qmp.oob) await this.qmp.executeOob('migrate-recover', { uri });
    else await this.qmp.execute('migrate-recover', { uri });
  }

  /** Quits the target QEMU (if any) and deletes its state dir. Idempotent. Refused once the guest runs here. */
  async abort(): Promise<void> {
    if (this.resumed) throw new Error(`target ${this.name} runs the guest: it cannot be aborted`);
    if (this.aborted) return;
    this.aborted = true;
    this.closeSteerer();
    this.fail(new Error(`target ${this.name} was aborted`));
    try {
      await this.options.supervisor.delete(this.name, { timeoutMs: 0 });
    } catch (error) {
      // Deleted already (the stale-guest sweep, an admin): nothing of it is left to remove.
      if (!(error instanceof GuestNotFoundError)) throw error;
    }
  }

  private handleEvent(event: QmpEvent): void {
    if (event.event !== 'MIGRATION' || typeof event.data?.status !== 'string') return;
    this.status = event.data.status as QmpMigrationStatus;
    // (An adopted migration's replayed status has no timestamp.)
    if (this.status === 'completed' && event.timestamp.seconds > 0)
      this.switchover.loadedAtUs ??= qmpTimestampUs(event.timestamp);
    this.emit('status', this.status);
    if (this.status === 'completed') {
      void this.markLoaded(false);
    } else if (this.status === 'postcopy-active') {
      // Post-copy switches to postcopy-active before the device state arrives; the guest is loaded once QEMU
      // leaves inmigrate (it then stays paused because of -S).
      this.pollUntilLoaded();
    } else if (this.status === 'failed' || this.status === 'cancelled') {
      const what = `the incoming migration ${this.status}`;
      void this.qmp
        .queryMigrate()
        .then((info) => (info['error-desc'] === undefined ? what : `${what}: ${info['error-desc']}`))
        .catch(() => what)
        .then((message) => this.fail(new Error(message)));
    }
  }

  private pollUntilLoaded(): void {
    const poll = async (): Promise<void> => {
      if (this.isLoaded || this.settled) return;
      const run = await this.qmp.queryStatus().catch(() => undefined);
      if (run !== undefined && run.status !== 'inmigrate') {
        this.switchover.loadedAtUs ??= wallClockUs();
        await this.markLoaded(true);
        return;
      }
      this.readyTimer = setTimeout(() => void poll(), this.options.readyPollMs ?? 5);
    };
    void poll();
  }

  private async markLoaded(postCopy: boolean): Promise<void> {
    clearTimeout(this.readyTimer);
    if (!this.isLoaded) {
      this.isLoaded = true;
      this.resolveLoaded({ atMs: Date.now(), postCopy });
    }
    if (this.status === 'completed') {
      this.settled = true;
      this.detach();
      this.resolveCompleted();
    }
  }

  private fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.closeSteerer();
    clearTimeout(this.readyTimer);
    this.detach();
    if (!this.isLoaded) this.rejectLoaded(err);
    this.rejectCompleted(err);
  }

  private detach(): void {
    this.qmp.off('event', this.onEvent);
    this.qmp.off('close', this.onClose);
  }
}
