// `npm run test:faults [-- --fault F,… --phase P,… --trials N --logs DIR]`: the whole fault matrix (fault-matrix.ts) on one
// local cluster that it brings up and tears down itself, one trial of every cell before the next trial. Prints each
// cell as it ends and the table at the end, then `N passed, N failed`; exits 1 on any failure. Needs root (network
// namespaces) and the binaries of hack/setup.sh.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startE2eCluster, type E2eCluster } from '../e2e/e2e-cluster.js';
import {
  FAULTS,
  PHASES,
  cellApplies,
  closeMatrix,
  formatTable,
  prepareMatrix,
  restore,
  runCell,
  tableRow,
  type CellOptions,
  type CellResult,
  type Fault,
  type Phase,
} from './fault-matrix.js';

const { values } = parseArgs({
  options: {
    fault: { type: 'string', multiple: true },
    phase: { type: 'string', multiple: true },
    trials: { type: 'string', default: '2' },
    /** Where the cluster's logs (operator, daemons, apiserver) are copied before it is torn down. */
    logs: {
      type: 'string',
      default: `/tmp/tern-fault-matrix-${new Date().toISOString().replace(/[:.]/g, '')}`,
    },
  },
});

function pick<T extends string>(all: readonly T[], given: string[] | undefined, what: string): T[] {
  if (!given) return [...all];
  const wanted = given.flatMap((value) => value.split(',')).filter(Boolean);
  const unknown = wanted.filter((value) => !all.includes(value as T));
  if (unknown.length > 0) throw new Error(`unknown ${what} ${unknown.join(', ')}: one of ${all.join(', ')}`);
  return wanted as T[];
}

/**
 * Cells whose Migration is deleted while the fault is in (deleting a Migration always finishes), one per trial:
 * a target cut off while the source copies to it, and a source daemon that does not answer at the switchover.
 */
const DELETE_CELLS: [Fault, Phase][] = [
  ['cut-target-link', 'Copying'],
  ['stop-source-daemon', 'Switchover'],
];

const faults = pick<Fault>(FAULTS, values.fault, 'fault');
const phases = pick<Phase>(PHASES, values.phase, 'phase');
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials ${values.trials}: a positive integer`);

const log = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
const results: CellResult[] = [];
let cluster: E2eCluster | undefined;
let stopping = false;

async function teardown(): Promise<void> {
  if (cluster) {
    try {
      cpSync(join(cluster.state.dir, 'logs'), values.logs, { recursive: true });
      const apiserverLog = join(cluster.state.dir, 'control-plane', 'kube-apiserver.log');
      cpSync(apiserverLog, join(values.logs, 'kube-apiserver.log'));
    } catch (error) {
      log(`could not copy the cluster's logs: ${(error as Error).message}`);
    }
    log(`cluster logs copied to ${values.logs}; tearing the cluster down`);
    await cluster.down();
    cluster = undefined;
  }
}

function printTable(): void {
  console.log(`\n${formatTable(results.map(tableRow))}\n`);
  const passed = results.filter((r) => r.pass).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping after tearing down; the cells that finished:`);
    void teardown().finally(() => {
      printTable();
      process.exit(130);
    });
  });
}

try {
  const deletes = DELETE_CELLS.filter(([fault, phase]) => faults.includes(fault) && phases.includes(phase));
  const pairs = faults.flatMap((fault) =>
    phases.filter((phase) => cellApplies(fault, phase)).map((phase): [Fault, Phase] => [fault, phase]),
  );
  const total = (pairs.length + deletes.length) * trials;
  log(
    `fault matrix: ${faults.length} faults × ${phases.length} phases (${pairs.length} that apply; + ` +
      `${deletes.length} with the Migration deleted) × ${trials} trials = ${total} cells`,
  );
  cluster = await startE2eCluster();
  log(`cluster ${cluster.state.name} up in ${cluster.state.dir} (logs: ${cluster.state.dir}/logs)`);
  const matrix = await prepareMatrix(cluster, log);
  try {
    for (let trial = 1; trial <= trials && !stopping; trial++) {
      const cells: [Fault, Phase, CellOptions][] = [
        ...pairs.map(([fault, phase]): [Fault, Phase, CellOptions] => [fault, phase, {}]),
        ...DELETE_CELLS.filter(([fault, phase]) => faults.includes(fault) && phases.includes(phase)).map(
          ([fault, phase]): [Fault, Phase, CellOptions] => [fault, phase, { deleteMigration: true }],
        ),
      ];
      for (const [fault, phase, options] of cells) {
        if (stopping) break;
        log(
          `cell ${results.length + 1}/${total}: ${fault}${options.deleteMigration ? ' + delete' : ''} × ${phase}, trial ${trial}`,
        );
        const started = Date.now();
        const result = await runCell(matrix, fault, phase, trial, options);
        results.push(result);
        log(
          `  → ${tableRow(result).slice(3, 7).join(' | ')} | ${result.pass ? 'PASS' : 'FAIL'} ` +
            `(cell ${((Date.now() - started) / 1000).toFixed(0)} s) ${result.message}` +
            `${result.problems.length ? `\n    problems: ${result.problems.join('; ')}` : ''}` +
            `${result.notes.length ? `\n    notes: ${result.notes.join('; ')}` : ''}` +
            `\n    watch: ${JSON.stringify(result.watch)}`,
        );
        await restore(matrix);
      }
    }
  } finally {
    closeMatrix(matrix);
  }
} catch (error) {
  log(`matrix aborted: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 2;
} finally {
  if (!stopping) await teardown();
}

printTable();
if (results.some((r) => !r.pass) && !process.exitCode) process.exitCode = 1;
