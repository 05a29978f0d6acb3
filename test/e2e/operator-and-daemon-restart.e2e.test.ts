// The operator and one hypervisor-node daemon SIGKILLed together while a live migration is Copying, on the local
// cluster (network namespaces). The daemons carry no migration bytes, so QEMU's stream goes on without them; what
// each restarted daemon does with the migration it finds (hypervisor-node/src/migration/README.md, "Daemon
// restarts") decides the outcome, and the new operator (after the old leader Lease expires) finishes it:
// - the source daemon's successor cancels a migration that is still copying: Failed (SourceFailed), the guest runs
//   on in the same source QEMU;
// - the target daemon's successor adopts the incoming QEMU: the migration completes and the guest moves.
// Either way nothing is lost: one QEMU runs the guest, on the node its VM records, with its memory intact.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  migrationInPhase,
  migrationsOf,
  runningVm,
  smallVm,
  e2eClusterForFile,
  startVmsOnNodeA,
  TERMINAL_MIGRATION_PHASES,
} from './e2e-cluster.js';

const cluster = e2eClusterForFile();

/**
 * Polls both daemons' view of the guest every 50 ms until stopped; stop() returns how often each combination of
 * states was seen. The destination node-b is asked first, so the move itself never shows as running twice. (While
 * a daemon is down its QEMUs are not observable here; nothing but a daemon resumes them.)
 */
function watchRunStates(vm: string): () => Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let polling = true;
  const loop = (async () => {
    while (polling) {
      const phases = await cluster.guestPhases(vm, ['node-b', 'node-a']);
      const key = Object.entries(phases)
        .map(([node, phase]) => `${node}=${phase.replace('GUEST_PHASE_', '')}`)
        .join(' ');
      seen.set(key, (seen.get(key) ?? 0) + 1);
      await sleep(50);
    }
  })();
  return async () => {
    polling = false;
    await loop;
    return seen;
  };
}

const runningOn = (states: Map<string, number>) =>
  [...states.keys()].map((key) => key.match(/=RUNNING/g)?.length ?? 0);

/** `kubectl tern migrate` to node-b; returns the Migration's name. */
async function migrateToNodeB(vm: string, ...options: string[]): Promise<string> {
  const out = await cluster.kubectlTern(['migrate', vm, '--to', 'node-b', ...options]);
  const name = /migration\.tern\.dev\/(\S+) created/.exec(out)?.[1];
  expect(name).toBeDefined();
  return name!;
}

/** SIGKILLs the operator and `node`'s daemon together, then starts both again; returns how long they were down. */
async function killTogether(node: string): Promise<number> {
  const killedAt = Date.now();
  await Promise.all([cluster.stopOperator('SIGKILL'), cluster.stopDaemon(node, 'SIGKILL')]);
  await Promise.all([cluster.startOperator(), cluster.startDaemon(node)]);
  return Date.now() - killedAt;
}

async function expectOneVerifiedGuest(vm: string, node: string, other: string): Promise<void> {
  expect(await cluster.qemuPids(vm)).toEqual({ [node]: [expect.any(Number)], [other]: [] });
  const verify = await cluster.verify(node, vm);
  expect(verify.detail).toMatch(/^OK /);
  expect(verify.ok).toBe(true);
}

async function expectNoMigrationRunning(vm: string): Promise<void> {
  const phases = (await migrationsOf(cluster, vm)).map(({ status }) => status?.phase ?? 'none');
  expect(phases.filter((phase) => !TERMINAL_MIGRATION_PHASES.includes(phase))).toEqual([]);
}

// A 128 MiB working set dirtied at 500 pages/s behind an 8 MiB/s bandwidth limit: the copy takes ~16 s, long
// enough to kill and restart a daemon inside it.
const BUSY = { dirtyPps: 500, wssMib: 128, bandwidth: ['--bandwidth', '8Mi'] };

