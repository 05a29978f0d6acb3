// `kubectl tern drain NODE` waiting like `kubectl drain`: from successive reads of the node, the VMs and the
// Migrations, one line per move of each VM (which VM, from → to, its Migration's phase, then the result), until
// no VM's ownership record names the node. Rendering is separate from reading so that it is unit-tested on
// scripted snapshots (drain.test.ts); commands.ts does the reads.
import { EVACUATION_NODE_LABEL, isTerminalMigrationPhase } from '../crds/index.js';
import type { HypervisorNode, Migration, VirtualMachine } from '../crds/index.js';
import { formatDuration } from './format.js';
import { totalTimeMs } from './render.js';

export interface DrainSnapshot {
  node: HypervisorNode;
  /** Every VirtualMachine of the cluster. */
  vms: readonly VirtualMachine[];
  /** Every Migration of the cluster. */
  migrations: readonly Migration[];
}

export type DrainVerdict =
  | { kind: 'drained'; moved: number }
  /** The operator gave up on a VM (evictionStrategy None, or failed too often): waiting would never end. */
  | { kind: 'blocked'; message: string };

const objectKey = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ''}/${name ?? ''}`;
const vmKeyOf = (m: Migration) => objectKey(m.metadata.namespace, m.spec.vmName);

/** The VMs whose ownership record names the node, as namespace/name. */
export function vmsOnNode(snapshot: DrainSnapshot): VirtualMachine[] {
  const node = snapshot.node.metadata.name;
  return snapshot.vms.filter((vm) => vm.status?.node === node);
}

function route(migration: Migration, nodeName: string): string {
  const status = migration.status;
  return `${status?.sourceNode ?? nodeName} → ${status?.targetNode ?? migration.spec.targetNode ?? '?'}`;
}

/** "default/vm01 moved: node-a → node-b in 2.31 s (downtime 41 ms)" or "… not moved: Failed (Timeout): …". */
function resultLine(migration: Migration, nodeName: string): string {
  const status = migration.status ?? {};
  const vm = vmKeyOf(migration);
  if (status.phase === 'Succeeded') {
    const total = totalTimeMs(migration);
    const downtime = status.downtime?.qemuMs;
    const took = total === undefined ? '' : ` in ${formatDuration(total)}`;
    const down = downtime === undefined ? '' : ` (downtime ${formatDuration(downtime)})`;
    return `${vm} moved: ${route(migration, nodeName)}${took}${down}`;
  }
  const reason = status.failureReason ? ` (${status.failureReason})` : '';
  const message = status.message ? `: ${status.message}` : '';
  return `${vm} not moved: migration ${status.phase ?? 'ended'}${reason}${message}`;
}

export class DrainReporter {
  /** Migration name → the last phase shown for it. */
  private readonly shown = new Map<string, string>();
  private moved = 0;

  constructor(
    private readonly nodeName: string,
    private readonly write: (line: string) => void,
    /** The node's generation once drain was set: an evacuation status older than that is not the answer. */
    private readonly drainGeneration: number,
  ) {}

  /** Whether the Migration moves a VM off this node (the evacuation's, or any that starts from here). */
  private concerns(migration: Migration, here: ReadonlySet<string>): boolean {
    return (
      migration.metadata.labels?.[EVACUATION_NODE_LABEL] === this.nodeName ||
      migration.status?.sourceNode === this.nodeName ||
      (here.has(vmKeyOf(migration)) && migration.status?.sourceNode === undefined)
    );
  }

  /**
   * Prints what changed since the last snapshot; returns a verdict once the node is empty (and the Migrations
   * that moved VMs off it have ended) or cannot be emptied.
   * A Migration that had finished before it was first seen is not shown unless the evacuation of this drain
   * created it (a move that began and ended between two reads).
   */
  update(snapshot: DrainSnapshot): DrainVerdict | undefined {
    const here = new Set(vmsOnNode(snapshot).map((vm) => objectKey(vm.metadata.namespace, vm.metadata.name)));
    const evacuation = snapshot.node.status?.evacuation;
    const since = Date.parse(evacuation?.startedAt ?? '');
    const sorted = [...snapshot.migrations].sort((a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
    );
    let moving = false;
    for (const migration of sorted) {
      if (!this.concerns(migration, here)) continue;
      const name = objectKey(migration.metadata.namespace, migration.metadata.name);
      const phase = migration.status?.phase ?? 'Pending';
      const terminal = isTerminalMigrationPhase(phase);
      if (!terminal) moving = true;
      const before = this.shown.get(name);
      if (before === phase) continue;
      if (before === undefined && terminal) {
        const ofThisDrain =
          migration.metadata.labels?.[EVACUATION_NODE_LABEL] === this.nodeName &&
          Date.parse(migration.metadata.creationTimestamp ?? '') >= since;
        this.shown.set(name, phase);
        if (!ofThisDrain) continue;
      }
      this.shown.set(name, phase);
      if (terminal) {
        if (phase === 'Succeeded') this.moved++;
        this.write(resultLine(migration, this.nodeName));
      } else {
        this.write(
          `${vmKeyOf(migration)}: ${route(migration, this.nodeName)}: ${phase} ` + `(migration ${name})`,
        );
      }
    }
    // The VM's record names the target at the hand-over, a moment before its Migration ends: wait for the result.
    if (here.size === 0 && !moving) return { kind: 'drained', moved: this.moved };
    const current = (snapshot.node.status?.observedGeneration ?? 0) >= this.drainGeneration;
    if (current && evacuation?.phase === 'Blocked') {
      return { kind: 'blocked', message: evacuation.message ?? 'no VM can be moved' };
    }
    return undefined;
  }

  /** "default/vm01 (migration default/vm01-evac-x: Copying), default/vm02 (evictionStrategy None)". */
  remaining(snapshot: DrainSnapshot): string {
    const active = new Map<string, string>();
    for (const migration of snapshot.migrations) {
      if (isTerminalMigrationPhase(migration.status?.phase)) continue;
      const name = objectKey(migration.metadata.namespace, migration.metadata.name);
      active.set(vmKeyOf(migration), `migration ${name}: ${migration.status?.phase ?? 'Pending'}`);
    }
    return vmsOnNode(snapshot)
      .map((vm) => {
        const key = objectKey(vm.metadata.namespace, vm.metadata.name);
        const why =
          active.get(key) ??
          ((vm.spec.evictionStrategy ?? 'LiveMigrate') === 'LiveMigrate'
            ? 'not moving'
            : `evictionStrategy ${vm.spec.evictionStrategy}`);
        return `${key} (${why})`;
      })
      .join(', ');
  }
}
