// The demo flow headless: the local cluster (real apiserver, two daemons in network namespaces, the operator), a
// busy VM serving transactions, a live migration with kubectl tern while a client keeps transacting. The demo's own
// summary is the evidence: it reads the Migration's status, the VM's new node, the client's log, the agent's
// VERIFY and the durability check of the transaction log the guest reads back from its disk. The demo runs on a
// cluster of its own (--dir, --name), which it leaves up and `--down` removes.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEMO = fileURLToPath(new URL('../demo/main.ts', import.meta.url));
let work: string;
let clusterArgs: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-demo-e2e-'));
  clusterArgs = ['--dir', join(work, 'cluster'), '--name', `d${process.pid % 100000}`];
});

afterAll(async () => {
  const { code, output } = await runDemo(['--down', ...clusterArgs]);
  if (code !== 0) console.log(output);
  await rm(work, { recursive: true, force: true });
}, 60_000);

function runDemo(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/**
 * kubectl tern's progress lines (plain: the demo's output is a pipe here): each phase's running lines come before its
 * "completed" line and after the previous phase's, and the copy's throughput is a live figure, never 0 B/s.
 */
function expectProgressInPhaseOrder(output: string): void {
  const lines = output.split('\n');
  const completed = new Set<string>();
  let copying = 0;
  for (const line of lines) {
    const done = /^(\w+) phase completed in /.exec(line)?.[1];
    const running = /^(\w+)(?:…|: round )/.exec(line)?.[1];
    if (done !== undefined) completed.add(done);
    if (running !== undefined)
      expect({ line, after: [...completed] }).toEqual({ line, after: expect.not.arrayContaining([running]) });
    if (running === 'Copying' && line.includes(': round ')) copying++;
  }
  expect([...completed]).toEqual(expect.arrayContaining(['Copying', 'Freezing']));
  expect(output).not.toContain('throughput 0 B/s');
  if (copying > 1) expect(output).toMatch(/\nCopying: round \d+ .*· throughput [1-9][\d.]* \S+\/s/);
}

test('a busy VM serving transactions migrates live; the client loses nothing and the guest memory verifies', async () => {
  const svg = join(work, 'tps.svg');
  const { code, output } = await runDemo(['--svg', svg, ...clusterArgs]);
  console.log(output.split('\nsummary\n')[1] ?? output);
  expect(code).toBe(0);
  expect(output).toMatch(/result\s+Succeeded\n/);
  for (const phase of ['Scheduling', 'Initializing', 'Copying', 'Quiescing', 'Freezing']) {
    expect(output).toMatch(new RegExp(`\\n  ${phase}\\s+\\d+ ms\\n`));
  }
  const move = /VM node\s+(\S+) → (\S+) \(epoch (\d+) → (\d+)\)/.exec(output);
  expect(move).not.toBeNull();
  expect(move![2]).not.toBe(move![1]);
  expect(Number(move![4])).toBe(Number(move![3]) + 1);
  expect(output).toMatch(/QEMU downtime\s+\d+ ms/);
  // A reconnect during the migration is allowed; a failed transaction outside it, or a lost/repeated one, is not.
  expect(output).toMatch(/failed transactions: \d+ \(0 outside the migration\), out of order: 0/);
  expect(output).toMatch(/integrity\s+OK \(\d+ pages/);
  expect(output).toMatch(
    /durability\s+OK: \d+ acknowledged, \d+ in the log .*, 0 lost, 0 moved, 0 duplicated/,
  );
  expect(output).toContain('Guest migrated successfully.');
  expectProgressInPhaseOrder(output);
  // The terminal chart: time on the x axis, within 80 columns, the copy and the freeze marked under the axis.
  const terminal =
    /\ntransactions\/s over [^\n]*\n[\s\S]*?\nlegend [^\n]*(\n {8}[^\n]*)*/.exec(output)?.[0] ?? '';
  expect(terminal).not.toBe('');
  for (const line of terminal.split('\n')) expect([...line].length).toBeLessThanOrEqual(80);
  expect(terminal).toMatch(/\nphase {4}[ A-Z]*C+[ A-Z]*F/);
  expect(terminal).toMatch(/F Freezing \d+ ms/);
  const chart = await readFile(svg, 'utf8');
  expect(chart).toContain('<polyline');
  expect(chart).toContain('>freeze</text>');
  expect(output).toContain('The cluster stays up with the VM demo on');
}, 300_000);
