// The operator at scale (issue 14 item 6): the real operator process against a real kube-apiserver + etcd and
// hollow daemons (test/bench/scale/: the daemon's real gRPC API, mTLS, HypervisorNode and Lease, guests kept as
// records instead of QEMU: the one place Tern fakes a daemon). Creates --vms VirtualMachines on --nodes nodes and
// waits until all run, then drains the first --drain nodes under the operator's default concurrency limits.
// Usage: npx tsx test/bench/scale.bench.ts [--vms 1000] [--nodes 20] [--drain 2] [--copy-ms 2000]
//        [--downtime-ms 30] [--settle-s 20] [--timeout-s 1800] [--timeline] [--built]
// --built runs the operator from the production bundle (npm run build) instead of its source under tsx, whose
// loader adds to the operator's memory. --timeline lists each evacuation Migration's creation and phases (seconds
// after the drain began). Prints the reconcile time and rate, the drain time against the ideal the limits allow,
// the operator's RSS (peak, /proc) and CPU seconds, its apiserver requests per migration by verb and resource, and
// a last line
// `vms=… nodes=… reconcile_s=… drain_s=… drain_ideal_ratio=… operator_rss_peak_mib=… operator_cpu_s=…
// requests_per_migration=…`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatReport, runScale } from './scale/scenario.js';

/** --built: the production bundle of `npm run build` instead of the operator's source under tsx. */
const BUNDLE = fileURLToPath(new URL('../../dist/app/operator.mjs', import.meta.url));
const built = process.argv.includes('--built');
if (built && !existsSync(BUNDLE)) throw new Error(`--built: no ${BUNDLE}; run npm run build first`);

function flag(name: string, fallback: number, min: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`--${name} takes a whole number of at least ${min}`);
  return value;
}

const options = {
  vms: flag('vms', 1000, 1),
  nodes: flag('nodes', 20, 2),
  drain: flag('drain', 2, 1),
  copyMs: flag('copy-ms', 2000, 100),
  downtimeMs: flag('downtime-ms', 30, 0),
  settleSeconds: flag('settle-s', 20, 1),
  timeoutSeconds: flag('timeout-s', 1800, 10),
  ...(built ? { operatorMain: BUNDLE } : {}),
  log: (line: string) => console.log(line),
};
console.log(
  `bench:scale: ${options.vms} VMs on ${options.nodes} hollow nodes, draining ${options.drain}; ` +
    `a hollow migration copies for ${options.copyMs} ms (+${options.downtimeMs} ms downtime); ` +
    `the operator runs ${built ? 'from the production bundle' : 'from its source under tsx'}`,
);
try {
  const result = await runScale(options);
  if (process.argv.includes('--timeline')) for (const line of result.timeline) console.log(`  ${line}`);
  for (const line of formatReport(result, options)) console.log(line);
  process.exit(0);
} catch (error) {
  console.error(`bench:scale failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
