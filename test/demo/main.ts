// `npm run demo`: a local Tern cluster (real kube-apiserver + etcd, two hypervisor-node daemons, the operator), a
// VirtualMachine running the test guest's durable transaction service (each transaction acknowledged once it is on
// the VM's data disk, a shared raw image), a client issuing transactions continuously, and a live migration of the
// VM with `kubectl tern migrate --wait` while the client keeps going. Prints the phases, the transactions-per-second
// chart with the freeze marked (also written as SVG) and a summary, with the check that every acknowledged
// transaction is in the log the guest reads back from its disk after the migration. The cluster is
// the one `npm run cluster -- up` brings up: reused when it is up, brought up otherwise, and left up afterwards.
// `--down` removes it instead; `--svg PATH` says where the chart goes (default ./demo-tps.svg); `--dir DIR` and
// `--name NAME` select another cluster than the default one (the end-to-end test uses its own).
import { spawn } from 'node:child_process';
import { truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Migration, VirtualMachine } from '../../crds/index.js';
import { AgentClient } from '../../guest/host/agent-client.js';
import { startDurableClient } from '../../guest/host/durable-client.js';
import { checkDurability } from '../../guest/host/txlog.js';
import { testGuestImages, type TestGuestImages } from '../fixtures/test-guest.js';
import { kubeBinary } from '../harness/control-plane.js';
import { DEFAULT_CLUSTER_NAME, defaultClusterDir, readState } from '../local-cluster/cluster-state.js';
import {
  CannotHealError,
  downCluster,
  healCluster,
  openCluster,
  upCluster,
  type LocalCluster,
} from '../local-cluster/local-cluster.js';
import { PLUGIN_DIR, usageHint } from '../local-cluster/usage.js';
import { CHART_MAX_WIDTH, svgChart, terminalChart } from './chart.js';
import { gapsOf, longestGap, throughputSeries } from './throughput.js';

const NODES = ['node-a', 'node-b'];
const SERVICE_PORT = 7000;
const BUCKET_MS = 100;
/** A pause between two of the client's transactions this long is marked in the chart as a gap. */
const GAP_MS = 200;
/** The guest's transaction log disk: a raw image in the cluster's image root (namespace default), which both nodes see. */
const LOG_DISK_MIB = 256;
/** Bound of the demo's client; it is stopped a few seconds after the migration. */
const CLIENT_MAX_MS = 15 * 60_000;
const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
};
const svgPath = flag('--svg') ?? join(process.cwd(), 'demo-tps.svg');
const clusterDir = resolve(flag('--dir') ?? defaultClusterDir());
const clusterName = flag('--name') ?? DEFAULT_CLUSTER_NAME;

const say = (line: string): void => console.log(line);
const wallToPerf = (iso: string): number => Date.parse(iso) - Date.now() + performance.now();

async function getJson<T>(cluster: LocalCluster, ...args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectl(['get', ...args, '-o', 'json'])) as T;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await sleep(200);
  }
}

function vmManifest(images: TestGuestImages, guestIp: string, logDisk: string): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'demo', namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '512Mi',
      boot: {
        kernel: {
          path: images.kernel,
          initrdPath: images.initrd,
          // A busy guest: 256 MiB working set, 5000 pages dirtied per second, the transaction service on eth0
          // with its log on the data disk (/dev/vda).
          cmdline:
            `panic=-1 tern.wss_mib=256 tern.dirty_pps=5000 tern.ip=${guestIp}/24 tern.port=${SERVICE_PORT} ` +
            'tern.txlog=/dev/vda',
        },
      },
      // Both nodes of the local cluster are on this host: the image is shared storage, the memory moves.
      disks: [{ name: 'txlog', path: logDisk, format: 'raw', storage: 'shared' }],
      network: { macAddress: '52:54:00:21:37:10' },
    },
  } as VirtualMachine;
}

/**
 * Migrates the VM the way a user would: `kubectl tern migrate demo --to TARGET --wait`, through the real kubectl
 * with the plugin on the PATH, writing to the demo's own stdout: on a terminal its live line (progress bar,
 * throughput) is redrawn in place, in a pipe or file it prints plain progress lines. Returns the finished Migration.
 */
async function migrate(cluster: LocalCluster, target: string): Promise<Migration> {
  const args = ['tern', 'migrate', 'demo', '--to', target, '--wait'];
  say(`\n$ kubectl ${args.join(' ')}`);
  const before = new Set((await migrationsOfDemo(cluster)).map((m) => m.metadata.name));
  const child = spawn(kubeBinary('kubectl'), [...args, '--kubeconfig', cluster.kubeconfig], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PATH: `${PLUGIN_DIR}:${process.env.PATH ?? ''}` },
  });
  await new Promise((resolve) => child.once('exit', resolve));
  const created = (await migrationsOfDemo(cluster)).filter((m) => !before.has(m.metadata.name));
  if (created.length !== 1)
    throw new Error(`kubectl tern created ${created.length} Migrations of demo, not one`);
  return created[0]!;
}

