// The source side of a live migration: configures the running guest's QEMU, starts `migrate` to the target QEMU
// (TCP with QEMU's own TLS between nodes, or a unix socket in tests), follows QEMU through the phases, applies the
// convergence policy, and stops at the hand-over: it never quits the source on its own (release() does, when the
// caller says so) and never leaves it paused after a cancel. A post-copy whose stream broke is recovered (QEMU's
// `migrate` with `resume`) until the policy's stall timeout; one that cannot finish leaves the guest's state split
// between the two QEMUs, neither can run it, so the source QEMU is stopped (the guest Failed, reason
// PostCopyFailed) rather than left paused for good.
import { EventEmitter } from 'node:events';
import type { GuestDefinition } from '../../model/guest.js';
import type { GuestSupervisor } from '../../runtime/supervisor.js';
import {
  QmpClosedError,
  QmpTimeoutError,
  type QmpMigrationInfo,
  type QmpMigrationStatus,
  type QmpClient,
  type QmpEvent,
  type QmpRunState,
} from '../../qemu/qmp-client.js';
import { assertMigrationSupported } from '../../qemu/version.js';
import { applyChannelTls, channelUri, TLS_CREDS_ID, type MigrationChannel } from './channel.js';
import { DiskMirror, type MirroredDisk } from './local-disks.js';
import { decideConvergence, type ConvergenceDecision, type ConvergenceState } from './convergence.js';
import { PhaseClock, type EnginePhase, type PhaseChange, type PhaseRecord } from './phases.js';
import {
  quiesceFailure,
  quiesceReport,
  sampleDiskCounters,
  type DiskCounters,
  type QuiesceReport,
} from './quiesce.js';
import {
  channelCapabilities,
  channelParameters,
  channelSettings,
  qemuMaxBandwidth,
  switchoverTimeoutMs,
  zeroPageDetection,
  type ResolvedMigrationPolicy,
} from './policy.js';
import { progressFromInfo, type ProgressSample } from './progress.js';
import { announceSelf } from './announce.js';
import { forgetGuestMacs, guestPorts, MacForgetter, type GuestPort } from '../../network/fdb.js';
import { qmpTimestampUs, wallClockUs } from '../../../../proto/index.js';

export interface SourceMigrationOptions {
  supervisor: GuestSupervisor;
  /** The running guest to migrate. */
  guest: string;
  /** Where the target QEMU listens. */
  channel: MigrationChannel;
  /** A validated policy (resolveMigrationPolicy). */
  policy: ResolvedMigrationPolicy;
  /** query-migrate poll period, 100–1000 ms (default 200); one progress event per poll. */
  pollIntervalMs?: number;
  /**
   * Runs in the Quiescing step while QEMU holds the paused guest before switchover, before the local disks'
   * mirrors are completed: for callers that hand over external resources (hold_in_quiescing). Default: nothing.
   */
  quiesce?: () => Promise<void>;
  /** How long cancel() waits for QEMU to report the migration cancelled (default 30 s). */
  cancelTimeoutMs?: number;
  /**
   * `storage: local` disks to mirror into the target's NBD server (TCP channel only, same TLS) before the memory
   * is migrated (local-disks.ts).
   */
  localDisks?: { disks: MirroredDisk[]; target: { host: string; port: number } };
}

/** A convergence action the engine took, with its reason. */
export type ConvergenceRecord = Exclude<ConvergenceDecision, { action: 'none' }> & {
  atMs: number;
  round: number;
  /** Set when QEMU refused the action. */
  error?: string;
};

export type SourceResult = 'Completed' | 'Failed' | 'Aborted';

/**
 * Why a migration did not complete, for callers that act on it (the reason is the sentence for people):
 * Cancelled (cancel()), Timeout / Stalled (the convergence policy gave up), Connection (QEMU's stream to the
 * target failed: refused, handshake, broken or the target went away), Source (the source QEMU or the engine's
 * own steps failed).
 */
export type SourceFailureCause = 'Cancelled' | 'Timeout' | 'Stalled' | 'Connection' | 'Source';

export interface SourceOutcome {
  /** Completed: device state crossed and the target loaded it (return path); the hand-over is next. */
  result: SourceResult;
  reason: string;
  /** Set unless Completed. */
  cause?: SourceFailureCause;
  phases: PhaseRecord[];
  /** Wall time from start() to the outcome. */
  durationMs: number;
  /** QEMU's own figures from the last query-migrate (downtime only when completed). */
  qemuTotalTimeMs?: number;
  downtimeMs?: number;
  setupTimeMs?: number;
  transferredBytes?: number;
  rounds?: number;
  postCopy: boolean;
  decisions: ConvergenceRecord[];
  /** The source QEMU's run state once the outcome was reached; undefined when its QMP is gone. */
  sourceRunState?: QmpRunState;
  /** The Quiescing step's report, once QEMU paused the guest before the switchover (quiesce.ts). */
  quiesce?: QuiesceReport;
  /**
   * The switchover's steps on this node's wall clock (µs since the epoch), once QEMU paused the guest for it;
   * outcomeAtUs is the caller's to stamp as it publishes the outcome.
   */
  switchover?: SourceSwitchover;
}

/**
 * The switchover as the source sees it, in µs since the epoch (QMP's event timestamps): the guest paused (STOP),
 * the device state started crossing (MIGRATION `device`, after the Quiescing step), QEMU completed (MIGRATION
 * `completed`: after the target acknowledged its load on the return path), and the outcome published (this clock).
 */
export interface SourceSwitchover {
  pausedAtUs?: number;
  /** This daemon saw pre-switchover and began the Quiescing step; it sent migrate-continue (this clock). */
  quiescingAtUs?: number;
  continueSentAtUs?: number;
  continuedAtUs?: number;
  completedAtUs?: number;
  outcomeAtUs?: number;
  /** The bridge forgot where the paused guest's MACs were: from here its frames flood (network/fdb.ts). */
  framesFloodedAtUs?: number;
}

interface SourceMigrationEvents {
  phase: [PhaseChange];
  progress: [ProgressSample];
  decision: [ConvergenceRecord];
}

const DEFAULT_POLL_MS = 200;
/** MIGRATION_PASS triggers an extra poll (to catch the new round's dirty set), but never closer than this. */
const MIN_POLL_GAP_MS = 50;
const RESUME_WAIT_MS = 3_000;
/** How long what is left of the disk copy may go without shrinking before the mirrors write-block (followDiskCopy). */
const NOT_CONVERGING_MS = 5_000;
/**
 * How long the switchover deadline's migrate_cancel may take before the migration's connections are yanked: QEMU
 * writes the last pages and the device state holding its big lock, so on a stalled link no in-band command runs.
 */
