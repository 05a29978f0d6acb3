// The node's fence watchdog (hypervisor-node/src/self-fencing/watchdog.ts) as a real process against processes that
// look like guest QEMUs to it (their command line names a guest's pidfile; fencing.int.test.ts uses real QEMUs):
// which heartbeats it trusts, that it checks a pid's command line before it kills (pid reuse), and when it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensureWatchdog,
  fencingPaths,
  runningWatchdog,
} from '../../../hypervisor-node/src/self-fencing/watchdog.js';
import {
  bootClockCs,
  currentBootId,
  formatHeartbeat,
} from '../../../hypervisor-node/src/self-fencing/heartbeat.js';
import { eventually } from '../../harness/eventually.js';

let root: string;
const children: ChildProcess[] = [];

/** A process whose command line carries `-pidfile <root>/<guest>/qemu.pid`, recorded in that pidfile. */
async function fakeGuest(guest: string, recordedAs = guest): Promise<ChildProcess> {
  await mkdir(join(root, guest), { recursive: true });
  await mkdir(join(root, recordedAs), { recursive: true });
  const child = spawn('/bin/sh', [
    '-c',
    'while :; do sleep 1; done',
    'qemu',
    '-pidfile',
    join(root, guest, 'qemu.pid'),
  ]);
  children.push(child);
  await writeFile(join(root, recordedAs, 'qemu.pid'), `${child.pid}\n`);
  return child;
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
const killed = (child: ChildProcess) =>
  eventually('killed', async () => (child.signalCode === 'SIGKILL' ? true : undefined), 10_000, 50);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function heartbeat(ageCs: number, fenceCs: number, bootId?: string): Promise<void> {
  const line = formatHeartbeat({
    bootId: bootId ?? (await currentBootId()),
    renewedAtCs: (await bootClockCs()) - ageCs,
    fenceAfterCs: fenceCs,
  });
  // Atomically, as the daemon writes it: a half-written line reads as no heartbeat, which fences.
  await writeFile(`${fencingPaths(root).heartbeat}.tmp`, line);
  await rename(`${fencingPaths(root).heartbeat}.tmp`, fencingPaths(root).heartbeat);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tern-wd-'));
  await mkdir(fencingPaths(root).dir);
});

afterEach(async () => {
  for (const child of children.splice(0)) if (alive(child)) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

it('leaves the guests of a fresh heartbeat alone and kills them, saying why, once it is older than the fence time', async () => {
  await heartbeat(0, 300);
  const guest = await fakeGuest('g1');
  await ensureWatchdog(root);
  await sleep(1_500);
  expect(alive(guest)).toBe(true);
  await killed(guest);
  expect(await readFile(join(root, 'g1', 'fenced'), 'utf8')).toMatch(
    /^no Lease renewal for 3 s \(fence time 3 s\): the node's fence watchdog killed QEMU \(SIGKILL\)/,
  );
});

it('takes a renewal written while it runs: the guest lives on', async () => {
  await heartbeat(0, 200);
  const guest = await fakeGuest('g1');
  await ensureWatchdog(root);
  for (let i = 0; i < 6; i++) {
    await sleep(500);
    await heartbeat(0, 200);
  }
  expect(alive(guest)).toBe(true);
});

it.each([
  ['no heartbeat', async () => undefined],
  ['a heartbeat of another boot', () => heartbeat(0, 12_000, '00000000-0000-0000-0000-000000000000')],
  ['a malformed heartbeat', () => writeFile(fencingPaths(root).heartbeat, 'boot 12x 12000\n')],
])('kills at once on %s', async (_what, write) => {
  await write();
  const guest = await fakeGuest('g1');
  await ensureWatchdog(root);
  await killed(guest);
});

it("never kills a process whose command line does not name the guest's pidfile (a reused pid)", async () => {
  await heartbeat(1_000, 100);
  // g2's pidfile holds the pid of a process that names g1's pidfile, not g2's.
  const other = await fakeGuest('g1', 'g2');
  await ensureWatchdog(root);
  await sleep(1_500);
  expect(alive(other)).toBe(true);
});

it('exits when a heartbeat of this boot turns fencing off, and when the state dir is gone', async () => {
  await heartbeat(0, 12_000);
  const first = await ensureWatchdog(root);
  expect(await eventually('the watchdog', () => runningWatchdog(root))).toBe(first);
  expect(await ensureWatchdog(root)).toBe(first);
  await heartbeat(0, 0);
  await eventually(
    'the watchdog gone',
    async () => ((await runningWatchdog(root)) ? undefined : true),
    5_000,
  );

  await heartbeat(0, 12_000);
  const second = await ensureWatchdog(root);
  expect(second).not.toBe(first);
  await eventually('the second watchdog', () => runningWatchdog(root));
  await rm(root, { recursive: true, force: true });
  await eventually(
    'the second watchdog gone',
    async () => {
      try {
        process.kill(second, 0);
        return undefined;
      } catch {
        return true;
      }
    },
    5_000,
  );
});