async function migrationsOfDemo(cluster: LocalCluster): Promise<Migration[]> {
  const list = await getJson<{ items: Migration[] }>(cluster, 'migrations', '--namespace', 'default');
  return list.items.filter((migration) => migration.spec.vmName === 'demo');
}

/**
 * The cluster that is up in clusterDir; one that is partly down gets what is down started (healCluster); one that
 * cannot be healed is removed; then a new one is brought up there. A VM left by an earlier demo run goes first (its
 * finalizer stops the guest).
 */
async function clusterUp(): Promise<LocalCluster> {
  const log = (line: string) => say(`cluster: ${line}`);
  let cluster = openCluster(clusterDir);
  if (cluster !== undefined) {
    say(`cluster: reusing the cluster in ${clusterDir}`);
  } else if (readState(clusterDir) !== undefined) {
    cluster = await healCluster(clusterDir, { nodes: NODES, log }).catch(async (error: unknown) => {
      if (!(error instanceof CannotHealError)) throw error;
      say(`cluster: ${error.message}: removing it`);
      await downCluster(clusterDir, clusterName);
      return undefined;
    });
  }
  if (cluster === undefined) return upCluster({ dir: clusterDir, name: clusterName, nodes: NODES, log });
  await cluster.kubectl([
    'delete',
    'virtualmachine',
    'demo',
    '--ignore-not-found',
    '--wait',
    '--timeout=120s',
  ]);
  return cluster;
}

if (process.argv.includes('--down')) {
  const removed = await downCluster(clusterDir, clusterName);
  say(removed.length === 0 ? 'nothing to remove' : removed.map((what) => `removed ${what}`).join('\n'));
  process.exit(0);
}

