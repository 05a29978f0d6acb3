// The plugin's commands, on a KubeClient. Inputs arrive validated (program.ts); API errors propagate as
// KubeApiError and are printed verbatim by the entry point.
import type { HypervisorNode, Migration, MigrationSettings, VirtualMachine } from '../crds/index.js';
import { API_VERSION, HypervisorNodes, Migrations, VirtualMachines } from '../crds/index.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError, isNotFound } from '../kube/errors.js';
import { DrainReporter } from './drain.js';
import type { DrainSnapshot } from './drain.js';
import { formatDuration } from './format.js';
import { USER_AGENT, activeMigrations } from './kube.js';
import { migrationRef, renderLiveLine, renderQuiesce, renderSwitchover } from './render.js';
import type { Outcome } from './render.js';
import { MigrationReporter } from './reporter.js';
import type { ReporterOutput } from './reporter.js';

/** A failure that is not the apiserver's: printed as "error: <message>", exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

export interface CommandContext {
  client: KubeClient;
  namespace: string;
  out: ReporterOutput;
  /** Delay between two reads of a followed Migration. */
  pollIntervalMs: number;
}

export interface MigrateRequest {
  vmName: string;
  targetNode?: string;
  bandwidth?: string;
  maxDowntimeMs?: number;
  wait: boolean;
}

const WRITE_OPTIONS = { fieldManager: USER_AGENT };

export function buildMigration(namespace: string, request: MigrateRequest): Migration {
  const overrides: MigrationSettings = {};
  if (request.bandwidth !== undefined) overrides.bandwidth = request.bandwidth;
  if (request.maxDowntimeMs !== undefined) overrides.maxDowntimeMs = request.maxDowntimeMs;
  return {
    apiVersion: API_VERSION,
    kind: 'Migration',
    metadata: { generateName: `${request.vmName}-`, namespace },
    spec: {
      vmName: request.vmName,
      ...(request.targetNode !== undefined && { targetNode: request.targetNode }),
      ...(Object.keys(overrides).length > 0 && { overrides }),
    },
  };
}

/** Returns the process exit code: 0 once created (or, with --wait, once Succeeded), 1 when it did not succeed. */
export async function migrate(ctx: CommandContext, request: MigrateRequest): Promise<number> {
  // Read first: "VM not found" is clearer now than a Failed Migration later.
  await ctx.client.get<VirtualMachine>(VirtualMachines, request.vmName, ctx.namespace);
  const created = await ctx.client.create(Migrations, buildMigration(ctx.namespace, request), WRITE_OPTIONS);
  const target = request.targetNode ? ` to ${request.targetNode}` : '';
  ctx.out.write(
    `migration.tern.dev/${created.metadata.name ?? ''} created: moving ${request.vmName}${target}\n`,
  );
  if (!request.wait) return 0;
  const outcome = await follow(ctx, created);
  return outcome.succeeded ? 0 : 1;
}

const TRANSIENT_RETRY_MS = 10_000;

/** An error worth retrying while following: a cut connection, a timeout, or an overloaded apiserver. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof KubeApiError)) return err instanceof Error && 'code' in err;
  return err.statusCode === 0 || err.statusCode === 429 || err.statusCode >= 500;
}

/** Polls the Migration (at most 1/pollIntervalMs) until it reaches a terminal phase, rendering each snapshot. */
export async function follow(ctx: CommandContext, migration: Migration): Promise<Outcome> {
  const reporter = new MigrationReporter(ctx.out);
  const name = migration.metadata.name ?? '';
  let current = migration;
  let failingSince: number | undefined;
  for (;;) {
    const outcome = reporter.update(current);
    if (outcome) return outcome;
    await new Promise((resolve) => setTimeout(resolve, ctx.pollIntervalMs));
    try {
      current = await ctx.client.get<Migration>(Migrations, name, ctx.namespace);
      failingSince = undefined;
    } catch (err) {
      reporter.close();
      if (isNotFound(err)) {
        throw new CliError(`migration ${migrationRef(migration)} was deleted before it finished (cancelled)`);
      }
      failingSince ??= Date.now();
      if (!isTransient(err) || Date.now() - failingSince > TRANSIENT_RETRY_MS) throw err;
    }
  }
}

export async function cancel(ctx: CommandContext, vmName: string): Promise<number> {
  let vm: VirtualMachine | undefined;
  try {
    vm = await ctx.client.get<VirtualMachine>(VirtualMachines, vmName, ctx.namespace);
  } catch (err) {
    // A Migration can outlive its VM; it is still worth cancelling.
    if (!isNotFound(err)) throw err;
  }
  const active = await activeMigrations(ctx.client, ctx.namespace, vmName, vm);
  if (active.length === 0) {
    throw new CliError(`no active migration of ${vmName} in namespace ${ctx.namespace}`);
  }
  for (const migration of active) {
    const name = migration.metadata.name ?? '';
    try {
      await ctx.client.delete(Migrations, name, ctx.namespace);
    } catch (err) {
      // It finished and was cleaned up in the meantime: nothing left to cancel.
      if (!isNotFound(err)) throw err;
    }
    ctx.out.write(`migration.tern.dev/${name} deleted (cancelled)\n`);
  }
  return 0;
}

function describeMigration(migration: Migration): string {
  const status = migration.status;
  const route = `${status?.sourceNode ?? '?'} → ${status?.targetNode ?? migration.spec.targetNode ?? '?'}`;
  return `${migration.metadata.name ?? ''} (${route}) ${renderLiveLine(status, false)}`;
}

