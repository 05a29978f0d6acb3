// HOLLOW DAEMONS: bench:scale only (issue 14 item 6). Nothing else in Tern may fake a daemon: tests use real daemons
// and real QEMU. A hollow daemon's guests are records in memory, never processes.
//
// The guest table of one hollow daemon, in the shape the daemon's control service expects of its supervisor
// (hypervisor-node/src/control/service.ts, GuestRuntime): create, start, stop and delete change a record and
// emit the same 'status' / 'deleted' events, so the real GuestControl service (WatchGuests included) runs on it.
import { EventEmitter } from 'node:events';
import type { GuestDefinition, GuestPhase, GuestStatus } from '../../../hypervisor-node/src/model/guest.js';
import type { GuestRuntime } from '../../../hypervisor-node/src/control/service.js';
import type { SupervisorEvents } from '../../../hypervisor-node/src/runtime/supervisor.js';
import {
  GuestExistsError,
  GuestNotFoundError,
  GuestPhaseError,
} from '../../../hypervisor-node/src/runtime/supervisor.js';

/** Hollow guests have no QEMU; this pid is reported for every live one (never signalled by anything). */
const HOLLOW_PID = 1;

export class HollowGuests extends EventEmitter<SupervisorEvents> {
  private readonly guests = new Map<string, GuestStatus>();

  /** A new guest: Running at once, or Paused for an incoming migration's target (as the supervisor reports it). */
  async create(input: unknown, options: { incoming?: boolean } = {}): Promise<GuestStatus> {
    const spec = input as GuestDefinition;
    if (this.guests.has(spec.name)) throw new GuestExistsError(spec.name);
    const status: GuestStatus = {
      name: spec.name,
      uuid: spec.uuid,
      phase: options.incoming === true ? 'Paused' : 'Running',
      pid: HOLLOW_PID,
      startedAt: new Date().toISOString(),
      accelerator: 'tcg',
      nics: [],
      spec,
    };
    this.guests.set(spec.name, status);
    this.emit('status', { ...status });
    return { ...status };
  }

  async start(name: string): Promise<GuestStatus> {
    const status = this.mustGet(name);
    if (status.phase !== 'Stopped' && status.phase !== 'Failed')
      throw new GuestPhaseError(
        `guest ${JSON.stringify(name)} is ${status.phase}; only a Stopped or Failed guest can be started`,
      );
    return this.setPhase(name, 'Running');
  }

  async stop(name: string): Promise<GuestStatus> {
    this.mustGet(name);
    return this.setPhase(name, 'Stopped', 'PoweredOff');
  }

  async delete(name: string): Promise<void> {
    this.mustGet(name);
    this.guests.delete(name);
    this.emit('deleted', name);
  }

  get(name: string): GuestStatus | undefined {
    const status = this.guests.get(name);
    return status === undefined ? undefined : { ...status };
  }

  list(): GuestStatus[] {
    return [...this.guests.values()].map((status) => ({ ...status }));
  }

  /** Moves a guest to `phase` (a migration pauses and resumes guests) and emits the change. */
  setPhase(name: string, phase: GuestPhase, reason?: GuestStatus['reason']): GuestStatus {
    const status = this.mustGet(name);
    const live = phase !== 'Stopped' && phase !== 'Failed';
    const next: GuestStatus = { ...status, phase };
    if (live) next.pid = HOLLOW_PID;
    else delete next.pid;
    if (reason !== undefined) next.reason = reason;
    else delete next.reason;
    this.guests.set(name, next);
    this.emit('status', { ...next });
    return { ...next };
  }

  /**
   * This table as the control service's GuestRuntime. Only the type of on()/off() differs (they return the
   * GuestSupervisor itself, for chaining, which the service never uses).
   */
  asRuntime(): GuestRuntime {
    return this as unknown as GuestRuntime;
  }

  private mustGet(name: string): GuestStatus {
    const status = this.guests.get(name);
    if (status === undefined) throw new GuestNotFoundError(name);
    return status;
  }
}
