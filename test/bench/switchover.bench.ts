// The switchover the client sees, Tern against direct QEMU→QEMU on the same guest and workload, interleaved:
//   npm run bench:switchover -- [--tern-runs 30] [--direct-runs 10] [--clients 3] [--memory-mib 512]
//     [--wss-mib 256] [--dirty-pps 5000] [--guest-cmdline 'word …']
// Needs root (a bridge and taps of its own, tcpdump on it when installed). What it measures: test/bench/switchover/
// bench.ts. Last line: `client_gap_p50_ms=<a> client_gap_p99_ms=<b> direct_client_gap_p50_ms=<d>
// pause_resume_p50_ms=<e> qemu_downtime_p50_ms=<c> acked_lost=<n>`.
import { Command } from 'commander';
import { DEFAULT_OPTIONS, runSwitchoverBench } from './switchover/bench.js';

const count = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a count: ${value}`);
  return n;
};
const options = new Command()
  .option('--tern-runs <n>', 'migrations through Tern', count, DEFAULT_OPTIONS.ternRuns)
  .option('--direct-runs <n>', 'direct QEMU→QEMU migrations', count, DEFAULT_OPTIONS.directRuns)
  .option('--clients <n>', 'clients, each with one transaction in flight', count, DEFAULT_OPTIONS.clients)
  .option('--memory-mib <n>', 'guest RAM', count, DEFAULT_OPTIONS.memoryMib)
  .option('--wss-mib <n>', 'working set the guest agent fills and dirties', count, DEFAULT_OPTIONS.wssMib)
  .option('--dirty-pps <n>', 'pages per second the migrating guest rewrites', count, DEFAULT_OPTIONS.dirtyPps)
  .option(
    '--max-minutes <n>',
    'start no migration after this many minutes',
    Number,
    DEFAULT_OPTIONS.maxMinutes,
  )
  .option('--guest-cmdline <words>', 'extra kernel command line words for both guests', '')
  .parse()
  .opts<{
    ternRuns: number;
    directRuns: number;
    clients: number;
    memoryMib: number;
    wssMib: number;
    dirtyPps: number;
    guestCmdline: string;
    maxMinutes: number;
  }>();
if (options.ternRuns + options.directRuns === 0 || options.clients === 0) {
  console.error('bench:switchover needs at least one migration and one client');
  process.exit(2);
}

runSwitchoverBench({
  ...options,
  guestCmdline: options.guestCmdline.split(/\s+/).filter(Boolean),
  log: (line) => console.log(line),
}).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