const CANCEL_BEFORE_YANK_MS = 1_000;
/** How often a paused post-copy tries to resume its stream. */
const RECOVER_RETRY_MS = 1_000;
const IDLE_STATUSES: readonly QmpMigrationStatus[] = ['none', 'completed', 'failed', 'cancelled'];

/** cancel() past the point of no return: the device state crossed, or post-copy runs. Any other error is not. */
export class TooLateToCancelError extends Error {}

export class SourceMigration extends EventEmitter<SourceMigrationEvents> {
  /** Resolves once with the outcome (after start() resolved; never if start() rejected); never rejects. */
  readonly done: Promise<SourceOutcome>;
  readonly history: ProgressSample[] = [];
  readonly decisions: ConvergenceRecord[] = [];
  private readonly clock = new PhaseClock();
  private readonly convergence: ConvergenceState;
  private resolveDone!: (outcome: SourceOutcome) => void;
  private outcome: SourceOutcome | undefined;
  private finishing = false;
  private released = false;
  private quiesceStarted = false;
  /** What the quiesce step sampled when it began; its report once it ended. */
  private quiescing:
    { startedAtMs: number; spec: GuestDefinition; before: Map<number, DiskCounters> } | undefined;
  private quiesceReport: QuiesceReport | undefined;
  private readonly switchover: SourceSwitchover = {};
  private cancelReason: string | undefined;
  /** Why the engine itself stopped QEMU's migration (migrate_cancel), set before it does. */
  private abort: { reason: string; cause: SourceFailureCause } | undefined;
  private actionInFlight = false;
  private polling = false;
  private lastPollAtMs = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private switchoverTimer: NodeJS.Timeout | undefined;
  private pollPaused = false;
  /** The last time post-copy moved (bytes transferred grew), for its stall deadline. */
  private postCopyProgress = { bytes: -1, atMs: 0 };
  /** Set while a broken post-copy stream is being recovered: since when, and its deadline's timer. */
  private recovery:
    | {
        sinceMs: number;
        deadline: NodeJS.Timeout;
        retry?: NodeJS.Timeout;
        /** `migrate` with `resume` sent so far, and QEMU's migration status after the last one. */
        attempts: number;
        lastStatus?: string;
      }
    | undefined;
  private readonly pollIntervalMs: number;
  private readonly onEvent = (event: QmpEvent): void => this.handleEvent(event);
  private readonly onClose = (err: Error | undefined): void =>
    void this.finish('Failed', `the source QEMU went away (${err?.message ?? 'QMP closed'})`, 'Source');

  /** Started with the migration for a guest on taps, used at its switchover (floodFramesForPausedGuest). */
  private macForgetter: MacForgetter | undefined;
  private startedAtMs = 0;
  /** The local disks' mirrors; undefined for a guest without local disks. */
  private mirror: DiskMirror | undefined;
  /** True once the mirrors were completed at the switchover (the target's copies are final). */
  private mirrorCompleted = false;
  /** True once the mirrors write-block (at READY, or earlier when the guest writes faster than they copy). */
  private writeBlocking = false;
  /** True once `migrate` was issued (for a guest with local disks: after every mirror was READY). */
  private memoryStarted = false;
  private diskTimer: NodeJS.Timeout | undefined;
  /** The disk copy's progress clocks (followDiskCopy): when it last moved, and its least bytes left and since when. */
  private diskMoved = { bytes: -1, atMs: 0 };
  private diskLeast = { bytes: Infinity, atMs: 0 };
  /** followDiskCopy runs; a BLOCK_JOB_READY meanwhile asks for the next check at once (diskRecheck). */
  private followingDisk = false;
  private diskRecheck = false;
  /** The last disk-copy figures, carried on every progress sample. */
  private disk = { transferredBytes: 0, totalBytes: 0 };
  private wasRunning = false;
  private started = false;
  /** The source guest's QMP session (the supervisor's). */
  readonly qmp: QmpClient;
  private readonly uri: string;

  /**
   * Binds to the guest's QEMU without touching it: subscribe to 'phase', 'progress' and 'decision' here, then
   * call start(). Throws when the channel is invalid or the guest has no live QEMU.
   */
  constructor(private readonly options: SourceMigrationOptions) {
    super();
    this.uri = channelUri(options.channel);
    this.qmp = options.supervisor.qmp(options.guest);
    this.pollIntervalMs = Math.min(1000, Math.max(100, options.pollIntervalMs ?? DEFAULT_POLL_MS));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.convergence = {
      startedAtMs: 0,
      downtimeLimitMs: options.policy.downtimeMs,
      cpuThrottleCeiling: 0,
      postCopyStarted: false,
      lastActionRound: 0,
      lastActionAtMs: 0,
    };
  }