test('operator and source daemon killed during Copying: the migration fails, the guest runs on in its source QEMU', async () => {
  const [vm] = await startVmsOnNodeA(cluster, [await smallVm('busy-src', BUSY.dirtyPps, BUSY.wssMib)]);
  const [sourcePid] = (await cluster.qemuPids('busy-src'))['node-a']!;
  const stopWatch = watchRunStates('busy-src');
  const started = Date.now();
  const name = await migrateToNodeB('busy-src', ...BUSY.bandwidth);
  await migrationInPhase(cluster, 'busy-src', ['Copying'], { name });
  const downMs = await killTogether('node-a');

  const finished = await migrationInPhase(cluster, 'busy-src', TERMINAL_MIGRATION_PHASES, { name });
  console.log(
    `source kill: killed in Copying, down ${downMs} ms; ${finished.status?.phase} (${finished.status?.failureReason}: ` +
      `${finished.status?.message}) ${Date.now() - started} ms after the migrate`,
  );
  // The successor found QEMU still copying and cancelled it (OutgoingMigration.recover → SourceMigration.adopt).
  expect(finished.status).toMatchObject({
    phase: 'Failed',
    failureReason: 'SourceFailed',
    sourceNode: 'node-a',
    targetNode: 'node-b',
  });
  expect(finished.status!.message).toMatch(/^the source daemon restarted during the migration: cancelled/);
  const after = await runningVm(cluster, 'busy-src', 'node-a');
  expect(after.status!.epoch).toBe(vm!.status!.epoch);
  expect(after.status!.activeMigration).toBeUndefined();
  // The very QEMU the guest started in, and the target's incoming QEMU is gone.
  expect(await cluster.qemuPids('busy-src')).toEqual({ 'node-a': [sourcePid], 'node-b': [] });
  await expectOneVerifiedGuest('busy-src', 'node-a', 'node-b');
  await expectNoMigrationRunning('busy-src');
  const states = await stopWatch();
  console.log('source kill: run states seen', states);
  expect(Math.max(...runningOn(states))).toBe(1);

  // Not wedged: the next Migration of the VM moves it.
  const second = await migrateToNodeB('busy-src');
  expect(
    await migrationInPhase(cluster, 'busy-src', TERMINAL_MIGRATION_PHASES, { name: second }),
  ).toMatchObject({ status: { phase: 'Succeeded', sourceNode: 'node-a', targetNode: 'node-b' } });
  const moved = await runningVm(cluster, 'busy-src', 'node-b');
  expect(moved.status!.epoch).toBe(vm!.status!.epoch! + 1);
  await expectOneVerifiedGuest('busy-src', 'node-b', 'node-a');
  await expectNoMigrationRunning('busy-src');
  // Its busy guest would only slow the next scenario down.
  await cluster.kubectl(['delete', 'virtualmachine', 'busy-src', '--wait=false']);
}, 240_000);

test('operator and target daemon killed during Copying: the migration completes, the guest runs on the target only', async () => {
  const [vm] = await startVmsOnNodeA(cluster, [await smallVm('busy-tgt', BUSY.dirtyPps, BUSY.wssMib)]);
  const stopWatch = watchRunStates('busy-tgt');
  const started = Date.now();
  const name = await migrateToNodeB('busy-tgt', ...BUSY.bandwidth);
  await migrationInPhase(cluster, 'busy-tgt', ['Copying'], { name });
  const downMs = await killTogether('node-b');

  const finished = await migrationInPhase(cluster, 'busy-tgt', TERMINAL_MIGRATION_PHASES, { name });
  console.log(
    `target kill: killed in Copying, down ${downMs} ms; ${finished.status?.phase} (${finished.status?.message}) ` +
      `${Date.now() - started} ms after the migrate`,
  );
  // QEMU's stream needs no daemon; the target's successor adopts the loaded incoming QEMU, the new operator hands over.
  expect(finished.status).toMatchObject({ phase: 'Succeeded', sourceNode: 'node-a', targetNode: 'node-b' });
  expect(await migrationsOf(cluster, 'busy-tgt')).toHaveLength(1);
  const after = await runningVm(cluster, 'busy-tgt', 'node-b');
  expect(after.status!.epoch).toBe(vm!.status!.epoch! + 1);
  await expectOneVerifiedGuest('busy-tgt', 'node-b', 'node-a');
  await expectNoMigrationRunning('busy-tgt');
  const states = await stopWatch();
  console.log('target kill: run states seen', states);
  expect(Math.max(...runningOn(states))).toBe(1);
  // The watch saw the guest on both sides of the move.
  expect([...states.keys()].some((key) => key.includes('node-a=RUNNING'))).toBe(true);
  expect([...states.keys()].some((key) => key.includes('node-b=RUNNING'))).toBe(true);
}, 240_000);
