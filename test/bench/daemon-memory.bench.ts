// How much memory the hypervisor-node daemon itself uses while it supervises N idle guests (default 10).
// Usage: npx tsx test/bench/daemon-memory.bench.ts [--guests N]
// Prints the daemon's resident set and V8 heap in use (from its own metrics) before any guest and with the guests
// running, and the per-guest increase; QEMU's own memory is not the daemon's and is not counted. Before each
// sample the daemon runs a full garbage collection (test/bench/gc-on-signal.ts): an idle daemon allocates too
// little for V8 to collect by itself, and its start-up garbage would otherwise count as memory in use.
// The empty node's RSS still holds pages freed after start-up that the OS has not taken back yet: compare heaps.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateDevCerts } from '../harness/certificates.js';
import { testGuestImages } from '../fixtures/test-guest.js';
import { controlClient, unary } from '../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../harness/daemon-process.js';

const flag = process.argv.indexOf('--guests');
const guests = flag === -1 ? 10 : Number(process.argv[flag + 1]);
if (!Number.isInteger(guests) || guests < 1) throw new Error('--guests takes a whole number of at least 1');

interface Memory {
  rss: number;
  heap: number;
}

async function memory(metricsPort: number): Promise<Memory> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    if (line === undefined) throw new Error(`the daemon exports no ${name}`);
    return Number(line.split(/\s+/)[1]);
  };
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes') };
}

/** Median of ten samples half a second apart, each after a full garbage collection in the daemon. */
async function settledMemory(daemon: DaemonProcess): Promise<Memory> {
  const samples: Memory[] = [];
  for (let i = 0; i < 10; i++) {
    process.kill(daemon.pid, 'SIGUSR2');
    await sleep(500);
    samples.push(await memory(daemon.metricsPort));
  }
  const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]!;
  return { rss: median(samples.map((m) => m.rss)), heap: median(samples.map((m) => m.heap)) };
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

const work = await mkdtemp(join(tmpdir(), 'tern-mem-'));
const stateDir = join(work, 'state');
const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-m' }]);
const images = await testGuestImages();
const daemon = await startDaemonProcess(
  loopbackDaemonArgs(
    { node: 'node-m', certs, stateDir, sharedImageRoot: images.root },
    ...['--network', 'user', '--stop-timeout-ms', '3000'],
  ),
  { nodeOptions: ['--expose-gc', '--import', fileURLToPath(new URL('gc-on-signal.ts', import.meta.url))] },
);
const client = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca: certs.ca.cert, ...certs.operator });
try {
  await sleep(5_000);
  const before = await settledMemory(daemon);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: guests }, (_, i) =>
      unary((done) =>
        client.createGuest(
          {
            spec: {
              name: `idle${i}`,
              uuid: `0b7a6c1e-0000-4000-8000-${String(i).padStart(12, '0')}`,
              cpus: 1,
              memoryMib: 128,
              boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['tern.wss_mib=16'] },
              disks: [],
              nics: [],
            },
          },
          done,
        ),
      ),
    ),
  );
  const createdMs = performance.now() - t0;
  // Let every guest boot and the daemon settle into its steady state (QMP sessions, pid polling, metrics).
  await sleep(20_000);
  const during = await settledMemory(daemon);
  console.log(`guests=${guests} all_created_ms=${createdMs.toFixed(0)}`);
  console.log(`daemon_rss_mib_idle_node=${mib(before.rss)} daemon_rss_mib_with_guests=${mib(during.rss)}`);
  console.log(
    `daemon_heap_mib_idle_node=${mib(before.heap)} daemon_heap_mib_with_guests=${mib(during.heap)}`,
  );
  console.log(`daemon_heap_kib_per_guest=${((during.heap - before.heap) / guests / 1024).toFixed(0)}`);
} finally {
  client.close();
  await daemon.stop();
  await killGuestsIn(stateDir);
  // A killed QEMU's exit shim may still be writing into its guest dir.
  await rm(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
}