const demoStart = performance.now();
let failed = false;
try {
  const cluster = await clusterUp();
  if (cluster.state.subnet === undefined) {
    throw new Error(
      'the demo needs the network-namespace cluster (run it as root): in loopback mode the client cannot reach the guest across nodes',
    );
  }
  const GUEST_IP = `${cluster.state.subnet}.100`;
  const images = await testGuestImages();
  // A blank log for this run (the VM of an earlier run is gone: clusterUp deleted it and waited).
  const logDisk = join(cluster.state.imageRoot, 'default', 'demo-txlog.raw');
  await writeFile(logDisk, '');
  await truncate(logDisk, LOG_DISK_MIB * 2 ** 20);
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(vmManifest(images, GUEST_IP, logDisk)));
  say(
    '\n$ kubectl apply -f vm.yaml   # VirtualMachine demo: 512 MiB, busy, durable transaction service on a shared disk',
  );
  const vm = await until('VM demo Running', 120_000, async () => {
    const current = await getJson<VirtualMachine>(cluster, 'virtualmachine', 'demo');
    return current.status?.phase === 'Running' ? current : undefined;
  });
  const source = vm.status!.node!;
  const target = NODES.find((node) => node !== source)!;
  say(await cluster.kubectl(['get', 'tern', '-o', 'wide']));

  const client = startDurableClient({
    name: 'demo',
    endpoint: () => ({ host: GUEST_IP, port: SERVICE_PORT }),
    durationMs: CLIENT_MAX_MS,
  });
  const completions = (): number[] => client.log.acks.map((ack) => ack.atMs);
  await until('the transaction service', 120_000, async () =>
    client.log.acks.length > 0 ? true : undefined,
  );
  const clientStart = client.log.acks[0]!.atMs;
  say(`client: transactions flowing to ${GUEST_IP}:${SERVICE_PORT}`);
  await sleep(3_000);

  const migrationStart = performance.now();
  const migration = await migrate(cluster, target);
  const migrationEnd = performance.now();
  if (process.stdout.isTTY) process.stdout.write('\n');
  await sleep(3_000);
  await client.stop();
  // The chart ends with the last completed transaction, not in a bucket the stopped client left empty.
  const clientEnd = client.log.acks.at(-1)!.atMs;

  const status = migration.status!;
  const timings = status.phaseTimings ?? [];
  const timing = (phase: string) => timings.find((entry) => entry.phase === phase);
  const quiesce = timing('Quiescing');
  const freezing = timing('Freezing');
  const freezeFrom = quiesce?.startedAt ?? freezing?.startedAt;
  const freeze =
    freezeFrom !== undefined && freezing?.startedAt !== undefined
      ? {
          fromMs: wallToPerf(freezeFrom) - clientStart,
          toMs: wallToPerf(freezing.startedAt) + (freezing.durationMs ?? 0) - clientStart,
        }
      : undefined;
  // Each start converted once: two conversions differ by the clocks' drift in between, which would give a 0 ms
  // phase a length.
  const phases = timings.flatMap(({ phase, startedAt, durationMs }) => {
    if (startedAt === undefined || durationMs === undefined) return [];
    const fromMs = wallToPerf(startedAt) - clientStart;
    return [{ name: phase, fromMs, toMs: fromMs + durationMs }];
  });
  const chart = {
    series: throughputSeries(completions(), clientStart, clientEnd, BUCKET_MS),
    bucketMs: BUCKET_MS,
    freeze,
    migration: { fromMs: migrationStart - clientStart, toMs: migrationEnd - clientStart },
    phases,
    gaps: gapsOf(completions(), clientStart, GAP_MS),
  };
  say('');
  say(terminalChart(chart, (process.stdout.isTTY && process.stdout.columns) || CHART_MAX_WIDTH));
  await writeFile(svgPath, svgChart(chart, `Tern live migration of VM demo ${source} → ${target}`));

  let verify = 'not run';
  let durability = 'not checked';
  let outOfOrder = 0;
  if (status.phase === 'Succeeded') {
    const agent = await AgentClient.connect(
      join(cluster.node(target).stateDir, vm.metadata.uid!, 'agent.sock'),
      {
        timeoutMs: 10_000,
      },
    );
    const result = await agent.verify(60_000);
    verify = result.ok ? `OK (${result.pages} pages, ${result.writes} writes)` : `FAILED: ${result.detail}`;
    failed ||= !result.ok;
    // The log as the guest reads it back from its disk, on the target, against every acknowledgement.
    const report = checkDurability((await agent.readTxLog()).records, [client.log]);
    agent.close();
    durability = report.text.split('\n').join('\n                    ');
    outOfOrder = report.outOfOrder.length + report.moved.length + report.duplicated.length;
    failed ||= !report.ok;
  }
  const gap = longestGap(completions(), migrationStart, migrationEnd + 2_000);
  const after = await getJson<VirtualMachine>(cluster, 'virtualmachine', 'demo');
  say('\nsummary');
  say(
    `  VM node           ${source} → ${after.status?.node} (epoch ${vm.status?.epoch} → ${after.status?.epoch})`,
  );
  say(
    `  result            ${status.phase}${status.failureReason ? ` (${status.failureReason}: ${status.message})` : ''}`,
  );
  for (const entry of timings) {
    if (entry.durationMs !== undefined)
      say(`  ${entry.phase.padEnd(17)} ${String(entry.durationMs).padStart(6)} ms`);
  }
  say(`  QEMU downtime     ${status.downtime?.qemuMs ?? '?'} ms`);
  say(`  client's longest gap between transactions: ${gap.toFixed(0)} ms`);
  // A transaction may fail (and the client reconnect) only while the migration runs; anything else is a defect.
  // Connection attempts before the guest's service first answered are not transactions.
  const failures = client.log.errors.filter((e) => e.atMs > clientStart);
  const outside = failures.filter((e) => e.atMs < migrationStart || e.atMs > migrationEnd);
  say(
    `  failed transactions: ${failures.length} (${outside.length} outside the migration), ` +
      `out of order: ${outOfOrder}`,
  );
  for (const error of failures) {
    say(`    at ${((error.atMs - migrationStart) / 1000).toFixed(2)} s after apply: ${error.message}`);
  }
  say(
    `  total time        ${((migrationEnd - migrationStart) / 1000).toFixed(2)} s (kubectl tern migrate → ${status.phase})`,
  );
  say(`  bytes moved       ${((status.progress?.transferredBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`);
  say(`  integrity         ${verify}`);
  say(`  durability        ${durability}`);
  say(`  chart             ${svgPath}`);
  say(`  demo wall time    ${((performance.now() - demoStart) / 1000).toFixed(1)} s`);
  failed ||= status.phase !== 'Succeeded';
  const down = clusterDir === defaultClusterDir() ? '' : ` --dir ${clusterDir} --name ${clusterName}`;
  say(
    `\nThe cluster stays up with the VM demo on ${after.status?.node}. Try more:\n${usageHint(cluster.state)}`,
  );
  say(`  npm run demo -- --down${down}        # removes the cluster`);
} catch (error) {
  failed = true;
  console.error(`demo failed: ${(error as Error).message}`);
}
process.exit(failed ? 1 : 0);