  /**
   * Checks the guest and its QEMU, sets capabilities and parameters, and issues `migrate`. Rejects (with nothing
   * changed but QEMU's migration settings) when a check fails; otherwise resolves once QEMU was asked to migrate,
   * and the outcome arrives on `done` (Failed at once if QEMU refused the `migrate`).
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('the migration was already started');
    this.started = true;
    this.startedAtMs = Date.now();
    this.convergence.startedAtMs = this.startedAtMs;
    const { supervisor, guest, policy } = this.options;
    const qmp = this.qmp;
    const status = supervisor.get(guest);
    if (status === undefined) throw new Error(`no guest named ${guest}`);
    const version = await qmp.queryVersion();
    assertMigrationSupported(status.accelerator, { ...version.qemu, text: version.package });
    const run = await qmp.queryStatus();
    if (run.status !== 'running' && run.status !== 'paused') {
      throw new Error(`guest ${guest} is ${run.status}; only a running or paused guest can be migrated`);
    }
    this.wasRunning = run.running;
    const previous = (await qmp.queryMigrate()).status ?? 'none';
    if (!IDLE_STATUSES.includes(previous)) {
      throw new Error(`guest ${guest} already has a migration in progress (QEMU status ${previous})`);
    }

    await qmp.migrateSetCapabilities({
      ...channelCapabilities(channelSettings(policy)),
      // QEMU stops at pre-switchover with the guest paused, so the daemon can quiesce (flush block devices).
      'pause-before-switchover': true,
      'auto-converge': policy.allowAutoConverge,
    });
    await qmp.migrateSetParameters({
      'max-bandwidth': qemuMaxBandwidth(policy),
      'max-postcopy-bandwidth': policy.bandwidthBytesPerSec, // 0 = unlimited for post-copy
      'downtime-limit': policy.downtimeMs,
      // Channel count and compression as the target set them; zero pages found in the multifd threads.
      ...channelParameters(channelSettings(policy)),
      'zero-page-detection': zeroPageDetection(channelSettings(policy)),
      // QEMU cannot turn auto-converge on mid-migration, so it is on from the start with its throttle capped at
      // 1% (QEMU's minimum); the convergence policy raises the cap when it decides to throttle.
      ...(policy.allowAutoConverge
        ? { 'cpu-throttle-initial': 1, 'cpu-throttle-increment': 1, 'max-cpu-throttle': 1 }
        : {}),
    });

    await applyChannelTls(qmp, this.options.channel, 'client');

    const local = this.options.localDisks;
    if (local !== undefined && local.disks.length > 0) {
      if (this.options.channel.transport !== 'tcp') throw new Error('local disks migrate over TCP only');
      // The NBD client nodes use the client credentials just created (they hold the key already).
      const mirror = new DiskMirror(
        qmp,
        local.disks,
        local.target,
        TLS_CREDS_ID,
        policy.bandwidthBytesPerSec,
      );
      try {
        await mirror.start();
      } catch (err) {
        await mirror.abandon();
        throw new Error(`the disk copy could not start: ${(err as Error).message}`);
      }
      this.mirror = mirror;
    }

    this.enter('Initializing', `migrating ${guest} to ${this.uri}`, this.startedAtMs);
    // From here every end of the migration goes through finish(), which ends the process if it was not used.
    if (this.guestPorts().length > 0) this.macForgetter = new MacForgetter();
    qmp.on('event', this.onEvent);
    qmp.on('close', this.onClose);
    if (this.mirror !== undefined) {
      this.enter('Copying', `copying ${this.mirror.count} local disk(s) to the target; the memory follows`);
      this.diskMoved = { bytes: -1, atMs: Date.now() };
      this.diskLeast = { bytes: Infinity, atMs: Date.now() };
      this.diskTimer = setTimeout(() => void this.followDiskCopy(), 0);
      return;
    }
    await this.startMemory();
  }

  private async startMemory(): Promise<void> {
    this.memoryStarted = true;
    // The memory's completion budget (per GiB of memory) and its stall clock start with the memory; the disk copy
    // before it had its own (per GiB of disk).
    this.convergence.startedAtMs = Date.now();
    try {
      await this.qmp.execute('migrate', { uri: this.uri });
    } catch (err) {
      await this.finish('Failed', `QEMU refused to start the migration: ${(err as Error).message}`, 'Source');
      return;
    }
    this.schedulePoll(0);
  }

  /**
   * Until every mirror is READY: a progress event per poll (disk bytes, no memory yet). A mirror that ends on its
   * own fails the migration (Connection: the target or the link went away); one that copies nothing for the
   * stall timeout, or not all within the completion timeout per GiB of disk, fails it too. READY: the mirrors turn
   * write-blocking (if they are not already) and the memory migration starts.
   *
   * Convergence: in background mode the guest's writes only mark blocks dirty, so a guest that writes faster than
   * the link copies never lets the mirrors reach READY. When what is left to copy has not shrunk below its lowest
   * for NOT_CONVERGING_MS, the mirrors turn write-blocking before READY: from then on each guest write completes
   * only once the target has it too (the guest writes at the link's pace), nothing new is marked dirty, and the
   * background copy drains what is left.
   */
  private async followDiskCopy(): Promise<void> {
    if (this.finishing || this.cancelReason !== undefined || this.followingDisk) return;
    this.followingDisk = true;
    this.diskRecheck = false;
    try {
      await this.checkDiskCopy();
    } finally {
      this.followingDisk = false;
    }
  }

  private async checkDiskCopy(): Promise<void> {
    const mirror = this.mirror!;
    const { policy } = this.options;
    let progress;
    try {
      progress = await mirror.progress();
    } catch (err) {
      if (err instanceof QmpClosedError) return; // onClose finishes
      progress = { transferredBytes: 0, totalBytes: 0, ready: false, failure: (err as Error).message };
    }
    if (this.finishing || this.cancelReason !== undefined) return;
    const now = Date.now();
    if (progress.failure !== undefined) {
      await this.finish('Failed', `copying the local disks failed: ${progress.failure}`, 'Connection');
      return;
    }
    this.disk = { transferredBytes: progress.transferredBytes, totalBytes: progress.totalBytes };
    this.emit('progress', this.diskSample(now));
    const left = progress.totalBytes - progress.transferredBytes;
    // Nothing left (the job just started, or READY is next) is no measure of convergence.
    if (left > 0 && left < this.diskLeast.bytes) this.diskLeast = { bytes: left, atMs: now };
    if (!progress.ready && !this.writeBlocking && now - this.diskLeast.atMs >= NOT_CONVERGING_MS) {
      if (!(await this.turnWriteBlocking())) return;
      this.note(
        'Copying',
        `the guest writes to its local disks faster than the copy moves (${left} bytes left, never less for ` +
          `${NOT_CONVERGING_MS} ms): its writes now wait for the target (write-blocking), so the copy converges`,
      );
    }
    if (progress.ready) {
      if (!this.writeBlocking && !(await this.turnWriteBlocking())) return;
      this.note(
        'Copying',
        `the local disks are in sync (${progress.totalBytes} bytes); migrating the memory`,
      );
      await this.startMemory();
      return;
    }
    if (progress.transferredBytes > this.diskMoved.bytes)
      this.diskMoved = { bytes: progress.transferredBytes, atMs: now };
    const gib = Math.max(1, progress.totalBytes / 2 ** 30);
    const limitMs = policy.completionTimeoutPerGiBSeconds * 1000 * gib;
    if (now - this.diskMoved.atMs >= policy.stallTimeoutSeconds * 1000) {
      await this.finish(
        'Failed',
        `the disk copy moved nothing for ${policy.stallTimeoutSeconds} s (the stall timeout)`,
        'Stalled',
      );
      return;
    }
    if (now - this.startedAtMs >= limitMs) {
      await this.finish(
        'Failed',
        `the disks were not in sync within ${Math.round(limitMs / 1000)} s (the completion timeout per GiB)`,
        'Timeout',
      );
      return;
    }
    this.diskTimer = setTimeout(() => void this.followDiskCopy(), this.diskRecheck ? 0 : this.pollIntervalMs);
  }

