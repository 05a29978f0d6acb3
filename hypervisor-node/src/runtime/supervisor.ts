// Runs and supervises QEMU guests. Each guest has a directory under the state root (see state-dir.ts); QEMU runs
// detached from the daemon, so guests survive a daemon restart and reattachAll() picks them up again. Exit is
// detected by the QMP socket closing plus a pid check (a reattached QEMU is not our child). With a guest cgroup
// root (cgroup.ts), every guest also runs in a cgroup of its own, so that it outlives the daemon's container.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { assertSafeStateRoot, buildQemuArgv } from '../qemu/argv.js';
import { QmpClient, type QmpEvent, type QmpRunState } from '../qemu/qmp-client.js';
import type { QemuUser } from '../qemu/run-as.js';
import { validateGuestSpec, type ValidationPolicy } from '../qemu/validate.js';
import { createGuestCgroup, guestCgroupDirs, removeGuestCgroup } from './cgroup.js';
import { boundGuestLines, CONSOLE_TAIL_LIMITS, QEMU_LOG_TAIL_LIMITS } from './guest-text.js';
import {
  CGROUP_JOIN_FAILED,
  describeExitStatus,
  exitReason,
  findGuestQemus,
  isQemuOfGuest,
  killGuestQemusUnder,
  readExitStatus,
  readPid,
  spawnDetachedQemu,
  tailLines,
} from './process.js';
import { guestPaths, type GuestPaths } from '../model/state-dir.js';
import type { NicProvider } from '../network/guest-network.js';
import type {
  Accelerator,
  GuestPhase,
  GuestReason,
  GuestDefinition,
  GuestStatus,
  NicBackend,
} from '../model/guest.js';

export interface SupervisorOptions {
  /** Absolute directory holding one subdirectory per guest. */
  stateRoot: string;
  accel: Accelerator;
  policy: ValidationPolicy;
  /** Host side of the guests' NICs: taps on the node's bridge, or user-mode networking. */
  network: NicProvider;
  qemuBinary?: string;
  /** How long a new QEMU may take to open its QMP socket. */
  startTimeoutMs?: number;
  /** Interval of the pid check that backs up QMP-close detection. */
  pollIntervalMs?: number;
  /** Console lines quoted in a Failed guest's message (bounded to 1 KiB in all, see guest-text.ts). */
  consoleTailLines?: number;
  /**
   * The directories prepared by prepareGuestCgroupRoot (one cgroup v2 dir, or one per cgroup v1 hierarchy) under
   * which each guest's QEMU runs in cgroups named after the guest; undefined: QEMU stays in the daemon's cgroups.
   */
  cgroupRoots?: readonly string[];
  /** The user QEMU drops to once started (qemu/run-as.ts); undefined: QEMU keeps the daemon's user. */
  qemuUser?: QemuUser;
  /** Told about problems that do not fail an operation (e.g. a guest cgroup that could not be removed). */
  warn?: (message: string) => void;
}

export interface CreateOptions {
  /** Start QEMU as a migration target (-incoming defer): paused until migrate-incoming, and after it until cont. */
  incoming?: boolean;
}

export interface StopOptions {
  /** How long the guest gets to power down after system_powerdown before QEMU is told to quit. */
  timeoutMs?: number;
  /**
   * The guest is stopped because it cannot go on (e.g. its state was split by a failed post-copy migration): it
   * ends Failed with this reason and message instead of Stopped, so its restart policy applies.
   */
  failure?: { reason: GuestReason; message: string };
}

/** Another guest of that name exists on this node (also when a concurrent create of the same name won). */
export class GuestExistsError extends Error {
  constructor(readonly guest: string) {
    super(`guest ${guest} already exists`);
    this.name = 'GuestExistsError';
  }
}

/** No guest of that name on this node (also when a delete queued ahead of the operation removed it). */
export class GuestNotFoundError extends Error {
  constructor(readonly guest: string) {
    super(`no guest named ${guest}`);
    this.name = 'GuestNotFoundError';
  }
}

/** The guest is in a phase the operation does not apply to (e.g. starting a guest that runs). */
export class GuestPhaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestPhaseError';
  }
}

export class GuestStartError extends Error {
  constructor(
    readonly guest: string,
    detail: string,
  ) {
    super(`guest ${guest} failed to start: ${detail}`);
    this.name = 'GuestStartError';
  }
}

