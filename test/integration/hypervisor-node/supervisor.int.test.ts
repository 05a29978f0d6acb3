// GuestSupervisor against real QEMU (TCG): boot, graceful and forced stops, restart, daemon-restart reattach (with
// and without a pidfile), a QEMU killed from outside, a QEMU or a NIC that cannot start, concurrent creates, an
// incoming migration target. Every QEMU started here is killed in afterAll even when a test fails.
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { copyFile, link, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GuestExistsError,
  GuestStartError,
  GuestSupervisor,
  type SupervisorOptions,
} from '../../../hypervisor-node/src/runtime/supervisor.js';
import { findGuestQemus } from '../../../hypervisor-node/src/runtime/process.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import {
  BridgeNetwork,
  tapName,
  UserModeNetwork,
} from '../../../hypervisor-node/src/network/guest-network.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import type { GuestPhase, GuestStatus } from '../../../hypervisor-node/src/model/guest.js';

const TEST_TIMEOUT_MS = 120_000;

let work: string;
let images: TestGuestImages;
let options: SupervisorOptions;
const stateRoots: string[] = [];
let testCount = 0;
const supervisors: GuestSupervisor[] = [];

function newSupervisor(): GuestSupervisor {
  const supervisor = new GuestSupervisor(options);
  supervisors.push(supervisor);
  return supervisor;
}

function spec(name: string, uuidSuffix: string, memoryMiB = 256): Record<string, unknown> {
  return {
    name,
    uuid: `6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f${uuidSuffix}`,
    cpus: 1,
    memoryMiB,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: images.cmdline },
    disks: [],
    nics: [],
  };
}

function waitForPhase(
  supervisor: GuestSupervisor,
  name: string,
  phase: GuestPhase,
  ms: number,
): Promise<GuestStatus> {
  return new Promise((resolve, reject) => {
    const current = supervisor.get(name);
    if (current?.phase === phase) return resolve(current);
    const timer = setTimeout(() => {
      supervisor.off('status', onStatus);
      reject(new Error(`${name} did not reach ${phase} within ${ms} ms (is ${supervisor.get(name)?.phase})`));
    }, ms);
    const onStatus = (status: GuestStatus): void => {
      if (status.name !== name || status.phase !== phase) return;
      clearTimeout(timer);
      supervisor.off('status', onStatus);
      resolve(status);
    };
    supervisor.on('status', onStatus);
  });
}

