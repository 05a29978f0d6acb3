// Migration through the tunnel vs direct, same busy guest, real QEMU:
//   npx tsx test/bench/tunnel.bench.ts [--runs 5] [--transport tls|grpc] [--multifd 0] [--dirty-pps 20000]
//
// One guest (the project test guest, $TERN_CACHE/guest) boots once and is then migrated back and forth in a
// chain, alternating (a) direct QEMU→QEMU over a unix socket and (b) source QEMU → source daemon process →
// link → target daemon process → target QEMU. After every migration the target must be running and the guest
// agent must VERIFY its working set. Prints medians and, last, `total_ratio=<x> downtime_delta_ms=<y>`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { newMigrationToken } from '../../hypervisor-node/src/migration/tunnel/token.js';
import { Qmp } from './qmp.js';
import type { DaemonMessage, DaemonRequest } from './tunnel-daemon.js';

const options = new Command()
  .option('--runs <n>', 'migrations per mode', '5')
  .option('--transport <name>', 'link transport of the tunnel: tls | grpc', 'tls')
  .option('--memory-mib <n>', 'guest RAM', '1024')
  .option('--wss-mib <n>', 'working set the guest agent fills and dirties', '768')
  .option('--dirty-pps <n>', 'pages per second the guest agent rewrites', '20000')
  .option('--downtime-limit-ms <n>', 'QEMU downtime-limit', '50')
  .option('--multifd <n>', 'multifd channels (0 = off)', '0')
  .option('--max-in-flight-kib <n>', 'tunnel buffer bound per channel direction', '1024')
  .option('--warmup <n>', 'uncounted direct migrations first', '1')
  .parse()
  .opts<{
    runs: string;
    transport: 'tls' | 'grpc';
    memoryMib: string;
    wssMib: string;
    dirtyPps: string;
    downtimeLimitMs: string;
    multifd: string;
    maxInFlightKib: string;
    warmup: string;
  }>();