/** The VM's last Migration by name; undefined once it was removed. */
async function lastMigrationRecord(ctx: CommandContext, name: string): Promise<Migration | undefined> {
  try {
    return await ctx.client.get<Migration>(Migrations, name, ctx.namespace);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function status(ctx: CommandContext, vmName: string): Promise<number> {
  const vm = await ctx.client.get<VirtualMachine>(VirtualMachines, vmName, ctx.namespace);
  const s = vm.status ?? {};
  const active = await activeMigrations(ctx.client, ctx.namespace, vmName, vm);
  const lines = [
    `VirtualMachine ${ctx.namespace}/${vmName}`,
    `  Phase:            ${s.phase ?? '<none>'}`,
    `  Node:             ${s.node ?? '<none>'}`,
    `  Epoch:            ${s.epoch ?? '<none>'}`,
  ];
  if (s.guestAddress) lines.push(`  Address:          ${s.guestAddress}`);
  lines.push(`  Active migration: ${active.length ? active.map(describeMigration).join('; ') : '<none>'}`);
  const last = s.lastMigration;
  if (last) {
    const downtime = last.downtimeMs === undefined ? '' : `, downtime ${formatDuration(last.downtimeMs)}`;
    lines.push(
      `  Last migration:   ${last.name} ${last.result} (${last.sourceNode} → ${last.targetNode ?? '?'}${downtime}, ` +
        `finished ${last.finishedAt})`,
    );
    // The Migration itself holds the Quiescing report and the switchover timeline; it may have been removed
    // (bounded history).
    const record = (await lastMigrationRecord(ctx, last.name))?.status;
    const quiesce = renderQuiesce(record?.quiesce);
    if (quiesce !== undefined) lines.push(`  Last quiesce:     ${quiesce}`);
    lines.push(...renderSwitchover(record?.switchover, '  Last switchover:  ', '                    '));
  } else {
    lines.push('  Last migration:   <none>');
  }
  ctx.out.write(`${lines.join('\n')}\n`);
  return 0;
}

export interface DrainRequest {
  nodeName: string;
  /** Return once the node is marked (false), or wait until no VM is left on it (true). */
  wait: boolean;
  /** Give up waiting after this long (0: wait as long as it takes, like `kubectl drain`). */
  timeoutMs: number;
}

/** A drain reads three objects each time: a quarter of the Migration poll rate (1 s by default). */
const DRAIN_POLL_FACTOR = 4;

async function drainSnapshot(ctx: CommandContext, nodeName: string): Promise<DrainSnapshot> {
  const node = await ctx.client.get<HypervisorNode>(HypervisorNodes, nodeName);
  // Migrations before VMs: a VM read after its Migration finished already shows where it went.
  const migrations = await ctx.client.list<Migration>(Migrations);
  const vms = await ctx.client.list<VirtualMachine>(VirtualMachines);
  return { node, vms: vms.items, migrations: migrations.items };
}

/** Returns the exit code: 0 once drained (or marked, with wait false); throws CliError when it cannot finish. */
export async function drain(ctx: CommandContext, request: DrainRequest): Promise<number> {
  const { nodeName } = request;
  const patched = await ctx.client.patch<HypervisorNode>(
    HypervisorNodes,
    nodeName,
    undefined,
    {
      type: 'merge',
      body: { spec: { unschedulable: true, drain: true } },
    },
    WRITE_OPTIONS,
  );
  if (!request.wait) {
    ctx.out.write(
      `hypervisornode.tern.dev/${nodeName} drained: unschedulable, and the operator moves its VMs ` +
        '(evictionStrategy LiveMigrate) to other nodes\n',
    );
    return 0;
  }
  ctx.out.write(`hypervisornode.tern.dev/${nodeName} cordoned\n`);
  const reporter = new DrainReporter(
    nodeName,
    (line) => ctx.out.write(`${line}\n`),
    patched.metadata.generation ?? 0,
  );
  const deadline = request.timeoutMs > 0 ? Date.now() + request.timeoutMs : Infinity;
  let failingSince: number | undefined;
  let last: DrainSnapshot | undefined;
  for (;;) {
    try {
      last = await drainSnapshot(ctx, nodeName);
      failingSince = undefined;
    } catch (err) {
      failingSince ??= Date.now();
      if (!isTransient(err) || Date.now() - failingSince > TRANSIENT_RETRY_MS) throw err;
    }
    if (last) {
      const verdict = reporter.update(last);
      if (verdict?.kind === 'drained') {
        const moved = verdict.moved === 1 ? '1 VM moved' : `${verdict.moved} VMs moved`;
        ctx.out.write(`hypervisornode.tern.dev/${nodeName} drained (${moved})\n`);
        return 0;
      }
      if (verdict?.kind === 'blocked') {
        throw new CliError(
          `cannot drain ${nodeName}: ${verdict.message}; still on the node: ${reporter.remaining(last)} ` +
            '(the node stays cordoned; uncordon it, or move or stop these VMs and drain again)',
        );
      }
    }
    if (Date.now() >= deadline) {
      const left = last ? reporter.remaining(last) : 'unknown (the node could not be read)';
      throw new CliError(
        `timed out after ${formatDuration(request.timeoutMs)} waiting for ${nodeName} to drain; ` +
          `still on the node: ${left} (the node stays cordoned and the operator keeps moving its VMs)`,
      );
    }
    const pause = Math.min(ctx.pollIntervalMs * DRAIN_POLL_FACTOR, Math.max(0, deadline - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

export async function uncordon(ctx: CommandContext, nodeName: string): Promise<number> {
  // null removes the fields (merge patch): the node is back to the default, schedulable and not draining.
  await ctx.client.patch<HypervisorNode>(
    HypervisorNodes,
    nodeName,
    undefined,
    {
      type: 'merge',
      body: { spec: { unschedulable: null, drain: null } },
    },
    WRITE_OPTIONS,
  );
  ctx.out.write(`hypervisornode.tern.dev/${nodeName} uncordoned\n`);
  return 0;
}
