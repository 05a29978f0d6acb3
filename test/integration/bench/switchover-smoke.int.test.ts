// The switchover bench's code end to end, scaled down to the least that runs each of its paths: 1 migration through
// Tern and 1 direct (128 MiB guests with a 16 MiB working set, which the agent's VERIFY still checks), everything
// real (operator, kube-apiserver, two daemons, QEMU, a bridge of its own). It checks that the summary line comes out
// with numbers and that no acknowledged transaction was lost; never the figures themselves.
import { runSwitchoverBench } from '../../bench/switchover/bench.js';

it('bench:switchover with 1 Tern and 1 direct migration prints its summary line, nothing acknowledged lost', async () => {
  const lines: string[] = [];
  const samples = await runSwitchoverBench({
    ternRuns: 1,
    directRuns: 1,
    clients: 2,
    memoryMib: 128,
    wssMib: 16,
    dirtyPps: 2000,
    guestCmdline: [],
    maxMinutes: Infinity,
    log: (line) => {
      lines.push(line);
      console.log(line);
    },
  });
  expect(samples.map((s) => s.mode).sort()).toEqual(['direct', 'tern']);
  const number = String.raw`\d+(?:\.\d+)?`;
  expect(lines.at(-1)).toMatch(
    new RegExp(
      `^client_gap_p50_ms=${number} client_gap_p99_ms=${number} direct_client_gap_p50_ms=${number} ` +
        `pause_resume_p50_ms=${number} qemu_downtime_p50_ms=${number} acked_lost=0$`,
    ),
  );
}, 900_000);