  /** Switches the mirrors to write-blocking; false when the migration ended or was cancelled meanwhile. */
  private async turnWriteBlocking(): Promise<boolean> {
    try {
      await this.mirror!.writeBlocking();
      this.writeBlocking = true;
    } catch (err) {
      await this.finish(
        'Failed',
        `the disk mirrors could not turn write-blocking: ${(err as Error).message}`,
        'Source',
      );
      return false;
    }
    return !this.finishing && this.cancelReason === undefined;
  }

  /** A progress sample of the disk-copy phase: no memory figures yet. */
  private diskSample(atMs: number): ProgressSample {
    return {
      atMs,
      status: 'setup',
      round: 0,
      transferredBytes: 0,
      remainingBytes: 0,
      totalBytes: 0,
      dirtyRateBytesPerSec: 0,
      throughputMbps: 0,
      expectedDowntimeMs: 0,
      cpuThrottlePercent: 0,
      qemuTotalTimeMs: 0,
      diskTransferredBytes: this.disk.transferredBytes,
      diskTotalBytes: this.disk.totalBytes,
    };
  }

  /**
   * Instead of start(): takes over whatever migration QEMU holds for this guest after the daemon that started it
   * went away (`why`). A migration still copying is cancelled, because nobody applied its convergence policy or
   * could have handed it over in the meantime, and the guest runs here again; one QEMU completed waits for the
   * hand-over as usual; post-copy is followed to its end; no migration at all is a failure.
   */
  async adopt(why: string): Promise<void> {
    if (this.started) throw new Error('the migration was already started');
    this.started = true;
    this.startedAtMs = Date.now();
    this.convergence.startedAtMs = this.startedAtMs;
    this.wasRunning = true; // a guest is migrated while it runs
    const info = await this.qmp.queryMigrate();
    const status = info.status ?? 'none';
    this.enter('Initializing', `adopted after ${why} (QEMU migration status ${status})`, this.startedAtMs);
    this.qmp.on('event', this.onEvent);
    this.qmp.on('close', this.onClose);
    const spec = this.options.supervisor.get(this.options.guest)?.spec;
    if (spec !== undefined && status !== 'completed' && !status.startsWith('postcopy')) {
      // Mirrors of local disks the previous daemon started: the target's copies are dropped with the migration.
      await DiskMirror.abandonAll(this.qmp, spec).catch(() => undefined);
    }
    if (status === 'none') {
      await this.finish('Failed', `${why}: QEMU holds no migration of this guest`, 'Source');
      return;
    }
    if (!IDLE_STATUSES.includes(status) && !status.startsWith('postcopy')) {
      this.abort = {
        reason: `${why} during the migration: cancelled, the guest runs here again`,
        cause: 'Source',
      };
      await this.qmp.execute('migrate_cancel').catch(() => undefined);
    }
    this.onStatus(status, info);
    this.schedulePoll(0);
  }

  /** The current phase; undefined before start(). */
  get phase(): EnginePhase | undefined {
    return this.clock.current;
  }

  get phases(): PhaseRecord[] {
    return this.clock.snapshot();
  }

  get latest(): ProgressSample | undefined {
    return this.history.at(-1);
  }

  get postCopyStarted(): boolean {
    return this.convergence.postCopyStarted;
  }