interface LaunchRecord {
  accel: Accelerator;
  incoming: boolean;
  nics: NicBackend[];
  startedAt: string;
}

/** One QEMU process of a guest; replaced on every (re)start so stale callbacks can tell they are stale. */
interface Run {
  pid?: number;
  qmp?: QmpClient;
  stopRequested: boolean;
  /** What a stop in progress will have done if QEMU exits now. */
  stopOutcome?: Outcome;
  /** Set by stop({ failure }): the run ends Failed with this instead of Stopped with stopOutcome. */
  stopFailure?: Outcome;
  shutdownReason?: string;
  ended: boolean;
  exited: Promise<void>;
  markExited: () => void;
  timer?: NodeJS.Timeout;
}

/** A Stopped or Failed guest's reason and message. */
interface Outcome {
  reason: GuestReason;
  message: string;
}

/** A guest as the supervisor holds it: its definition, paths, last status and current QEMU run. */
interface SupervisedGuest {
  spec: GuestDefinition;
  paths: GuestPaths;
  status: GuestStatus;
  run?: Run;
  /** Serialises create/start/stop/delete on one guest. */
  lock: Promise<unknown>;
}

export interface SupervisorEvents {
  status: [GuestStatus];
  deleted: [string];
}

const QUIT_TIMEOUT_MS = 5_000;
const KILL_TIMEOUT_MS = 5_000;

export class GuestSupervisor extends EventEmitter<SupervisorEvents> {
  private readonly guests = new Map<string, SupervisedGuest>();
  private readonly qemuBinary: string;
  private readonly startTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly consoleTailLines: number;
  private closed = false;

  constructor(private readonly options: SupervisorOptions) {
    super();
    assertSafeStateRoot(options.stateRoot);
    this.qemuBinary = options.qemuBinary ?? 'qemu-system-x86_64';
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.consoleTailLines = options.consoleTailLines ?? 10;
  }

