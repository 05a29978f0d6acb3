// bench:scale's code at a tiny scale (3 hollow nodes, 20 VMs, 1 node drained), so that CI keeps the benchmark
// working: the real operator process, a real kube-apiserver and etcd, hollow daemons (test/bench/scale/, the one
// place Tern fakes a daemon). No timed assertions: every VM ends Running, the drained node is empty in the API and
// on its daemon, and the report's last line carries numbers.
import { formatReport, runScale, type ScaleResult } from '../../bench/scale/scenario.js';

const options = {
  nodes: 3,
  vms: 20,
  drain: 1,
  copyMs: 300,
  downtimeMs: 10,
  settleSeconds: 2,
  timeoutSeconds: 240,
  log: (line: string) => lines.push(line),
};
const lines: string[] = [];
let result: ScaleResult;

beforeAll(async () => {
  result = await runScale(options);
  console.log([...lines, ...formatReport(result, options)].join('\n'));
}, 300_000);

it('reconciles every VM to Running and drains the node through real migrations', () => {
  expect(result.vmPhases).toEqual({ Running: 20 });
  expect(result.drainedNodes).toEqual(['node-1']);
  expect(result.vmsOnDrainedNodes).toBe(0);
  expect(result.guestsOnDrainedNodes).toBe(0);
  // Every VM has exactly one guest, running on the node its record names.
  expect(result.vmsRunningWhereRecorded).toBe(20);
  expect(Object.values(result.guestsPerNode).reduce((a, b) => a + b, 0)).toBe(20);
  expect(result.migrations).toBeGreaterThan(0);
  expect(result.mostActiveSeen).toBeLessThanOrEqual(result.concurrency);
});

it('prints the last line with numbers', () => {
  const last = formatReport(result, options).at(-1)!;
  const number = '-?\\d+(\\.\\d+)?';
  expect(last).toMatch(
    new RegExp(
      `^vms=20 nodes=3 reconcile_s=${number} drain_s=${number} drain_ideal_ratio=${number} ` +
        `operator_rss_peak_mib=${number} operator_cpu_s=${number} requests_per_migration=${number}$`,
    ),
  );
});