  /**
   * Cancels the migration before the hand-over: `migrate_cancel`, then makes sure the guest runs on the source
   * again (QEMU resumes it itself; `cont` if it did not). Rejects once the device state has crossed (use the
   * hand-over's failure path) or during post-copy (the target already holds the newest memory). With `cause`, the
   * outcome is a failure of that cause rather than Aborted: nobody asked for the cancel (the daemon shuts down).
   */
  async cancel(reason = 'cancelled by request', cause?: SourceFailureCause): Promise<SourceOutcome> {
    if (this.outcome !== undefined || this.finishing) {
      const outcome = await this.done;
      if (outcome.result === 'Completed') {
        throw new TooLateToCancelError(
          'the migration already completed: abort the target, then resumeAfterFailure() the source',
        );
      }
      return outcome;
    }
    if (this.convergence.postCopyStarted) {
      throw new TooLateToCancelError(
        'post-copy is running: cancelling now would lose the guest; let it complete',
      );
    }
    // A cancel already asked for stays one.
    if (cause !== undefined && this.cancelReason === undefined) this.abort ??= { reason, cause };
    else this.cancelReason ??= reason;
    if (this.mirror !== undefined && !this.memoryStarted) {
      // Still copying the disks: no memory migration to cancel; finish() abandons the mirrors.
      clearTimeout(this.diskTimer);
      if (this.abort !== undefined) await this.finish('Failed', this.abort.reason, this.abort.cause);
      else await this.finish('Aborted', this.cancelReason!, 'Cancelled');
      return this.outcome!;
    }
    await this.qmp.execute('migrate_cancel');
    const timeoutMs = this.options.cancelTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`QEMU did not finish cancelling within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const outcome = await Promise.race([this.done, timeout]).finally(() => clearTimeout(timer));
    if (outcome.result === 'Completed') {
      throw new TooLateToCancelError(
        'the migration completed before the cancel took effect: hand-over or roll back',
      );
    }
    return outcome;
  }

  /** Hand-over, success side: quits the source QEMU and deletes its state dir. Only after Completed. */
  async release(): Promise<void> {
    const outcome = this.mustBeFinished('release');
    if (outcome.result !== 'Completed') {
      throw new Error(`cannot release the source of a migration that ended ${outcome.result}`);
    }
    if (this.released) return;
    const run = await this.qmp.queryStatus().catch((err: unknown) => {
      if (err instanceof QmpClosedError) return undefined;
      throw err;
    });
    if (run?.running === true)
      throw new Error('the source QEMU is running the guest: refusing to release it');
    await this.options.supervisor.delete(this.options.guest, { timeoutMs: 0 });
    this.released = true;
  }

  /**
   * Hand-over, failure side: runs the guest on the source again if it is paused. The caller must have made sure
   * the target does not run it (abort the target first). Refused after post-copy started.
   */
  async resumeAfterFailure(): Promise<QmpRunState> {
    this.mustBeFinished('resume the source');
    if (this.released) throw new Error('the source was released; there is nothing to resume');
    if (this.convergence.postCopyStarted) {
      throw new Error('post-copy started: the target holds the newest memory, the source cannot resume');
    }
    const run = await this.qmp.queryStatus();
    if (run.running) return run.status;
    await this.qmp.cont();
    await this.announceAfterPause();
    return (await this.qmp.queryStatus()).status;
  }

  /**
   * The guest runs here again after a pause for the switchover: the target's daemon may have made the network send
   * its frames to the target's node meanwhile (network/frame-steering.ts), so QEMU announces it here. Best effort:
   * QEMU refuses announce-self only when it cannot take commands at all, and the guest's own frames teach the
   * switches again as soon as it sends.
   */
  private async announceAfterPause(): Promise<void> {
    if (this.switchover.pausedAtUs === undefined) return;
    await announceSelf(this.qmp).catch(() => undefined);
  }

  private mustBeFinished(what: string): SourceOutcome {
    if (this.outcome === undefined) throw new Error(`cannot ${what}: the migration is still in progress`);
    return this.outcome;
  }

  private enter(phase: EnginePhase, reason: string, atMs = Date.now()): void {
    const change = this.clock.enter(phase, reason, atMs);
    if (change !== undefined) this.emit('phase', change);
  }

  private handleEvent(event: QmpEvent): void {
    // QEMU stops the vCPUs (STOP) right before it reports pre-switchover; the last stop before the switchover counts.
    if (event.event === 'STOP' && this.memoryStarted && this.switchover.continuedAtUs === undefined) {
      this.switchover.pausedAtUs = qmpTimestampUs(event.timestamp);
    }
    if (event.event === 'MIGRATION' && typeof event.data?.status === 'string') {
      const status = event.data.status as QmpMigrationStatus;
      if (status === 'device') this.switchover.continuedAtUs ??= qmpTimestampUs(event.timestamp);
      if (status === 'completed') this.switchover.completedAtUs ??= qmpTimestampUs(event.timestamp);
      this.onStatus(status, undefined);
    } else if (event.event === 'MIGRATION_PASS' && !this.polling) {
      this.schedulePoll(Math.max(0, MIN_POLL_GAP_MS - (Date.now() - this.lastPollAtMs)));
    } else if (event.event === 'BLOCK_JOB_READY' && this.mirror !== undefined && !this.memoryStarted) {
      // A mirror is in sync: check them all now rather than at the next poll.
      if (this.followingDisk) {
        this.diskRecheck = true;
      } else if (!this.finishing) {
        clearTimeout(this.diskTimer);
        this.diskTimer = setTimeout(() => void this.followDiskCopy(), 0);
      }
    }
  }

  private onStatus(status: QmpMigrationStatus, info: QmpMigrationInfo | undefined): void {
    if (this.finishing) return;
    switch (status) {
      case 'active':
        if (this.phase === 'Initializing') this.enter('Copying', 'QEMU is copying guest memory');
        break;
      case 'pre-switchover':
        if (!this.quiesceStarted) {
          this.quiesceStarted = true;
          const deadlineMs = switchoverTimeoutMs(this.options.policy);
          this.switchoverTimer = setTimeout(() => void this.abandonSwitchover(deadlineMs), deadlineMs);
          this.enter('Quiescing', 'QEMU paused the guest before switchover');
          this.floodFramesForPausedGuest();
          void this.quiesce();
        }
        break;
      case 'device':
        this.enter('Freezing', 'device state and the last dirty pages are crossing');
        break;
      case 'postcopy-active':
        this.convergence.postCopyStarted = true;
        if (this.recovery !== undefined) this.recovered();
        this.enter(
          'PostCopy',
          'the device state crossed; the guest runs on the target once the ownership record names it, the remaining pages follow',
        );
        break;
      case 'postcopy-paused':
        // QEMU paused post-copy: its stream to the target broke (the link, or the target QEMU went away). It is
        // resumed when the target can be reached again, within the deadline; a failed attempt pauses it again.
        this.convergence.postCopyStarted = true;
        this.recoverPostCopy();
        break;
      case 'completed':
        // Seen by a poll before QMP's event (whose timestamp is exact): this moment is the best left.
        this.switchover.completedAtUs ??= wallClockUs();
        void this.finish('Completed', 'QEMU completed the migration; the target holds the guest, paused');
        break;
      case 'failed':
        // After our own migrate_cancel QEMU may report `failed` (e.g. a channel error as the links close)
        // instead of `cancelled`: the decision that stopped it is the reason.
        if (this.abort !== undefined) void this.finish('Failed', this.abort.reason, this.abort.cause);
        else if (this.convergence.postCopyStarted)
          void this.finish(
            'Failed',
            (final) =>
              `post-copy failed: QEMU failed the migration: ${final?.['error-desc'] ?? info?.['error-desc'] ?? 'no reason given'}`,
            'Connection',
          );
        else if (this.cancelReason !== undefined) void this.finish('Aborted', this.cancelReason, 'Cancelled');
        else
          void this.finish(
            'Failed',
            (final) => {
              const desc = final?.['error-desc'] ?? info?.['error-desc'];
              return `QEMU failed the migration: ${desc ?? 'no reason given'}`;
            },
            // The source QEMU is still there (it answers QMP): its stream to the target broke.
            'Connection',
          );
        break;
      case 'cancelled':
        if (this.abort !== undefined) void this.finish('Failed', this.abort.reason, this.abort.cause);
        else
          void this.finish(
            'Aborted',
            this.cancelReason ?? 'the migration was cancelled outside the engine',
            'Cancelled',
          );
        break;
      default:
        break;
    }
  }

  /**
   * The freeze's deadline passed (a stalled link or target, a quiesce that hangs): the migration is cancelled and
   * the guest runs on the source again. Never in post-copy, where the target already runs the guest.
   */
  private async abandonSwitchover(deadlineMs: number): Promise<void> {
    if (this.finishing || this.convergence.postCopyStarted) return;
    if (this.abort !== undefined || this.cancelReason !== undefined) return;
    this.abort = {
      reason: `the switchover did not finish within ${deadlineMs} ms of the guest's pause: abandoned, the guest runs on the source again`,
      cause: 'Timeout',
    };
    // No more polls meanwhile: a QEMU blocked under its big lock stops reading its monitor once a few in-band
    // commands wait, and the out-of-band yank must still get through. QMP events still report the outcome.
    this.pollPaused = true;
    clearTimeout(this.pollTimer);
    try {
      await this.qmp.execute('migrate_cancel', undefined, { timeoutMs: CANCEL_BEFORE_YANK_MS });
    } catch (err) {
      if (!(err instanceof QmpTimeoutError)) return;
      // The cancel stays queued in QEMU; breaking the connections ends the blocked write, and with it the migration.
      this.abort.reason += ' (its connections were yanked: QEMU was blocked writing to the target)';
      await this.qmp.executeOob('yank', { instances: [{ type: 'migration' }] }).catch(() => undefined);
    } finally {
      this.pollPaused = false;
      this.schedulePoll(0);
    }
  }

  /**
   * Post-copy's stall deadline: once QEMU switched to post-copy, the migration must keep moving. A stream that
   * transfers nothing for the policy's stall timeout (a link that drops packets silently, a target that hangs) ends
   * the migration like a broken one.
   */
  private async watchPostCopy(sample: ProgressSample): Promise<void> {
    if (sample.transferredBytes > this.postCopyProgress.bytes) {
      this.postCopyProgress = { bytes: sample.transferredBytes, atMs: sample.atMs };
      return;
    }
    const stallMs = this.options.policy.stallTimeoutSeconds * 1000;
    if (sample.atMs - this.postCopyProgress.atMs < stallMs) return;
    await this.endPostCopy(
      `post-copy transferred nothing for ${this.options.policy.stallTimeoutSeconds} s (the stall timeout): the link to the target or the target QEMU hangs`,
    );
  }

  /**
   * The post-copy stream broke: QEMU resumes it (`migrate` with `resume`, to the same target: its QEMU listens again
   * with `migrate-recover` on the same port) once the target answers, tried every second until the policy's stall
   * timeout; then the post-copy has failed (endPostCopy). Announced as a phase note while it lasts.
   */
  private recoverPostCopy(): void {
    if (this.finishing || this.abort !== undefined) return;
    if (this.recovery === undefined) {
      const deadlineMs = this.options.policy.stallTimeoutSeconds * 1000;
      const recovery: NonNullable<SourceMigration['recovery']> = {
        sinceMs: Date.now(),
        attempts: 0,
        deadline: setTimeout(
          () =>
            void this.endPostCopy(
              `the stream to the target broke (the link was lost or the target QEMU went away) and could not be resumed within ${this.options.policy.stallTimeoutSeconds} s (the stall timeout; ${recovery.attempts} attempts, QEMU's migration status after the last: ${recovery.lastStatus ?? 'none'})`,
            ),
          deadlineMs,
        ),
      };
      this.recovery = recovery;
      this.note(
        'PostCopy',
        `post-copy paused: link to the target lost, recovering (deadline ${this.options.policy.stallTimeoutSeconds} s)`,
      );
    }
    const recovery = this.recovery;
    // Every poll and event while paused lands here: one attempt at a time, a second after the last one ended.
    if (recovery.retry !== undefined) return;
    recovery.retry = setTimeout(() => {
      if (this.recovery !== recovery || this.finishing || this.abort !== undefined) return;
      recovery.attempts++;
      void this.qmp
        .execute('migrate', { uri: this.uri, resume: true })
        // QEMU refuses while an earlier attempt is still under way; the next try comes after it.
        .catch(() => undefined)
        .then(() => this.qmp.queryMigrate())
        .then((info) => {
          recovery.retry = undefined;
          recovery.lastStatus = info.status;
          // Still (or again) paused: the target did not take the stream; try again.
          if (info.status === 'postcopy-paused') this.recoverPostCopy();
        })
        .catch(() => (recovery.retry = undefined));
    }, RECOVER_RETRY_MS);
  }

  private recovered(): void {
    const recovery = this.recovery!;
    clearTimeout(recovery.deadline);
    clearTimeout(recovery.retry);
    this.recovery = undefined;
    this.postCopyProgress = { bytes: -1, atMs: 0 };
    this.note(
      'PostCopy',
      `post-copy resumed after ${Date.now() - recovery.sinceMs} ms without a link (${recovery.attempts} attempts)`,
    );
  }

  /**
   * The guest is paused for the switchover: frames for it go no longer to this node's tap, where they would die with
   * this QEMU, but to every port of the bridge, the target's tap among them when it is on the same bridge
   * (network/fdb.ts). Off the critical path: the switchover never waits for it; a failure is only noted.
   */
  private floodFramesForPausedGuest(): void {
    const ports = this.guestPorts();
    if (ports.length === 0) return;
    const forgetter = this.macForgetter;
    this.macForgetter = undefined;
    // An adopted migration (a daemon restart) has no process waiting: one is started now.
    void (forgetter ? forgetter.forget(ports) : forgetGuestMacs(ports)).then((problems) => {
      if (problems.length === 0) this.switchover.framesFloodedAtUs = wallClockUs();
      else
        this.note(
          'Quiescing',
          `frames for the paused guest still go to this node's tap: ${problems.join('; ')}`,
        );
    });
  }

  /** The guest's taps with its NICs' MACs. */
  private guestPorts(): GuestPort[] {
    return guestPorts(this.options.supervisor.get(this.options.guest));
  }

  /** Says why the migration waits, without a phase change (the wire's phase event from a phase to itself). */
  private note(phase: EnginePhase, reason: string): void {
    this.emit('phase', { from: phase, to: phase, atMs: Date.now(), reason });
  }

  /**
   * Post-copy cannot finish: the target holds the device state and part of the memory, this QEMU the rest, so
   * neither can run the guest. The migration's connections are yanked (no page goes to the target any more) and the
   * outcome is Failed; finish() stops the source QEMU.
   */
  private async endPostCopy(why: string): Promise<void> {
    if (this.finishing || this.abort !== undefined) return;
    this.abort = { reason: `post-copy failed: ${why}`, cause: 'Connection' };
    this.pollPaused = true;
    clearTimeout(this.pollTimer);
    await this.qmp.executeOob('yank', { instances: [{ type: 'migration' }] }).catch(() => undefined);
    await this.finish('Failed', this.abort.reason, this.abort.cause);
  }

  /**
   * The Quiescing step (docs/disks.md "Quiescing"): QEMU paused the guest, drained its in-flight requests and
   * flushed its disks (vm_stop) before it reported pre-switchover. The step samples each disk's request counters,
   * runs the caller's hook (hold_in_quiescing), completes the local disks' mirrors, samples the counters again and
   * lets QEMU continue only when no guest request reached a disk since the pause. Any failure cancels the migration
   * (the guest runs on the source again) with the reason in the outcome and the report; a step that hangs is ended
   * by the switchover deadline.
   */
  private async quiesce(): Promise<void> {
    const startedAtMs = Date.now();
    this.switchover.quiescingAtUs = wallClockUs();
    const spec = this.options.supervisor.get(this.options.guest)?.spec;
    const stopped = (): boolean =>
      this.cancelReason !== undefined || this.abort !== undefined || this.finishing;
    let failure: { reason: string; cause: SourceFailureCause } | undefined;
    const mirrored = new Set<number>();
    let before: Map<number, DiskCounters> | undefined;
    try {
      if (spec === undefined) throw new Error(`guest ${this.options.guest} is gone`);
      const run = await this.qmp.queryStatus();
      if (run.running)
        throw new Error(`QEMU runs the guest (${run.status}) although it reported pre-switchover`);
      before = await sampleDiskCounters(this.qmp, spec);
      this.quiescing = { startedAtMs, spec, before };
    } catch (err) {
      failure = { reason: `quiescing failed: ${(err as Error).message}`, cause: 'Source' };
    }
    if (failure === undefined) {
      try {
        // The caller's hand-over of external resources; held here with hold_in_quiescing.
        await (this.options.quiesce ?? (async () => undefined))();
      } catch (err) {
        failure = { reason: `quiescing failed: ${(err as Error).message}`, cause: 'Source' };
      }
    }
    if (failure === undefined && stopped()) return;
    if (failure === undefined && this.mirror !== undefined) {
      try {
        // The guest is paused: the mirrors converge and conclude with the target's copies final.
        this.disk = await this.mirror.complete(switchoverTimeoutMs(this.options.policy));
        this.mirrorCompleted = true;
        for (const { index } of this.options.localDisks?.disks ?? []) mirrored.add(index);
        // The disks' final figures, in a sample of their own: QEMU may complete before the next poll samples.
        await this.sample().catch(() => undefined);
      } catch (err) {
        failure = {
          reason: `quiescing failed: completing the disk copy failed: ${(err as Error).message}`,
          cause: 'Connection',
        };
      }
    }
    if (stopped()) return;
    const after =
      spec !== undefined && before !== undefined
        ? await sampleDiskCounters(this.qmp, spec).catch((err: Error) => {
            failure ??= {
              reason: `quiescing failed: reading the disk counters at the end failed: ${err.message}`,
              cause: 'Source',
            };
            return undefined;
          })
        : undefined;
    const report =
      spec !== undefined && before !== undefined
        ? quiesceReport(spec, before, after, mirrored, Date.now() - startedAtMs)
        : { durationMs: Date.now() - startedAtMs, disks: [] };
    const moved = failure === undefined ? quiesceFailure(report) : undefined;
    if (moved !== undefined) failure = { reason: `quiescing failed: ${moved}`, cause: 'Source' };
    if (failure !== undefined) report.error = failure.reason;
    this.quiesceReport = report;
    if (stopped()) return;
    if (failure !== undefined) {
      this.abort = failure;
      await this.qmp.execute('migrate_cancel').catch(() => undefined);
      return;
    }
    this.enter(
      'Freezing',
      `quiesced in ${report.durationMs} ms (${report.disks.length} disk(s) flushed, no I/O since the pause); ` +
        'device state and the last dirty pages are crossing',
    );
    try {
      this.switchover.continueSentAtUs = wallClockUs();
      await this.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    } catch (err) {
      // A cancel that raced the continue is fine; anything else fails the migration.
      if (this.cancelReason === undefined && this.abort === undefined && !this.finishing) {
        this.abort = { reason: `migrate-continue failed: ${(err as Error).message}`, cause: 'Source' };
        await this.qmp.execute('migrate_cancel').catch(() => undefined);
      }
    }
  }

  /** The report of a quiesce step the outcome overtook (a cancel, the switchover deadline): nothing proven. */
  private unfinishedQuiesce(reason: string): QuiesceReport | undefined {
    if (this.quiesceReport !== undefined || !this.quiesceStarted) return this.quiesceReport;
    const started = this.quiescing;
    const durationMs = Date.now() - (started?.startedAtMs ?? Date.now());
    const report =
      started !== undefined
        ? quiesceReport(started.spec, started.before, undefined, new Set(), durationMs)
        : { durationMs, disks: [] };
    return { ...report, error: `the quiesce step did not finish: ${reason}` };
  }

  private schedulePoll(delayMs: number): void {
    if (this.finishing || this.pollPaused) return;
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => void this.poll(), delayMs);
  }

  private async poll(): Promise<void> {
    if (this.finishing || this.polling) return;
    this.polling = true;
    this.lastPollAtMs = Date.now();
    try {
      const { info, sample } = await this.sample();
      if (info.status !== undefined) this.onStatus(info.status, info);
      if (sample?.status === 'active') await this.converge(sample);
      if (sample !== undefined && this.convergence.postCopyStarted && this.recovery === undefined)
        await this.watchPostCopy(sample);
    } catch (err) {
      if (err instanceof QmpClosedError) {
        await this.finish('Failed', `the source QEMU went away: ${err.message}`, 'Source');
      }
    } finally {
      this.polling = false;
      this.schedulePoll(this.pollIntervalMs);
    }
  }

  /**
   * One query-migrate as a progress sample (history and 'progress' event) with the disks' figures, the mirrors
   * read first while they run; the sample is undefined while QEMU reports no RAM statistics.
   */
  private async sample(): Promise<{ info: QmpMigrationInfo; sample: ProgressSample | undefined }> {
    const info = await this.qmp.queryMigrate();
    const sample = progressFromInfo(info, Date.now());
    if (this.mirror !== undefined && !this.mirrorCompleted) await this.watchMirrors();
    if (sample !== undefined) {
      sample.diskTransferredBytes = this.disk.transferredBytes;
      sample.diskTotalBytes = this.disk.totalBytes;
    }
    if (sample !== undefined && !this.finishing) {
      this.history.push(sample);
      this.emit('progress', sample);
    }
    return { info, sample };
  }

  /**
   * During the memory migration: the mirrors keep the disks in sync (their figures grow with the guest's writes,
   * which they copy too); one that ends on its own fails the migration.
   */
  private async watchMirrors(): Promise<void> {
    if (this.quiesceStarted || this.abort !== undefined || this.cancelReason !== undefined) return;
    const progress = await this.mirror!.progress();
    if (progress.failure === undefined)
      this.disk = { transferredBytes: progress.transferredBytes, totalBytes: progress.totalBytes };
    if (progress.failure === undefined || this.quiesceStarted) return;
    this.abort = {
      reason: `the disk copy failed during the memory migration: ${progress.failure}`,
      cause: 'Connection',
    };
    await this.qmp.execute('migrate_cancel').catch(() => undefined);
  }

  private async converge(sample: ProgressSample): Promise<void> {
    if (this.actionInFlight || this.cancelReason !== undefined || this.abort !== undefined) return;
    const decision = decideConvergence({
      policy: this.options.policy,
      memoryBytes: sample.totalBytes,
      history: this.history,
      state: this.convergence,
      nowMs: sample.atMs,
    });
    if (decision.action === 'none') return;
    const record: ConvergenceRecord = { ...decision, atMs: sample.atMs, round: sample.round };
    this.actionInFlight = true;
    try {
      await this.apply(decision);
    } catch (err) {
      record.error = (err as Error).message;
    } finally {
      this.actionInFlight = false;
    }
    this.convergence.lastActionRound = sample.round;
    this.convergence.lastActionAtMs = sample.atMs;
    this.decisions.push(record);
    this.emit('decision', record);
  }

  private async apply(decision: Exclude<ConvergenceDecision, { action: 'none' }>): Promise<void> {
    switch (decision.action) {
      case 'raise-downtime':
        await this.qmp.migrateSetParameters({ 'downtime-limit': decision.downtimeLimitMs });
        this.convergence.downtimeLimitMs = decision.downtimeLimitMs;
        return;
      case 'raise-throttle': {
        // Raising the increment with the cap makes QEMU's next throttle step jump straight to the new ceiling.
        const pct = decision.cpuThrottleCeiling;
        await this.qmp.migrateSetParameters({
          'cpu-throttle-initial': pct,
          'cpu-throttle-increment': pct,
          'max-cpu-throttle': pct,
        });
        this.convergence.cpuThrottleCeiling = pct;
        return;
      }
      case 'start-postcopy':
        await this.qmp.execute('migrate-start-postcopy');
        this.convergence.postCopyStarted = true;
        return;
      case 'abort':
        this.abort = { reason: decision.reason, cause: decision.cause };
        await this.qmp.execute('migrate_cancel');
        return;
    }
  }

  /** Concludes once; `reason` may be built from QEMU's final query-migrate (e.g. its error description). */
  private async finish(
    result: SourceResult,
    why: string | ((info: QmpMigrationInfo | undefined) => string),
    cause?: SourceFailureCause,
  ): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    this.macForgetter?.close();
    this.macForgetter = undefined;
    clearTimeout(this.pollTimer);
    clearTimeout(this.diskTimer);
    clearTimeout(this.switchoverTimer);
    clearTimeout(this.recovery?.deadline);
    clearTimeout(this.recovery?.retry);
    this.qmp.off('event', this.onEvent);
    this.qmp.off('close', this.onClose);
    // A completed migration's run state is asked for together with its figures (QMP answers both in order): the
    // guest is paused until the outcome reaches the operator, so one round trip to QEMU is saved on that path.
    const completedRunState =
      result === 'Completed' ? this.qmp.queryStatus().catch(() => undefined) : undefined;
    const info = await this.qmp.queryMigrate().catch(() => undefined);
    let reason = typeof why === 'string' ? why : why(info);
    // Not completed: the source's disks stay the only authoritative copy; the mirrors and NBD nodes go.
    if (result !== 'Completed' && this.mirror !== undefined && !this.mirrorCompleted && !this.qmp.closed)
      await this.mirror.abandon();
    let sourceRunState: QmpRunState | undefined;
    if (result !== 'Completed' && this.convergence.postCopyStarted) {
      reason = await this.stopSplitSource(reason);
    } else if (result === 'Aborted' || (result === 'Failed' && this.abort !== undefined)) {
      sourceRunState = await this.ensureRunningAfterCancel();
    } else {
      sourceRunState = (await (completedRunState ?? this.qmp.queryStatus().catch(() => undefined)))?.status;
    }
    const outcome: SourceOutcome = {
      result,
      reason,
      ...(cause !== undefined ? { cause } : {}),
      phases: [],
      durationMs: Date.now() - this.startedAtMs,
      postCopy: this.convergence.postCopyStarted,
      decisions: [...this.decisions],
      ...(sourceRunState !== undefined ? { sourceRunState } : {}),
      ...(this.quiesceStarted ? { quiesce: this.unfinishedQuiesce(reason) } : {}),
      ...(this.switchover.pausedAtUs !== undefined ? { switchover: this.switchover } : {}),
      ...(info?.['total-time'] !== undefined ? { qemuTotalTimeMs: info['total-time'] } : {}),
      ...(info?.downtime !== undefined ? { downtimeMs: info.downtime } : {}),
      ...(info?.['setup-time'] !== undefined ? { setupTimeMs: info['setup-time'] } : {}),
      // After a cancel QEMU reports no RAM statistics any more; the last sample tells how far it got.
      ...(info?.ram !== undefined
        ? { transferredBytes: info.ram.transferred, rounds: info.ram['dirty-sync-count'] }
        : this.latest !== undefined
          ? { transferredBytes: this.latest.transferredBytes, rounds: this.latest.round }
          : {}),
    };
    this.enter(result, reason);
    outcome.phases = this.clock.snapshot();
    this.outcome = outcome;
    this.resolveDone(outcome);
  }

  /**
   * A post-copy that cannot finish leaves the guest split (see endPostCopy): the source QEMU is stopped, its guest
   * Failed with reason PostCopyFailed, so that nothing stays paused for good and the VM's restart policy applies.
   * Returns the outcome's reason, which says so.
   */
  private async stopSplitSource(reason: string): Promise<string> {
    const split = `${reason}; the guest's state is split between the source and the target, so neither can run it`;
    if (this.qmp.closed) return `${split}: the source QEMU is gone`;
    try {
      await this.options.supervisor.stop(this.options.guest, {
        timeoutMs: 0,
        failure: { reason: 'PostCopyFailed', message: split },
      });
      return `${split}: the source QEMU was stopped`;
    } catch (err) {
      return `${split}: stopping the source QEMU failed (${(err as Error).message})`;
    }
  }

  /** After a cancel before hand-over the guest must run on the source again, as it did before. */
  private async ensureRunningAfterCancel(): Promise<QmpRunState | undefined> {
    // QEMU resumes a cancelled source by itself once its migration thread has wound down; give it that chance
    // first, then `cont` (refused while QEMU is still in finish-migrate, so retried until the hard deadline).
    const stepInAt = Date.now() + RESUME_WAIT_MS;
    const giveUpAt = stepInAt + RESUME_WAIT_MS;
    try {
      for (;;) {
        const run = await this.qmp.queryStatus();
        if (run.running) await this.announceAfterPause();
        if (run.running || !this.wasRunning || Date.now() >= giveUpAt) return run.status;
        if (Date.now() >= stepInAt) await this.qmp.cont().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } catch {
      return undefined;
    }
  }
}