async function waitForConsole(name: string, pattern: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  const file = guestPaths(options.stateRoot, name).console;
  while (Date.now() < deadline) {
    if (pattern.test(await readFile(file, 'utf8').catch(() => ''))) return;
    await sleep(100);
  }
  throw new Error(`console of ${name} never matched ${pattern}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  // Short path: unix socket paths are limited to 107 bytes.
  work = await mkdtemp(path.join(tmpdir(), 'tern-sup-'));
  images = await testGuestImages();
  options = {
    stateRoot: path.join(work, 'state'),
    accel: 'tcg',
    policy: { imageRoots: { sharedRoots: [images.root, work] }, maxCpus: 2, maxMemoryMiB: 2048 },
    network: new UserModeNetwork(7000),
    pollIntervalMs: 200,
  };
}, TEST_TIMEOUT_MS);

// Each test gets its own state root, so one test's leftovers cannot change what another's reattach finds.
beforeEach(() => {
  options = { ...options, stateRoot: path.join(work, `s${++testCount}`) };
  stateRoots.push(options.stateRoot);
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  for (const supervisor of supervisors) await supervisor.close().catch(() => undefined);
  // Some tests remove pidfiles: find the QEMUs by their command lines.
  for (const stateRoot of stateRoots) {
    for (const pid of await findGuestQemus(stateRoot)) process.kill(pid, 'SIGKILL');
  }
  await rm(work, { recursive: true, force: true });
});

test(
  'boots a kernel whose file name has "," and "=" to Running, stops gracefully to Stopped, starts again',
  async () => {
    const supervisor = newSupervisor();
    const phases: string[] = [];
    supervisor.on('status', (s) => s.name === 'alpha' && phases.push(s.phase));
    // QEMU's option syntax would split this name; -kernel must pass it through whole.
    const kernel = path.join(work, 'k,x=y');
    await link(images.kernel, kernel).catch(() => copyFile(images.kernel, kernel));
    const alpha = {
      ...spec('alpha', '4a01'),
      boot: { kernel, initrd: images.initrd, cmdline: images.cmdline },
    };

    const t0 = performance.now();
    const running = await supervisor.create(alpha);
    const qmpMs = performance.now() - t0;
    expect(running.phase).toBe('Running');
    expect(running.pid).toBeGreaterThan(0);
    expect(running.accelerator).toBe('tcg');
    expect(running.spec.boot?.kernel).toBe(kernel);
    await waitForConsole('alpha', images.readyPattern, 60_000);
    console.log(
      `alpha: create() -> Running in ${qmpMs.toFixed(0)} ms; guest ready after ${(performance.now() - t0).toFixed(0)} ms`,
    );
    expect(await supervisor.qmp('alpha').queryStatus()).toMatchObject({ running: true, status: 'running' });

    const t1 = performance.now();
    const timeoutMs = 20_000;
    const stopped = await supervisor.stop('alpha', { timeoutMs });
    console.log(`alpha: stop() took ${(performance.now() - t1).toFixed(0)} ms: ${stopped.message}`);
    expect(stopped.phase).toBe('Stopped');
    expect(stopped.pid).toBeUndefined();
    expect(stopped).toMatchObject({ reason: 'PoweredOff', message: 'the guest powered off' });
    expect(alive(running.pid as number)).toBe(false);
    expect(phases).toEqual(['Starting', 'Running', 'Stopping', 'Stopped']);

    const again = await supervisor.start('alpha');
    expect(again.phase).toBe('Running');
    expect(again.pid).not.toBe(running.pid);
    await supervisor.delete('alpha', { timeoutMs: 1_000 });
    expect(supervisor.get('alpha')).toBeUndefined();
    expect(alive(again.pid as number)).toBe(false);
    await expect(stat(path.join(options.stateRoot, 'alpha'))).rejects.toThrow(/ENOENT/);
  },
  TEST_TIMEOUT_MS,
);

test(
  'a restarted daemon reattaches a running guest; QEMU killed from outside -> Failed with signal and console',
  async () => {
    const first = newSupervisor();
    const created = await first.create(spec('bravo', '4b02'));
    await first.create(spec('charlie', '4c03'));
    await first.stop('charlie', { timeoutMs: 1_000 });
    const hotel = await first.create(spec('hotel', '4a10', 128));
    await waitForConsole('bravo', images.readyPattern, 60_000);
    await first.close(); // the daemon goes away; QEMU must not
    // As if the daemon had died before QEMU wrote its pidfile: found by its command line instead. Hotel's QMP
    // socket is gone too, so nothing but Delete can end that QEMU.
    await rm(guestPaths(options.stateRoot, 'bravo').pid);
    await rm(guestPaths(options.stateRoot, 'hotel').pid);
    await rm(guestPaths(options.stateRoot, 'hotel').qmp);

    expect(alive(created.pid as number)).toBe(true);
    const second = newSupervisor();
    const reattached = await second.reattachAll();
    expect(reattached.map((s) => [s.name, s.phase, s.reason])).toEqual([
      ['bravo', 'Running', undefined],
      ['charlie', 'Stopped', 'PowerOffTimedOut'],
      ['hotel', 'Failed', 'QmpUnreachable'],
    ]);
    expect(second.get('hotel')?.pid).toBe(hotel.pid);
    // Failed, but its QEMU lives: a start must not put a second QEMU next to it.
    await expect(second.start('hotel')).rejects.toThrow(/its QEMU \(pid \d+\) still runs; delete the guest/);
    await second.delete('hotel', { timeoutMs: 1_000 });
    expect(alive(hotel.pid as number)).toBe(false);
    expect(second.get('bravo')?.pid).toBe(created.pid);
    expect(second.get('bravo')?.startedAt).toBe(created.startedAt);
    expect(await second.qmp('bravo').queryStatus()).toMatchObject({ status: 'running' });

    // Pause/resume through the exposed QMP session shows up as phase changes.
    await second.qmp('bravo').stop();
    await waitForPhase(second, 'bravo', 'Paused', 5_000);
    await second.qmp('bravo').cont();
    await waitForPhase(second, 'bravo', 'Running', 5_000);

    const failed = waitForPhase(second, 'bravo', 'Failed', 10_000);
    const t0 = performance.now();
    process.kill(created.pid as number, 'SIGKILL');
    const status = await failed;
    console.log(
      `bravo: SIGKILL noticed in ${(performance.now() - t0).toFixed(0)} ms; ${status.reason}: ${status.message}`,
    );
    expect(status.reason).toBe('Signaled');
    expect(status.message).toMatch(/^QEMU killed by signal SIGKILL \(9\);/);
    expect(status.message).toMatch(
      new RegExp(`last console lines:\\n(.*\\n)*.*${images.consoleTailPattern.source}`),
    );
    expect(status.pid).toBeUndefined();

    // The verdict survives another daemon restart.
    await second.close();
    const third = newSupervisor();
    const again = await third.reattachAll();
    expect(again.find((s) => s.name === 'bravo')).toMatchObject({
      phase: 'Failed',
      reason: 'Signaled',
      message: status.message,
    });
    await third.delete('bravo');
    await third.delete('charlie');
  },
  TEST_TIMEOUT_MS,
);

test(
  'a QEMU that cannot boot its kernel is reported Failed with its own error',
  async () => {
    const supervisor = newSupervisor();
    const notAKernel = path.join(work, 'not-a-kernel');
    await writeFile(notAKernel, 'this is not a kernel\n');
    const bad = { ...spec('delta', '4d04'), boot: { kernel: notAKernel, cmdline: [] } };
    const error = await supervisor.create(bad).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(GuestStartError);
    expect(String(error)).toMatch(/QEMU exited with status 1: .*invalid kernel header/);
    expect(supervisor.get('delta')).toMatchObject({ phase: 'Failed', reason: 'LaunchFailed' });
    expect(supervisor.get('delta')?.message).toMatch(/^QEMU exited with status 1: .*invalid kernel header/);
    await supervisor.delete('delta');
  },
  TEST_TIMEOUT_MS,
);

test(
  'stop escalates: a guest ignoring the power button gets quit, a QEMU not answering gets killed',
  async () => {
    const supervisor = newSupervisor();
    // acpi=off: the kernel never handles the ACPI power button.
    const deaf = {
      ...spec('india', '4a11', 128),
      boot: { kernel: images.kernel, initrd: images.initrd, cmdline: [...images.cmdline, 'acpi=off'] },
    };
    const [india, juliet] = await Promise.all([
      supervisor.create(deaf),
      supervisor.create(spec('juliet', '4a12', 128)),
    ]);
    process.kill(juliet.pid as number, 'SIGSTOP'); // QMP stays connected but nothing answers
    await waitForConsole('india', images.readyPattern, 60_000);

    const t0 = performance.now();
    const [quit, killed] = await Promise.all([
      supervisor.stop('india', { timeoutMs: 2_000 }),
      supervisor.stop('juliet', { timeoutMs: 1_000 }),
    ]);
    console.log(`india/juliet: forced stops took ${(performance.now() - t0).toFixed(0)} ms`);
    expect(quit).toMatchObject({
      phase: 'Stopped',
      reason: 'PowerOffTimedOut',
      message: 'the guest did not power off within 2000 ms; QEMU quit',
    });
    expect(killed).toMatchObject({
      phase: 'Stopped',
      reason: 'Killed',
      message: 'QEMU did not quit and was killed',
    });
    expect(alive(india.pid as number)).toBe(false);
    expect(alive(juliet.pid as number)).toBe(false);
    await supervisor.delete('india');
    await supervisor.delete('juliet');
  },
  TEST_TIMEOUT_MS,
);

test(
  'of two concurrent creates of one name, one runs the guest and the other gets GuestExistsError',
  async () => {
    const supervisor = newSupervisor();
    const results = await Promise.allSettled([
      supervisor.create(spec('lima', '4a13', 128)),
      supervisor.create(spec('lima', '4a13', 128)),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(GuestExistsError);
    expect(supervisor.list().map((s) => [s.name, s.phase])).toEqual([['lima', 'Running']]);
    await supervisor.delete('lima', { timeoutMs: 1_000 });
  },
  TEST_TIMEOUT_MS,
);

test(
  'an incoming migration target starts Paused and stops with quit; a QMP quit counts as Stopped',
  async () => {
    const supervisor = newSupervisor();
    const target = await supervisor.create(spec('echo', '4e05'), { incoming: true });
    expect(target.phase).toBe('Paused');
    expect(await supervisor.qmp('echo').queryStatus()).toMatchObject({ running: false, status: 'inmigrate' });
    const stopped = await supervisor.stop('echo');
    expect(stopped).toMatchObject({ phase: 'Stopped', reason: 'Quit', message: 'QEMU quit' });
    await supervisor.delete('echo');

    // A `quit` sent by another user of the QMP session (the migration source after hand-over) is a stop too.
    await supervisor.create(spec('foxtrot', '4f06'), { incoming: true });
    const quitted = waitForPhase(supervisor, 'foxtrot', 'Stopped', 10_000);
    await supervisor.qmp('foxtrot').quit();
    expect(await quitted).toMatchObject({
      reason: 'Quit',
      message: 'QEMU quit on a QMP command of another client; QEMU exited with status 0',
    });
    await supervisor.delete('foxtrot');
  },
  TEST_TIMEOUT_MS,
);

test(
  'a guest migrates between two supervisors; the target stays Paused until cont',
  async () => {
    const sourceSide = newSupervisor();
    const targetRoot = path.join(work, `t${testCount}`);
    stateRoots.push(targetRoot);
    const targetSide = new GuestSupervisor({ ...options, stateRoot: targetRoot });
    supervisors.push(targetSide);
    const guest = spec('golf', '4a07');
    await sourceSide.create(guest);
    await waitForConsole('golf', images.readyPattern, 60_000);
    expect((await targetSide.create(guest, { incoming: true })).phase).toBe('Paused');

    const uri = `unix:${path.join(work, 'golf-migration.sock')}`;
    await targetSide.qmp('golf').execute('migrate-incoming', { uri });
    const source = sourceSide.qmp('golf');
    await source.migrateSetCapabilities({ events: true });
    await source.migrateSetParameters({ 'max-bandwidth': 10 * 1024 ** 3 });
    const finished = source.waitForEvent('MIGRATION', 60_000, (e) =>
      ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
    );
    const t0 = performance.now();
    await source.execute('migrate', { uri });
    expect((await finished).data).toEqual({ status: 'completed' });
    const info = await source.queryMigrate();
    console.log(
      `golf: migrated in ${(performance.now() - t0).toFixed(0)} ms (QEMU total ${info['total-time']} ms, ` +
        `downtime ${info.downtime} ms)`,
    );
    await waitForPhase(sourceSide, 'golf', 'Paused', 5_000);

    // The target has the guest but must not run it before the daemon says so.
    const target = targetSide.qmp('golf');
    for (let i = 0; i < 100 && (await target.queryStatus()).status === 'inmigrate'; i++) await sleep(50);
    expect(await target.queryStatus()).toEqual({ running: false, status: 'paused' });
    expect(targetSide.get('golf')?.phase).toBe('Paused');
    await target.cont();
    await waitForPhase(targetSide, 'golf', 'Running', 5_000);

    expect(await sourceSide.stop('golf')).toMatchObject({
      phase: 'Stopped',
      reason: 'Quit',
      message: 'QEMU quit',
    });
    await sourceSide.delete('golf');
    expect(await target.queryStatus()).toMatchObject({ running: true, status: 'running' });
    await targetSide.delete('golf', { timeoutMs: 1_000 });
  },
  TEST_TIMEOUT_MS,
);

/** One request line to the guest's transaction service, answered with one line. */
async function transact(host: string, port: number, request: string): Promise<string> {
  const socket = connect({ host, port });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`${request}\n`);
  let reply = '';
  for await (const chunk of socket) {
    reply += chunk as string;
    if (reply.includes('\n')) break;
  }
  socket.destroy();
  return reply.trim();
}

async function retry<T>(ms: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

test(
  'a NIC on a tap of the node bridge carries the guest transaction service; delete removes the tap',
  async () => {
    const ip = promisify(execFile);
    const bridge = `ttest${process.pid % 10000}`;
    const uplink = `tup${process.pid % 10000}`;
    const network = new BridgeNetwork('node-t', bridge);
    const supervisor = new GuestSupervisor({ ...options, network });
    supervisors.push(supervisor);
    const macOf = async (dev: string) =>
      (JSON.parse((await ip('ip', ['-j', 'link', 'show', 'dev', dev])).stdout) as { address: string }[])[0]!
        .address;
    try {
      // The node's uplink, with a MAC most random tap MACs sort below: the bridge (whose MAC is its lowest port's)
      // must keep it while guest taps come and go.
      await ip('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
      await ip('ip', [
        ...['link', 'add', 'name', uplink, 'address', 'fa:00:00:00:00:01'],
        ...['type', 'veth', 'peer', 'name', `${uplink}p`, 'address', 'fa:00:00:00:00:02'],
      ]);
      await ip('ip', ['link', 'set', 'dev', uplink, 'master', bridge]);
      expect(await macOf(bridge)).toBe('fa:00:00:00:00:01');
      const status = await supervisor.create({
        ...spec('netty', '4a08'),
        boot: {
          kernel: images.kernel,
          initrd: images.initrd,
          cmdline: [...images.cmdline, 'tern.ip=10.213.0.10/24'],
        },
        nics: [{ mac: '52:54:00:21:30:10' }],
      });
      const tap = tapName('node-t', 'netty', 0);
      expect(status.nics).toEqual([{ kind: 'tap', ifname: tap, bridge }]);
      const link = (await ip('ip', ['-o', 'link', 'show', 'dev', tap])).stdout;
      expect(link).toContain(`master ${bridge}`);
      expect(await macOf(tap)).toMatch(/^fe:/);
      expect(await macOf(bridge)).toBe('fa:00:00:00:00:01');
      await ip('ip', ['addr', 'add', '10.213.0.1/24', 'dev', bridge]);
      expect(await retry(60_000, () => transact('10.213.0.10', 7000, 'INC hits'))).toBe('1');
      expect(await transact('10.213.0.10', 7000, 'INC hits')).toBe('2');

      await supervisor.delete('netty', { timeoutMs: 5_000 });
      await expect(ip('ip', ['link', 'show', 'dev', tap])).rejects.toThrow();
    } finally {
      await ip('ip', ['link', 'del', 'dev', bridge]).catch(() => undefined);
      await ip('ip', ['link', 'del', 'dev', uplink]).catch(() => undefined);
    }
  },
  TEST_TIMEOUT_MS,
);

test(
  'a NIC whose tap cannot join the bridge fails the launch: Failed with LaunchFailed, the tap released',
  async () => {
    const ip = promisify(execFile);
    // The bridge's name is taken by a device that is not a bridge, so no tap can be enslaved to it.
    const bridge = `tfail${process.pid % 10000}`;
    await ip('ip', ['tuntap', 'add', 'dev', bridge, 'mode', 'tap']);
    const supervisor = new GuestSupervisor({ ...options, network: new BridgeNetwork('node-f', bridge) });
    supervisors.push(supervisor);
    try {
      const guest = { ...spec('mike', '4a14', 128), nics: [{ mac: '52:54:00:21:30:14' }] };
      const error = await supervisor.create(guest).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(GuestStartError);
      const status = supervisor.get('mike');
      expect(status).toMatchObject({ phase: 'Failed', reason: 'LaunchFailed' });
      expect(status?.message).toMatch(/^QEMU could not be launched: .*master/);
      expect(status?.pid).toBeUndefined();
      expect(await findGuestQemus(options.stateRoot)).toEqual([]);
      await expect(ip('ip', ['link', 'show', 'dev', tapName('node-f', 'mike', 0)])).rejects.toThrow();
      await supervisor.delete('mike');
    } finally {
      await ip('ip', ['link', 'del', 'dev', bridge]).catch(() => undefined);
    }
  },
  TEST_TIMEOUT_MS,
);