  /**
   * Validates the spec, creates the guest's state dir and starts QEMU. Resolves once QMP answers (Running, or
   * Paused for an incoming migration target). Rejects with GuestSpecError for a bad spec, GuestExistsError for a
   * name in use, or GuestStartError when QEMU does not come up (the guest then stays listed as Failed with reason
   * LaunchFailed, its state dir kept for inspection and its NICs' host side released).
   */
  async create(input: unknown, options: CreateOptions = {}): Promise<GuestStatus> {
    this.assertOpen();
    const spec = await validateGuestSpec(input, this.options.policy);
    const paths = guestPaths(this.options.stateRoot, spec.name);
    if (this.guests.has(spec.name)) throw new GuestExistsError(spec.name);
    await mkdir(this.options.stateRoot, { recursive: true, mode: 0o700 });
    try {
      await mkdir(paths.dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new GuestExistsError(spec.name);
      throw err;
    }
    await writeFile(paths.spec, `${JSON.stringify(spec, null, 2)}\n`);
    const guest: SupervisedGuest = {
      spec,
      paths,
      status: { name: spec.name, uuid: spec.uuid, phase: 'Starting', accelerator: this.options.accel, spec },
      lock: Promise.resolve(),
    };
    this.guests.set(spec.name, guest);
    return this.serialise(guest, () => this.launch(guest, options.incoming === true));
  }

  /** Starts a Stopped or Failed guest again from its stored spec (re-validated against the current policy). */
  async start(name: string): Promise<GuestStatus> {
    const guest = this.mustGet(name);
    return this.serialise(guest, async () => {
      // A delete queued ahead of this start has removed the guest.
      if (this.guests.get(name) !== guest) throw new GuestNotFoundError(name);
      if (guest.status.phase !== 'Stopped' && guest.status.phase !== 'Failed') {
        throw new GuestPhaseError(
          `guest ${JSON.stringify(name)} is ${guest.status.phase}; only a Stopped or Failed guest can be started`,
        );
      }
      // A Failed guest whose QEMU still lives (QMP unreachable) must not get a second QEMU next to it.
      const alive = await liveQemuPid(guest.paths);
      if (alive !== undefined) {
        throw new GuestPhaseError(
          `guest ${JSON.stringify(name)} is ${guest.status.phase} but its QEMU (pid ${alive}) still runs; delete the guest instead`,
        );
      }
      guest.spec = await validateGuestSpec(guest.spec, this.options.policy);
      return this.launch(guest, false);
    });
  }

  /**
   * Graceful stop: system_powerdown, then `quit` if the guest has not powered off within timeoutMs (default
   * 30 s), then SIGKILL. A paused guest cannot react to the power button and gets `quit` at once.
   */
  async stop(name: string, options: StopOptions = {}): Promise<GuestStatus> {
    const guest = this.mustGet(name);
    return this.serialise(guest, () => {
      if (options.failure !== undefined && guest.run !== undefined && !guest.run.ended) {
        guest.run.stopFailure = options.failure;
      }
      return this.stopRun(guest, options.timeoutMs ?? 30_000);
    });
  }

  /** Stops the guest if needed and removes its state dir. */
  async delete(name: string, options: StopOptions = {}): Promise<void> {
    const guest = this.mustGet(name);
    await this.serialise(guest, async () => {
      await this.stopRun(guest, options.timeoutMs ?? 30_000);
      // A QEMU we could not talk to (QMP unreachable after a restart, or no pidfile written before the daemon
      // died) must not outlive its state dir.
      await killGuestQemusUnder(guest.paths.dir, KILL_TIMEOUT_MS);
      // An exit noticed just before the stop is still being recorded in the state dir: let it finish first.
      if (guest.run !== undefined) await within(guest.run.exited, KILL_TIMEOUT_MS, undefined);
      await this.options.network.detach(name, guest.spec.nics.length);
      await rm(guest.paths.dir, { recursive: true, force: true });
      await this.removeCgroups(name);
      this.guests.delete(name);
    });
    this.emit('deleted', name);
  }

  get(name: string): GuestStatus | undefined {
    const guest = this.guests.get(name);
    return guest === undefined ? undefined : { ...guest.status };
  }

  list(): GuestStatus[] {
    return [...this.guests.values()].map((guest) => ({ ...guest.status }));
  }

  /** Who the guests' QEMU runs as: files QEMU opens after start-up (TLS keys) must be given to this user. */
  get qemuUser(): QemuUser | undefined {
    return this.options.qemuUser;
  }

  /**
   * Where a guest of `namespace` may have writable disks (its directory under the image root; none without one): a
   * migration target creates its local disks there.
   */
  writableRoots(namespace: string | undefined): string[] {
    const root = this.options.policy.imageRoots.namespaceRoot;
    return root !== undefined && namespace !== undefined ? [path.join(root, namespace)] : [];
  }

  /** The QMP session of a running guest, for migration control. Throws when the guest has no live QEMU. */
  qmp(name: string): QmpClient {
    const qmp = this.mustGet(name).run?.qmp;
    if (qmp === undefined || qmp.closed) throw new Error(`guest ${name} has no live QMP connection`);
    return qmp;
  }

  /**
   * Rebuilds the guest table from the state root after a daemon (re)start: a live QEMU whose command line names
   * the guest's dir is reconnected over QMP and reported Running/Paused; a dead one is Stopped (if it was
   * stopped on purpose) or Failed with the reason.
   */
  async reattachAll(): Promise<GuestStatus[]> {
    this.assertOpen();
    let entries: string[];
    try {
      entries = await readdir(this.options.stateRoot);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    for (const name of entries.sort()) {
      if (this.guests.has(name)) continue;
      const paths = guestPaths(this.options.stateRoot, name);
      const spec = await readJson<GuestDefinition>(paths.spec);
      if (spec === undefined || spec.name !== name) continue;
      const launch = await readJson<LaunchRecord>(paths.launch);
      const guest: SupervisedGuest = {
        spec,
        paths,
        status: {
          name,
          uuid: spec.uuid,
          phase: 'Starting',
          accelerator: launch?.accel ?? this.options.accel,
          spec,
          ...(launch ? { startedAt: launch.startedAt, nics: launch.nics } : {}),
        },
        lock: Promise.resolve(),
      };
      this.guests.set(name, guest);
      await this.serialise(guest, () => this.reattach(guest));
    }
    return this.list();
  }

  /** Detaches from every guest (closes QMP, stops watching) and leaves the QEMU processes running. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.guests.values()].map((guest) => guest.lock));
    for (const guest of this.guests.values()) {
      const run = guest.run;
      if (run === undefined) continue;
      run.ended = true;
      clearInterval(run.timer);
      run.qmp?.close();
    }
    this.guests.clear();
  }

  private async launch(guest: SupervisedGuest, incoming: boolean): Promise<GuestStatus> {
    const { paths, spec } = guest;
    const run = this.newRun();
    let child: ChildProcess;
    try {
      for (const stale of [
        paths.pid,
        paths.exitStatus,
        paths.fenced,
        paths.qmp,
        paths.agent,
        paths.consoleSocket,
        paths.status,
      ]) {
        await rm(stale, { force: true });
      }
      const nics = await this.options.network.attach(spec.name, spec.nics.length);
      const launch: LaunchRecord = {
        accel: this.options.accel,
        incoming,
        nics,
        startedAt: new Date().toISOString(),
      };
      await writeFile(paths.launch, `${JSON.stringify(launch)}\n`);
      const argv = buildQemuArgv(spec, {
        stateRoot: this.options.stateRoot,
        accel: launch.accel,
        incoming,
        nics,
        user: this.options.qemuUser,
      });
      guest.run = run;
      this.setStatus(guest, {
        phase: 'Starting',
        accelerator: launch.accel,
        startedAt: launch.startedAt,
        nics,
        pid: undefined,
        reason: undefined,
        message: undefined,
      });
      const cgroups = await this.createCgroups(spec.name);
      child = spawnDetachedQemu(this.qemuBinary, argv, paths, cgroups);
    } catch (err) {
      // No QEMU runs: without this the guest would stay Starting for good, holding its resources and taps.
      throw await this.failLaunch(guest, run, `QEMU could not be launched: ${errorText(err)}`);
    }
    let shimExited = false;
    let shimExitCode: number | null = null;
    const shimExit = new Promise<void>((resolve) => {
      child.on('exit', (code) => {
        shimExited = true;
        shimExitCode = code;
        resolve();
        void this.onMaybeExited(guest, run);
      });
      child.on('error', () => {
        shimExited = true;
        resolve();
      });
    });

    // QEMU creates the socket early and answers once initialised; until then connecting fails in several ways
    // (ENOENT, ECONNREFUSED, a reset when QEMU dies during start-up), so retry until it answers or exits.
    const deadline = Date.now() + this.startTimeoutMs;
    let lastError: unknown;
    while (!shimExited && Date.now() < deadline) {
      try {
        const qmp = await QmpClient.connect(paths.qmp, {
          handshakeTimeoutMs: Math.max(1, deadline - Date.now()),
        });
        const pid = await readPid(paths.pid);
        if (pid === undefined) {
          qmp.close();
          throw new Error('QEMU answered on QMP but wrote no pidfile');
        }
        await this.attach(guest, run, qmp, pid);
        return { ...guest.status };
      } catch (err) {
        lastError = err;
        await sleep(25);
      }
    }
    // QEMU died between answering QMP and reporting its state: the exit handler has already said why.
    if (run.ended) throw new GuestStartError(spec.name, guest.status.message ?? 'QEMU exited');
    // QEMU did not come up: make sure no half-started process survives, then report why. Ended first, so that
    // the exit handlers do not report this run while it is being cleaned up.
    run.ended = true;
    clearInterval(run.timer);
    run.qmp?.close();
    const timedOut = !shimExited;
    if (timedOut) {
      await killGuestQemusUnder(paths.dir, KILL_TIMEOUT_MS);
      await within(shimExit, KILL_TIMEOUT_MS, undefined);
      if (!shimExited) child.kill('SIGKILL');
    }
    const qemuLog = await tailLines(paths.qemuLog, 5);
    const exitStatus = await readExitStatus(paths.exitStatus);
    const logTail = qemuLog ? `: ${qemuLog}` : '';
    // The shim exits with CGROUP_JOIN_FAILED before it starts QEMU, so no exit status is written then.
    const cgroupJoinFailed =
      this.options.cgroupRoots !== undefined &&
      exitStatus === undefined &&
      shimExitCode === CGROUP_JOIN_FAILED;
    const detail = timedOut
      ? `no QMP answer within ${this.startTimeoutMs} ms (${String(lastError)})${logTail}`
      : cgroupJoinFailed
        ? `QEMU was not started: the launch shim could not join the guest cgroups ${guestCgroupDirs(this.options.cgroupRoots!, spec.name).join(', ')}${logTail}`
        : `QEMU ${describeExitStatus(exitStatus)}${logTail}`;
    throw await this.failLaunch(guest, run, detail);
  }

  /** The guest's cgroups, created ([] without cgroup roots). */
  private async createCgroups(name: string): Promise<string[]> {
    const dirs = guestCgroupDirs(this.options.cgroupRoots ?? [], name);
    for (const dir of dirs) {
      try {
        await createGuestCgroup(dir);
      } catch (err) {
        throw new Error(`cannot create the guest cgroup ${dir}: ${errorText(err)}`);
      }
    }
    return dirs;
  }

  /** Removes a deleted guest's cgroups; one that stays busy is reported, not fatal (the delete must go on). */
  private async removeCgroups(name: string): Promise<void> {
    for (const dir of guestCgroupDirs(this.options.cgroupRoots ?? [], name)) {
      const err = await removeGuestCgroup(dir);
      if (err !== undefined)
        this.options.warn?.(`guest ${name}: its cgroup ${dir} was left behind: ${err.message}`);
    }
  }

  /** Reports a launch that left no QEMU running as Failed (LaunchFailed) and releases the NICs' host side. */
  private async failLaunch(guest: SupervisedGuest, run: Run, detail: string): Promise<GuestStartError> {
    run.ended = true;
    let message = detail;
    try {
      await this.options.network.detach(guest.spec.name, guest.spec.nics.length);
    } catch (err) {
      message += `; releasing its NICs failed too: ${errorText(err)}`;
    }
    await this.finish(guest, 'Failed', { reason: 'LaunchFailed', message });
    run.markExited();
    return new GuestStartError(guest.spec.name, message);
  }

  private async reattach(guest: SupervisedGuest): Promise<GuestStatus> {
    const { paths } = guest;
    const pid = await liveQemuPid(paths);
    if (pid !== undefined) {
      const run = this.newRun();
      guest.run = run;
      try {
        await this.attach(guest, run, await QmpClient.connect(paths.qmp), pid);
      } catch (err) {
        run.ended = true;
        clearInterval(run.timer);
        run.qmp?.close();
        // Nothing will report this run's exit: delete() must not wait for it.
        run.markExited();
        this.setStatus(guest, {
          phase: 'Failed',
          pid,
          reason: 'QmpUnreachable',
          message: `QEMU (pid ${pid}) is alive but its QMP socket does not answer: ${String(err)}`,
        });
      }
      return { ...guest.status };
    }
    const saved = await readJson<Pick<GuestStatus, 'phase' | 'reason' | 'message'>>(paths.status);
    if (saved !== undefined && (saved.phase === 'Stopped' || saved.phase === 'Failed')) {
      this.setStatus(guest, { phase: saved.phase, reason: saved.reason, message: saved.message });
      return { ...guest.status };
    }
    const exitStatus = await readExitStatus(paths.exitStatus);
    const fenced = await fencedOutcome(paths, exitStatus);
    if (fenced !== undefined) {
      await this.finish(guest, 'Failed', fenced);
      return { ...guest.status };
    }
    await this.finish(guest, 'Failed', {
      reason: exitReason(exitStatus),
      message: await this.failureMessage(
        guest,
        `QEMU ${describeExitStatus(exitStatus)} while the daemon was away`,
      ),
    });
    return { ...guest.status };
  }

  /** Wires a connected QMP session and its pid into the guest and reads the initial run state. */
  private async attach(guest: SupervisedGuest, run: Run, qmp: QmpClient, pid: number): Promise<void> {
    clearInterval(run.timer);
    run.qmp = qmp;
    run.pid = pid;
    qmp.on('event', (event) => this.onQmpEvent(guest, run, event));
    qmp.on('close', () => void this.onMaybeExited(guest, run));
    run.timer = setInterval(() => void this.onMaybeExited(guest, run), this.pollIntervalMs);
    run.timer.unref();
    const { status } = await qmp.queryStatus();
    this.setStatus(guest, { phase: phaseOf(status), pid });
  }

  private onQmpEvent(guest: SupervisedGuest, run: Run, event: QmpEvent): void {
    if (run.ended || guest.run !== run) return;
    if (event.event === 'SHUTDOWN') {
      run.shutdownReason = typeof event.data?.reason === 'string' ? event.data.reason : 'unknown';
    } else if (event.event === 'STOP' && guest.status.phase === 'Running') {
      this.setStatus(guest, { phase: 'Paused' });
    } else if (event.event === 'RESUME' && guest.status.phase !== 'Stopping') {
      this.setStatus(guest, { phase: 'Running' });
    }
  }

  /** Called on QMP close, shim exit and every poll tick; concludes the run once QEMU is really gone. */
  private async onMaybeExited(guest: SupervisedGuest, run: Run): Promise<void> {
    if (run.ended || run.pid === undefined) return;
    if (await isQemuOfGuest(run.pid, guest.paths)) {
      // QMP closed but the process is still exiting: look again soon rather than at the next slow tick.
      if (run.qmp?.closed === true) setTimeout(() => void this.onMaybeExited(guest, run), 50).unref();
      return;
    }
    if (run.ended) return;
    run.ended = true;
    clearInterval(run.timer);
    run.qmp?.close();
    // The shim writes the status right after QEMU is reaped; give it a moment.
    let exitStatus = await readExitStatus(guest.paths.exitStatus);
    for (let i = 0; i < 40 && exitStatus === undefined; i++) {
      await sleep(25);
      exitStatus = await readExitStatus(guest.paths.exitStatus);
    }
    const exit = describeExitStatus(exitStatus);
    const fenced = await fencedOutcome(guest.paths, exitStatus);
    if (fenced !== undefined) {
      await this.finish(guest, 'Failed', fenced);
    } else if (run.stopRequested && run.stopFailure !== undefined) {
      await this.finish(guest, 'Failed', {
        reason: run.stopFailure.reason,
        message: `${run.stopFailure.message}; QEMU ${exit}`,
      });
    } else if (run.stopRequested && run.stopOutcome !== undefined) {
      await this.finish(guest, 'Stopped', run.stopOutcome);
    } else if (run.shutdownReason === 'guest-shutdown') {
      await this.finish(guest, 'Stopped', {
        reason: 'GuestShutdown',
        message: `the guest powered off; QEMU ${exit}`,
      });
    } else if (run.shutdownReason === 'host-qmp-quit') {
      await this.finish(guest, 'Stopped', {
        reason: 'Quit',
        message: `QEMU quit on a QMP command of another client; QEMU ${exit}`,
      });
    } else {
      const after = run.shutdownReason === undefined ? '' : ` after SHUTDOWN (${run.shutdownReason})`;
      await this.finish(guest, 'Failed', {
        reason: exitReason(exitStatus),
        message: await this.failureMessage(guest, `QEMU ${exit}${after}`),
      });
    }
    run.markExited();
  }

  private async stopRun(guest: SupervisedGuest, timeoutMs: number): Promise<GuestStatus> {
    const run = guest.run;
    if (run === undefined || run.ended || run.qmp === undefined || run.pid === undefined) {
      return { ...guest.status };
    }
    run.stopRequested = true;
    const wasRunning = guest.status.phase === 'Running';
    this.setStatus(guest, { phase: 'Stopping' });
    const exitedWithin = (ms: number): Promise<boolean> =>
      within(
        run.exited.then(() => true),
        ms,
        false,
      );
    // Each step first records what its success would mean: the exit handler reports it as the Stopped outcome.
    // A QEMU that does not answer at all (hung, SIGSTOPped) gets no more time than one that answers.
    if (wasRunning) {
      run.stopOutcome = { reason: 'PoweredOff', message: 'the guest powered off' };
      const deadline = Date.now() + timeoutMs;
      const pressed = run.qmp.systemPowerdown().then(
        () => true,
        () => false,
      );
      if ((await within(pressed, timeoutMs, false)) && (await exitedWithin(deadline - Date.now()))) {
        return { ...guest.status };
      }
    }
    run.stopOutcome = wasRunning
      ? {
          reason: 'PowerOffTimedOut',
          message: `the guest did not power off within ${timeoutMs} ms; QEMU quit`,
        }
      : { reason: 'Quit', message: 'QEMU quit' };
    void run.qmp.quit().catch(() => undefined);
    if (await exitedWithin(QUIT_TIMEOUT_MS)) return { ...guest.status };
    run.stopOutcome = { reason: 'Killed', message: 'QEMU did not quit and was killed' };
    if (await isQemuOfGuest(run.pid, guest.paths)) {
      try {
        process.kill(run.pid, 'SIGKILL');
      } catch {
        // It exited after all.
      }
    }
    void this.onMaybeExited(guest, run);
    if (!(await exitedWithin(KILL_TIMEOUT_MS))) {
      throw new Error(`QEMU of guest ${guest.spec.name} (pid ${run.pid}) did not die`);
    }
    return { ...guest.status };
  }

  /**
   * A failure's account: what happened, QEMU's own last words and the guest's last console lines. The guest
   * writes its console (and can make QEMU log), so both are bounded here (guest-text.ts): the message stays
   * under 2 KiB and printable, whatever the guest printed.
   */
  private async failureMessage(guest: SupervisedGuest, what: string): Promise<string> {
    const qemuLog = boundGuestLines(
      await tailLines(guest.paths.qemuLog, QEMU_LOG_TAIL_LIMITS.maxLines),
      QEMU_LOG_TAIL_LIMITS,
    );
    const consoleTail = boundGuestLines(await tailLines(guest.paths.console, this.consoleTailLines), {
      ...CONSOLE_TAIL_LIMITS,
      maxLines: this.consoleTailLines,
    });
    return [
      what,
      ...(qemuLog ? [`QEMU log:\n${qemuLog}`] : []),
      consoleTail ? `last console lines:\n${consoleTail}` : 'the console log is empty',
    ].join('; ');
  }

  private async finish(guest: SupervisedGuest, phase: GuestPhase, outcome: Outcome): Promise<void> {
    this.setStatus(guest, { phase, pid: undefined, ...outcome });
    await writeStatus(guest);
  }

  private newRun(): Run {
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    return { stopRequested: false, ended: false, exited, markExited };
  }

  private setStatus(guest: SupervisedGuest, change: Partial<GuestStatus>): void {
    const next: GuestStatus = { ...guest.status, ...change };
    for (const key of Object.keys(next) as (keyof GuestStatus)[])
      if (next[key] === undefined) delete next[key];
    guest.status = next;
    if (!this.closed) this.emit('status', { ...next });
  }

  private serialise<T>(guest: SupervisedGuest, op: () => Promise<T>): Promise<T> {
    const result = guest.lock.then(op, op);
    guest.lock = result.catch(() => undefined);
    return result;
  }

  private mustGet(name: string): SupervisedGuest {
    this.assertOpen();
    const guest = this.guests.get(name);
    if (guest === undefined) throw new GuestNotFoundError(name);
    return guest;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('guest supervisor is closed');
  }
}

/** The live QEMU of a guest: from its pidfile, or by scanning /proc when QEMU never wrote one. */
async function liveQemuPid(paths: GuestPaths): Promise<number | undefined> {
  const pid = await readPid(paths.pid);
  if (pid !== undefined && (await isQemuOfGuest(pid, paths))) return pid;
  return (await findGuestQemus(paths.dir))[0];
}

/** The outcome of a QEMU the node's fence watchdog killed (it left its reason in the guest dir), if it did. */
async function fencedOutcome(
  paths: GuestPaths,
  exitStatus: number | undefined,
): Promise<Outcome | undefined> {
  let why: string;
  try {
    why = (await readFile(paths.fenced, 'utf8')).trim();
  } catch {
    return undefined;
  }
  return {
    reason: 'Fenced',
    message: `${boundGuestLines(why, QEMU_LOG_TAIL_LIMITS) || 'fenced'}; QEMU ${describeExitStatus(exitStatus)}`,
  };
}

/** `promise`'s value, or `fallback` when it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), Math.max(0, ms))));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function phaseOf(state: QmpRunState): GuestPhase {
  return state === 'running' ? 'Running' : 'Paused';
}

async function writeStatus(guest: SupervisedGuest): Promise<void> {
  const { phase, reason, message } = guest.status;
  await writeFile(guest.paths.status, `${JSON.stringify({ phase, reason, message })}\n`);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
