// One representative cell of the fault matrix per fault (fault-matrix.ts; `npm run test:faults` runs them all, at
// every phase, twice) on a local cluster of two network-namespaced nodes. Needs root, like test/e2e/.
import { startE2eCluster, type E2eCluster } from '../e2e/e2e-cluster.js';
import {
  TERMINAL_WITHIN_MS,
  SETTLE_WITHIN_MS,
  closeMatrix,
  formatTable,
  prepareMatrix,
  restore,
  runCell,
  tableRow,
  type Fault,
  type Matrix,
  type Phase,
} from './fault-matrix.js';

const CELLS: [Fault, Phase][] = [
  // The scenario that opened issue 11: the source QEMU dies as an OOM kill would, mid-copy.
  ['kill-source-qemu', 'Copying'],
  // Post-copy: the guest's state is split, so both QEMUs stop and the VM restarts on the node its record names.
  ['kill-target-qemu', 'PostCopy'],
  // Killed while its `cont` is on the way: the guest may have run there, so the source is released, never resumed.
  ['kill-target-qemu', 'AfterSwap'],
  ['kill-source-daemon', 'Copying'],
  ['kill-target-daemon', 'AfterSwap'],
  ['kill-operator', 'Switchover'],
  // The guest runs on the target while the status writes held back from the switchover's path have not landed.
  ['kill-operator', 'Resumed'],
  // Issue 11: a source daemon stopped for 30 s at the switchover froze the guest for 18.7 s.
  ['stop-source-daemon', 'Switchover'],
  ['cut-source-link', 'Copying'],
  // Issue 11: a 20 s cut of the target's link during Freezing froze the guest for 26.8 s.
  ['cut-target-link', 'Switchover'],
  ['stop-apiserver', 'Initializing'],
];

let cluster: E2eCluster;
let matrix: Matrix;
const rows: string[][] = [];

beforeAll(async () => {
  cluster = await startE2eCluster();
  matrix = await prepareMatrix(cluster, (line) => console.log(line));
}, 300_000);

afterAll(async () => {
  if (rows.length > 0) console.log(formatTable(rows));
  if (matrix) closeMatrix(matrix);
  await cluster?.down();
}, 60_000);

test.each(CELLS)(
  '%s at %s: the migration ends, the guest runs on the node its record names, once',
  async (fault, phase) => {
    const result = await runCell(matrix, fault, phase, 1);
    rows.push(tableRow(result));
    console.log(
      `${fault} × ${phase}: ${tableRow(result).join(' | ')}\nwatch: ${JSON.stringify(result.watch)}`,
    );
    await restore(matrix);
    expect(result.problems).toEqual([]);
  },
  // Reaching the phase, the fault, the terminal bound, settling, restoring.
  120_000 + TERMINAL_WITHIN_MS + SETTLE_WITHIN_MS + 120_000,
);