const guestDir = join(process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern'), 'guest');
const kernel = join(guestDir, 'vmlinuz');
const initrd = join(guestDir, 'initramfs.img');
if (!existsSync(kernel) || !existsSync(initrd)) {
  console.error(`test guest not built (${guestDir}); run: bash guest/build.sh`);
  process.exit(2);
}

const multifd = Number(options.multifd);
const channels = 1 + multifd;
const work = mkdtempSync(join(tmpdir(), 'tern-bench-'));
const uuid = randomUUID();
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connectRetry(path: string, timeoutMs = 30_000): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** The guest agent's line channel (second serial port). */
class Agent {
  readonly #lines: Interface;
  readonly #waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  constructor(readonly socket: Socket) {
    this.#lines = createInterface({ input: socket });
    this.#lines.on('line', (line) => {
      const i = this.#waiters.findIndex((w) => line.startsWith(w.prefix));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(line);
    });
  }
  waitLine(prefix: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`agent: no "${prefix}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({ prefix, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }
  send(command: string): void {
    this.socket.write(command + '\n');
  }
  close(): void {
    this.socket.destroy();
  }
}

interface Vm {
  n: number;
  dir: string;
  process: ChildProcess;
  qmp: Qmp;
  exited: Promise<unknown>;
}

let vmCount = 0;
async function startVm(incoming: boolean): Promise<Vm> {
  const n = vmCount++;
  const dir = join(work, `vm${n}`);
  mkdirSync(dir);
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-smp', '1', '-m', options.memoryMib,
    '-uuid', uuid, '-nodefaults', '-no-user-config', '-display', 'none',
    '-kernel', kernel, '-initrd', initrd,
    '-append', `console=ttyS0 quiet panic=-1 tern.wss_mib=${options.wssMib} tern.dirty_pps=${options.dirtyPps}`,
    '-serial', `file:${dir}/console.log`,
    '-chardev', `socket,id=agent,path=${dir}/agent.sock,server=on,wait=off`, '-serial', 'chardev:agent',
    '-qmp', `unix:${dir}/qmp.sock,server=on,wait=off`,
    ...(incoming ? ['-incoming', 'defer'] : []),
  ]; // prettier-ignore
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve)).finally(() => children.delete(child));
  (await connectRetry(`${dir}/qmp.sock`)).destroy(); // wait until QEMU listens
  const qmp = await Qmp.connect(`${dir}/qmp.sock`);
  return { n, dir, process: child, qmp, exited };
}

async function stopVm(vm: Vm): Promise<void> {
  await vm.qmp.execute('quit').catch(() => undefined);
  vm.qmp.close();
  await Promise.race([vm.exited, sleep(5000).then(() => vm.process.kill('SIGKILL'))]);
}

/** A daemon process of the tunnel, driven over stdio. */
class Daemon {
  readonly #child: ChildProcess;
  readonly #handlers = new Map<string, (m: DaemonMessage) => void>();
  readonly listening: Promise<number>;
  constructor(role: 'source' | 'target') {
    const script = fileURLToPath(new URL('./tunnel-daemon.ts', import.meta.url));
    this.#child = spawn(
      process.execPath,
      ['--import', 'tsx', script, '--role', role, '--transport', options.transport],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    children.add(this.#child);
    let onListening: (port: number) => void = () => undefined;
    this.listening = new Promise((resolve) => (onListening = resolve));
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as DaemonMessage;
      if ('listening' in message) return onListening(message.listening);
      const key = `${message.id}:${'ready' in message ? 'ready' : 'done'}`;
      this.#handlers.get(key)?.(message);
    });
  }
  request(request: DaemonRequest): {
    ready: Promise<void>;
    done: Promise<Extract<DaemonMessage, { done: true }>>;
  } {
    const ready = new Promise<void>((resolve) => this.#handlers.set(`${request.id}:ready`, () => resolve()));
    const done = new Promise<Extract<DaemonMessage, { done: true }>>((resolve) =>
      this.#handlers.set(`${request.id}:done`, (m) => resolve(m as Extract<DaemonMessage, { done: true }>)),
    );
    this.#child.stdin!.write(JSON.stringify(request) + '\n');
    return { ready, done };
  }
}

interface Outcome {
  mode: 'direct' | 'tunnel';
  totalMs: number;
  downtimeMs: number;
  setupMs: number;
  transferredBytes: number;
  mbPerS: number;
  maxInFlightBytes?: number;
}

const CAPABILITIES = [
  { capability: 'events', state: true },
  { capability: 'return-path', state: true },
  ...(multifd > 0 ? [{ capability: 'multifd', state: true }] : []),
];

let migrationId = 0;
async function migrate(
  src: Vm,
  mode: 'direct' | 'tunnel',
  daemons?: [Daemon, Daemon],
): Promise<[Vm, Outcome]> {
  const id = migrationId++;
  const dst = await startVm(true);
  const incomingSocket = `${dst.dir}/in.sock`;
  const params = multifd > 0 ? { 'multifd-channels': multifd } : {};
  await dst.qmp.execute('migrate-set-capabilities', { capabilities: CAPABILITIES });
  if (multifd > 0) await dst.qmp.execute('migrate-set-parameters', params);
  await dst.qmp.execute('migrate-incoming', { uri: `unix:${incomingSocket}` });

  await src.qmp.execute('migrate-set-capabilities', { capabilities: CAPABILITIES });
  await src.qmp.execute('migrate-set-parameters', {
    ...params,
    'max-bandwidth': 100_000_000_000, // far above any rate here: QEMU's 128 MiB/s default would be the bottleneck
    'downtime-limit': Number(options.downtimeLimitMs),
  });

  let uri = `unix:${incomingSocket}`;
  let tunnelDone: Promise<Extract<DaemonMessage, { done: true }>[]> | undefined;
  if (mode === 'tunnel') {
    const [source, target] = daemons!;
    const token = newMigrationToken();
    const sourceSocket = join(work, `tunnel-${id}.sock`);
    const maxInFlightBytes = Number(options.maxInFlightKib) * 1024;
    // tls: the source daemon dials the target's link listener; grpc: the target daemon dials the source's server.
    const [sourcePort, targetPort] =
      options.transport === 'tls' ? [undefined, await target.listening] : [await source.listening, undefined];
    const out = source.request({
      id,
      token,
      channels,
      socketPath: sourceSocket,
      peerPort: targetPort,
      maxInFlightBytes,
    });
    await out.ready;
    const into = target.request({
      id,
      token,
      channels,
      socketPath: incomingSocket,
      peerPort: sourcePort,
      maxInFlightBytes,
    });
    await into.ready;
    tunnelDone = Promise.all([out.done, into.done]);
    uri = `unix:${sourceSocket}`;
  }

  src.qmp.events.splice(0); // this VM was the target of the previous migration: only the new events count
  const finished = src.qmp.waitEvent('MIGRATION', (e) =>
    ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
  );
  await src.qmp.execute('migrate', { uri });
  const status = String((await finished).data?.status);
  const info = await src.qmp.execute<{
    status: string;
    'total-time'?: number;
    downtime?: number;
    'setup-time'?: number;
    ram?: { transferred: number };
    'error-desc'?: string;
  }>('query-migrate');
  if (status !== 'completed')
    throw new Error(`${mode} migration ${id} ${status}: ${info['error-desc'] ?? ''}`);

  await dst.qmp.waitEvent('MIGRATION', (e) => e.data?.status === 'completed');
  await dst.qmp.execute('cont');
  const { status: runState } = await dst.qmp.execute<{ status: string }>('query-status');
  if (runState !== 'running') throw new Error(`target of migration ${id} is ${runState}, not running`);
  let maxInFlightBytes: number | undefined;
  if (tunnelDone) {
    const reports = await tunnelDone;
    const failed = reports.find((r) => r.error);
    if (failed) throw new Error(`tunnel of migration ${id}: ${failed.error}`);
    maxInFlightBytes = Math.max(
      ...reports.flatMap((r) => r.stats.flatMap((s) => [s.toTarget.maxInFlight, s.toSource.maxInFlight])),
    );
  }
  await stopVm(src);

  const agent = new Agent(await connectRetry(`${dst.dir}/agent.sock`));
  const verdict = agent.waitLine('VERIFY ', 120_000);
  agent.send('VERIFY');
  const line = await verdict;
  agent.close();
  if (!line.startsWith('VERIFY OK')) throw new Error(`guest after migration ${id}: ${line}`);

  const totalMs = info['total-time']!;
  const transferredBytes = info.ram!.transferred;
  return [
    dst,
    {
      mode,
      totalMs,
      downtimeMs: info.downtime!,
      setupMs: info['setup-time']!,
      transferredBytes,
      mbPerS: transferredBytes / totalMs / 1000,
      ...(maxInFlightBytes !== undefined ? { maxInFlightBytes } : {}),
    },
  ];
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const runs = Number(options.runs);
  console.log(
    `guest: project test guest (${guestDir}), ${options.memoryMib} MiB RAM, agent wss ${options.wssMib} MiB, ` +
      `dirty ${options.dirtyPps} pages/s; transport ${options.transport}; multifd ${multifd}; ` +
      `downtime-limit ${options.downtimeLimitMs} ms; tunnel bound ${options.maxInFlightKib} KiB; ${runs} runs per mode`,
  );
  const daemons: [Daemon, Daemon] = [new Daemon('source'), new Daemon('target')];
  let vm = await startVm(false);
  const agent = new Agent(await connectRetry(`${vm.dir}/agent.sock`));
  const ready = await agent.waitLine('READY', 180_000);
  agent.close();
  console.log(`guest ${ready}`);

  // The first migration after boot is slower than all later ones in either mode (measured: 2.6 s vs ~1 s direct),
  // so it is not counted.
  for (let i = 0; i < Number(options.warmup); i++) {
    const [next, outcome] = await migrate(vm, 'direct', daemons);
    vm = next;
    console.log(
      `warm-up direct total ${outcome.totalMs} ms, downtime ${outcome.downtimeMs} ms (not counted)`,
    );
  }
  const outcomes: Outcome[] = [];
  // ABBA order, so a slow drift of the machine's load does not favour one mode.
  const order = Array.from({ length: runs * 2 }, (_, i): 'direct' | 'tunnel' =>
    i % 4 === 0 || i % 4 === 3 ? 'direct' : 'tunnel',
  );
  for (const mode of order) {
    const [next, outcome] = await migrate(vm, mode, daemons);
    vm = next;
    outcomes.push(outcome);
    console.log(
      `${mode.padEnd(6)} total ${outcome.totalMs} ms, downtime ${outcome.downtimeMs} ms, setup ${outcome.setupMs} ms, ` +
        `${(outcome.transferredBytes / 1e6).toFixed(0)} MB at ${outcome.mbPerS.toFixed(0)} MB/s` +
        (outcome.maxInFlightBytes !== undefined
          ? `, tunnel max in flight ${(outcome.maxInFlightBytes / 1024).toFixed(0)} KiB`
          : '') +
        ', VERIFY OK',
    );
  }
  await stopVm(vm);

  const of = (mode: Outcome['mode'], pick: (o: Outcome) => number): number =>
    median(outcomes.filter((o) => o.mode === mode).map(pick));
  // The machine is shared and noisy: show the spread next to each median.
  const range = (mode: Outcome['mode'], pick: (o: Outcome) => number): string => {
    const values = outcomes.filter((o) => o.mode === mode).map(pick);
    return `(${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
  };
  const row = (mode: Outcome['mode']): string =>
    `${mode.padEnd(6)} median total ${of(mode, (o) => o.totalMs)} ms ${range(mode, (o) => o.totalMs)}, ` +
    `downtime ${of(mode, (o) => o.downtimeMs)} ms ${range(mode, (o) => o.downtimeMs)}, ` +
    `throughput ${of(mode, (o) => o.mbPerS).toFixed(0)} MB/s ${range(mode, (o) => o.mbPerS)}`;
  console.log(row('direct'));
  console.log(row('tunnel'));
  const totalRatio = of('tunnel', (o) => o.totalMs) / of('direct', (o) => o.totalMs);
  const downtimeDelta = of('tunnel', (o) => o.downtimeMs) - of('direct', (o) => o.downtimeMs);
  const throughputRatio = of('tunnel', (o) => o.mbPerS) / of('direct', (o) => o.mbPerS);
  console.log(`throughput ratio tunnel/direct ${throughputRatio.toFixed(2)}`);
  console.log(`total_ratio=${totalRatio.toFixed(3)} downtime_delta_ms=${downtimeDelta.toFixed(1)}`);
  process.exit(0);
}

main().catch((error: Error) => {
  console.error(`bench failed: ${error.message}`);
  process.exit(1);
});
