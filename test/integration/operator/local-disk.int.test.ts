// VirtualMachines with `storage: local` disks migrating through the API: a real kube-apiserver, the real operator
// process, two real daemons and QEMU (TCG). Each daemon runs in a mount namespace of its own in which its own
// directory (<work>/a-disks, <work>/b-disks) is bind-mounted over the namespace's image directory
// (<work>/namespaces/default), as in test/harness/local-disk-nodes.ts: the same disk path names a different file on
// each "node", and a test reads each node's file through its own directory. A qcow2 overlay's base lies under a
// shared image root both daemons read.
//
// The guests keep a transaction log on their local disk and commit to it (guest/host/durable-client.ts) while they
// migrate; after every migration the log read back on the new node holds every acknowledged transaction, in order
// (checkDurability). Where the VM's disk says `sourceCopyAfterMigration: Retain`, the source's copy, moved aside at
// the hand-over, is the disk as it was at the switchover: the target's copy must hold exactly its log, followed only
// by transactions committed later.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { HypervisorNode, Migration, VirtualMachine } from '../../../crds/index.js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { startDurableClient, type DurableClient } from '../../../guest/host/durable-client.js';
import {
  SLOT_SIZE,
  checkDurability,
  encodeHeader,
  encodeRecord,
  parseTxLogImage,
  type ClientRecord,
  type TxRecord,
} from '../../../guest/host/txlog.js';
import type { GuestControlClient } from '../../../proto/index.js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import { controlClient } from '../../harness/control-client.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { guestDirOfVm } from '../../harness/guest-lookup.js';
import { condition, eventually, guestOn, kubectlOn, testDaemonArgs } from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import { letQemuUserThrough, qemuUserArgs } from '../../harness/qemu-user.js';

const run = promisify(execFile);
const CRDS = fileURLToPath(new URL('../../../crds/generated/', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/virtualmachine-local-disk.yaml', import.meta.url));
const KUBECTL_TERN = fileURLToPath(new URL('../../../cli/bin/kubectl-tern', import.meta.url));
const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const MiB = 2 ** 20;

let cp: ControlPlane;
let work: string;
/** The disks' directory as the guests name it (each daemon sees its own node's directory there). */
let shared: string;
let bases: string;
let certs: DevCerts;
let images: TestGuestImages;
let operator: OperatorProcess;
const daemons = {} as Record<NodeName, DaemonProcess>;
const controls = {} as Record<NodeName, GuestControlClient>;
const agents: AgentClient[] = [];
const workloads: DurableClient[] = [];
const { kubectl, apply, getJson, eventReasons } = kubectlOn(() => cp);

const stateDir = (node: NodeName) => join(work, node.slice(-1));
/** A node's own directory behind `shared`. */
const disksOf = (node: NodeName) => join(work, `${node.slice(-1)}-disks`);
const other = (node: NodeName): NodeName => (node === 'node-a' ? 'node-b' : 'node-a');

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );
const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

const getVm = (name: string) => getJson<VirtualMachine>('virtualmachine', name);
const getMigration = (name: string) => getJson<Migration>('migration', name);

const migrationIn = (name: string, phases: string[], ms = 180_000) =>
  eventually(
    `${name} in ${phases.join('|')}`,
    async () => {
      const migration = await getMigration(name);
      return phases.includes(migration.status?.phase ?? '') ? migration : undefined;
    },
    ms,
    250,
  );

/** A VM on node A whose only disk, `disk`, is a local one at <namespace dir>/<file>; its log is that disk. */
function diskVm(
  name: string,
  disk: { file: string; format: 'raw' | 'qcow2'; sourceCopyAfterMigration?: 'Retain' },
  txlog = true,
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      placement: { nodeName: 'node-a' },
      boot: {
        kernel: {
          path: images.kernel,
          initrdPath: images.initrd,
          cmdline: [
            ...images.cmdline,
            'tern.dirty_pps=1000',
            'tern.ip=10.0.2.15/24',
            ...(txlog ? ['tern.txlog=/dev/vda'] : []),
          ].join(' '),
        },
      },
      disks: [
        {
          name: 'log',
          path: join(shared, disk.file),
          format: disk.format,
          storage: 'local',
          ...(disk.sourceCopyAfterMigration
            ? { sourceCopyAfterMigration: disk.sourceCopyAfterMigration }
            : {}),
        },
      ],
    },
  } as VirtualMachine;
}

async function agentOn(node: NodeName, vm: string): Promise<AgentClient> {
  const agent = await AgentClient.connect(join(await guestDirOfVm(stateDir(node), vm), 'agent.sock'), {
    timeoutMs: 30_000,
  });
  agents.push(agent);
  await agent.waitReady(120_000);
  return agent;
}

/** Where the guest's TCP service is reached now: the forwarded port on the node its record names. */
async function servicePort(vm: string): Promise<number> {
  const node = (await getVm(vm)).status!.node as NodeName;
  const guest = await guestOn(controls[node], vm);
  const port = guest?.nics[0]?.user?.hostPort;
  if (!port) throw new Error(`no user-network port for ${vm} on ${node}`);
  return port;
}

/** A durable client of the guest (it follows the guest across nodes), once it has `atLeast` acknowledgements. */
async function commit(vm: string, name: string, atLeast = 20): Promise<DurableClient> {
  let port = await servicePort(vm);
  let looked = 0;
  const client = startDurableClient({
    name,
    endpoint: () => {
      // Asked at every reconnection: after a migration the guest is behind the other node's port.
      if (performance.now() - looked > 500) {
        looked = performance.now();
        void servicePort(vm).then(
          (fresh) => (port = fresh),
          () => undefined,
        );
      }
      return { host: '127.0.0.1', port };
    },
    durationMs: 400_000,
    retryMs: 200,
  });
  workloads.push(client);
  await moreAcks(client, atLeast);
  return client;
}

/** Waits until the client has `count` more acknowledgements than now (bounded by its errors and by time). */
async function moreAcks(client: DurableClient, count: number, ms = 120_000): Promise<void> {
  const target = client.log.acks.length + count;
  const deadline = Date.now() + ms;
  while (client.log.acks.length < target) {
    if (client.log.errors.length > 200 || Date.now() > deadline)
      throw new Error(
        `${client.log.acks.length}/${target} acknowledgements; last errors ${JSON.stringify(client.log.errors.slice(-3))}`,
      );
    await sleep(50);
  }
}

/** Polls both daemons while `during` runs; throws if the VM's guest ever ran on both. */
async function onOneNodeAtMost<T>(vm: string, during: () => Promise<T>): Promise<T> {
  let violation: string | undefined;
  let watching = true;
  const loop = (async () => {
    while (watching) {
      const phases = await Promise.all(
        NODES.map((node) => guestOn(controls[node], vm).then((g) => g?.phase)),
      );
      if (phases.every((phase) => phase === 'GUEST_PHASE_RUNNING')) violation ??= phases.join(', ');
      await sleep(100);
    }
  })();
  try {
    return await during();
  } finally {
    watching = false;
    await loop;
    expect(violation).toBeUndefined();
  }
}

/**
 * Migrates `vm` to the other node through a Migration while `client` commits, and checks what a successful
 * migration of a local disk leaves: Succeeded, disk bytes in its progress, the VM Running on the target only,
 * transactions acknowledged during it.
 */
async function migrate(vm: string, name: string, client: DurableClient): Promise<Migration> {
  const before = await getVm(vm);
  const from = before.status!.node as NodeName;
  const to = other(from);
  const ackedBefore = client.log.acks.length;
  const done = await onOneNodeAtMost(vm, async () => {
    await apply({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name, namespace: 'default' },
      spec: { vmName: vm, targetNode: to },
    });
    return migrationIn(name, ['Succeeded', 'Failed', 'Aborted']);
  });
  const progress = done.status?.progress;
  console.log(
    `${name} (${from} → ${to}): ${done.status?.phase} ${done.status?.failureReason ?? ''} ${done.status?.message}; ` +
      `disks ${((progress?.diskTransferredBytes ?? 0) / MiB).toFixed(1)}/${((progress?.diskTotalBytes ?? 0) / MiB).toFixed(1)} MiB, ` +
      `memory ${((progress?.transferredBytes ?? 0) / MiB).toFixed(1)} MiB, QEMU downtime ${done.status?.downtime?.qemuMs} ms; ` +
      `${client.log.acks.length - ackedBefore} transactions acknowledged meanwhile`,
  );
  expect(done.status).toMatchObject({ phase: 'Succeeded', sourceNode: from, targetNode: to });
  expect(condition(done, 'Completed')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  // The final progress holds the disks' final figures (docs/disks.md): everything to copy was copied. A copy and a
  // memory migration over within one progress interval once read 0 here (the stream dropped the last samples).
  expect(progress?.diskTotalBytes).toBeGreaterThan(0);
  expect(progress?.diskTransferredBytes).toBe(progress?.diskTotalBytes);
  const after = await getVm(vm);
  expect(after.status).toMatchObject({ phase: 'Running', node: to, epoch: before.status!.epoch! + 1 });
  expect((await guestOn(controls[to], vm))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOn(controls[from], vm)).toBeUndefined();
  // The workload committed while the migration ran.
  expect(client.log.acks.length - ackedBefore).toBeGreaterThan(0);
  return done;
}

/** Stops the durable client once it has `count` more acknowledgements (from wherever the guest runs now). */
async function settle(client: DurableClient, count = 20): Promise<ClientRecord> {
  await moreAcks(client, count);
  return client.stop();
}

/** The log the guest reads back from its disk holds every acknowledged transaction of `logs`, once, in order. */
async function expectDurable(agent: AgentClient, logs: ClientRecord[], label: string): Promise<TxRecord[]> {
  const { records } = await agent.readTxLog();
  const report = checkDurability(records, logs);
  console.log(`${label}: ${report.text}`);
  expect(report.ok).toBe(true);
  expect(report.acknowledged).toBeGreaterThan(0);
  return records;
}

/** The bytes of a raw or qcow2 image as the guest sees them (a qcow2 through its base). */
async function guestView(file: string, format: 'raw' | 'qcow2'): Promise<Buffer> {
  if (format === 'raw') return readFile(file);
  const flat = join(work, `flat-${Date.now()}-${Math.random().toString(16).slice(2)}.raw`);
  await run('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', file, flat]);
  try {
    return await readFile(flat);
  } finally {
    await rm(flat);
  }
}

/**
 * The source's retained copy is the disk as it was at the switchover, and the target's copy (read with its guest
 * stopped) continued from exactly there: the same bytes up to the end of the retained log, the same records, and
 * after them only transactions committed later. Returns the retained log's length.
 */
async function expectContinuedFrom(
  retained: string,
  target: string,
  format: 'raw' | 'qcow2',
): Promise<number> {
  const [atSwitchover, now] = await Promise.all([guestView(retained, format), guestView(target, format)]);
  expect(now.length).toBe(atSwitchover.length);
  const before = parseTxLogImage(atSwitchover).records;
  const after = parseTxLogImage(now).records;
  expect(before.length).toBeGreaterThan(0);
  const end = (before.at(-1)!.seq + 1) * SLOT_SIZE;
  expect(createHash('sha256').update(now.subarray(0, end)).digest('hex')).toBe(
    createHash('sha256').update(atSwitchover.subarray(0, end)).digest('hex'),
  );
  expect(after.slice(0, before.length)).toEqual(before);
  expect(after.length).toBeGreaterThan(before.length);
  return before.length;
}

async function setRunning(vm: string, running: boolean): Promise<void> {
  await kubectl('patch', 'virtualmachine', vm, '--type=merge', '-p', JSON.stringify({ spec: { running } }));
  await eventually(
    `${vm} ${running ? 'Running' : 'Stopped'}`,
    async () => ((await getVm(vm)).status?.phase === (running ? 'Running' : 'Stopped') ? true : undefined),
    120_000,
  );
}

/** An empty raw disk on node A, readable and writable by the QEMU user. */
async function blankRaw(file: string, sizeMiB: number): Promise<string> {
  const path = join(disksOf('node-a'), file);
  await writeFile(path, '', { mode: 0o666 });
  await chmod(path, 0o666);
  await truncate(path, sizeMiB * MiB);
  return path;
}

/** The log's seed: a header and 40 records of a client "seed", in the overlay's base (every node has it). */
const SEEDED = 40;
const seed: ClientRecord = {
  name: 'seed',
  acks: Array.from({ length: SEEDED }, (_, i) => ({ seq: i + 1, payload: `seed.${i}` })),
  unknown: [],
};

async function waitRunning(vm: string): Promise<void> {
  await eventually(
    `${vm} Running`,
    async () => ((await getVm(vm)).status?.phase === 'Running' ? true : undefined),
    180_000,
    250,
  );
}

beforeAll(async () => {
  const started = Date.now();
  work = await mkdtemp(join(tmpdir(), 'tldo-'));
  await letQemuUserThrough(work);
  shared = join(work, 'namespaces', 'default');
  bases = join(work, 'base');
  await mkdir(shared, { mode: 0o755, recursive: true });
  await chmod(join(work, 'namespaces'), 0o755);
  await mkdir(bases, { mode: 0o755 });
  for (const node of NODES) {
    await mkdir(disksOf(node), { mode: 0o755 });
    await chmod(disksOf(node), 0o755);
  }
  [cp, images] = await Promise.all([
    startControlPlane({ name: 'local-disk-operator' }),
    testGuestImages({ bootDisk: true }),
  ]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  const started2 = await Promise.all(
    NODES.map((node) =>
      startDaemonProcess(
        [
          ...testDaemonArgs({
            node,
            certs,
            stateDir: stateDir(node),
            imagesRoot: images.root,
            kubeconfig: cp.kubeconfigPath,
            leaseDurationSeconds: 6,
          }),
          ...['--shared-image-root', bases, '--image-root', join(work, 'namespaces')],
          // Four small guests on node A at once (the default capacity is the host's CPU count).
          ...['--cpu-capacity', '8'],
          ...qemuUserArgs(),
        ],
        { privateMount: { source: disksOf(node), target: shared } },
      ),
    ),
  );
  NODES.forEach((node, i) => {
    daemons[node] = started2[i]!;
    controls[node] = controlClient(`127.0.0.1:${daemons[node].grpcPort}`, {
      ca: certs.ca.cert,
      cert: certs.operator.cert,
      key: certs.operator.key,
    });
  });
  operator = await startOperatorProcess([
    ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0', '--no-leader-election'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--guest-poll-interval-ms', '1000', '--guest-stop-timeout-ms', '3000'],
    ...['--migration-progress-interval-ms', '500'],
  ]);
  for (const node of NODES) {
    await eventually(`${node} Ready`, async () => {
      const hvn = await getJson<HypervisorNode>('hypervisornode', node);
      return condition(hvn, 'Ready')?.status === 'True' ? hvn : undefined;
    });
  }

  // The disks, on node A: a blank raw log; a qcow2 overlay on a base that already holds a seeded log; a raw disk
  // full of random bytes (the guest that never writes it is deleted while it is copied).
  await blankRaw('rawlog.img', 32);
  const id = '00c0ffee00d15c02';
  const base = join(bases, 'txlog-base.raw');
  const image = Buffer.alloc(32 * MiB);
  Buffer.concat([encodeHeader(id), ...seed.acks.map((a) => encodeRecord(id, a.seq, a.payload))]).copy(image);
  await writeFile(base, image, { mode: 0o644 });
  const overlay = join(disksOf('node-a'), 'ovlog.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', overlay, '32M']);
  await chmod(overlay, 0o666);
  const doomed = join(disksOf('node-a'), 'doomed.img');
  await writeFile(doomed, randomBytes(48 * MiB), { mode: 0o666 });
  await chmod(doomed, 0o666);

  // Booted together (TCG is slow; the boots overlap).
  await apply(diskVm('rawvm', { file: 'rawlog.img', format: 'raw' }));
  await apply(diskVm('ovvm', { file: 'ovlog.qcow2', format: 'qcow2', sourceCopyAfterMigration: 'Retain' }));
  await apply(diskVm('doomed', { file: 'doomed.img', format: 'raw' }, false));
  await Promise.all(['rawvm', 'ovvm', 'doomed'].map(waitRunning));
  console.log(`setup: ${Date.now() - started} ms (control plane ${cp.startupMs} ms)`);
}, 400_000);

afterAll(async () => {
  await Promise.all(workloads.map((client) => client.stop()));
  agents.forEach((agent) => agent.close());
  for (const client of Object.values(controls)) client.close();
  await operator?.stop();
  await Promise.all(Object.values(daemons).map((daemon) => daemon.stop()));
  if (work) {
    for (const node of NODES) await killGuestsIn(stateDir(node));
    await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
  await cp?.stop();
});

test('a raw local disk migrates A → B → A through the API under commits; the second source copy is retained', async () => {
  const vm = 'rawvm';
  const file = 'rawlog.img';
  expect(await (await agentOn('node-a', vm)).txlog()).toMatchObject({ records: 0 });
  const there = await commit(vm, 'ab');

  await migrate(vm, 'raw-ab', there);
  // sourceCopyAfterMigration is Delete by default: A's copy went once B ran the guest, and nothing else is left.
  expect((await readdir(disksOf('node-a'))).filter((f) => f.startsWith(file))).toEqual([]);
  // Read back with the client stopped: every acknowledgement it received is then one the log must hold.
  const logAB = await settle(there);
  await expectDurable(await agentOn('node-b', vm), [logAB], 'raw A → B, read back on B');

  // Decided while the VM runs: B's copy is to be kept after the next migration.
  await kubectl(
    'patch',
    'virtualmachine',
    vm,
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'add', path: '/spec/disks/0/sourceCopyAfterMigration', value: 'Retain' }]),
  );
  const client = await commit(vm, 'ba');
  const back = await migrate(vm, 'raw-ba', client);
  const id = back.metadata.uid!;
  const retained = `${file}.tern-retained-${id}`;
  expect((await readdir(disksOf('node-b'))).filter((f) => f.startsWith(file))).toEqual([retained]);
  expect(back.status?.message).toContain(`disk log at ${join(shared, retained)}`);
  expect(await eventReasons('VirtualMachine', vm)).toContain('SourceCopyRetained');
  const logBA = await settle(client);
  const running = await expectDurable(
    await agentOn('node-a', vm),
    [logAB, logBA],
    'raw A → B → A, read back on A',
  );

  await setRunning(vm, false);
  const onA = join(disksOf('node-a'), file);
  const kept = await expectContinuedFrom(join(disksOf('node-b'), retained), onA, 'raw');
  const onDisk = parseTxLogImage(await readFile(onA)).records;
  expect(onDisk.slice(0, running.length)).toEqual(running);
  expect(checkDurability(onDisk, [logAB, logBA]).ok).toBe(true);
  console.log(`raw: ${kept} records in B's retained copy at the switchover, ${onDisk.length} on A now`);
}, 600_000);

test('a qcow2 overlay on a shared base migrates A → B → A; the retained copy on A does not block the way back', async () => {
  const vm = 'ovvm';
  const file = 'ovlog.qcow2';
  expect(await (await agentOn('node-a', vm)).txlog()).toMatchObject({ records: SEEDED });
  const there = await commit(vm, 'ov');

  const ab = await migrate(vm, 'ov-ab', there);
  const retained = `${file}.tern-retained-${ab.metadata.uid!}`;
  // A's overlay was moved aside (Retain): its path is free.
  expect((await readdir(disksOf('node-a'))).filter((f) => f.startsWith(file))).toEqual([retained]);
  const logAB = await settle(there);
  await expectDurable(await agentOn('node-b', vm), [seed, logAB], 'qcow2 A → B, read back on B');

  // Back to A, whose retained copy lies next to the path; B's copy is removed (Delete) this time.
  await kubectl(
    'patch',
    'virtualmachine',
    vm,
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'remove', path: '/spec/disks/0/sourceCopyAfterMigration' }]),
  );
  const client = await commit(vm, 'vo');
  await migrate(vm, 'ov-ba', client);
  expect((await readdir(disksOf('node-b'))).filter((f) => f.startsWith(file))).toEqual([]);
  expect((await readdir(disksOf('node-a'))).filter((f) => f.startsWith(file)).sort()).toEqual(
    [file, retained].sort(),
  );
  const logBA = await settle(client);
  await expectDurable(await agentOn('node-a', vm), [seed, logAB, logBA], 'qcow2 A → B → A, read back on A');

  await setRunning(vm, false);
  const onA = join(disksOf('node-a'), file);
  // The overlay on A is a new one on the same base: only the overlay moved.
  const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', onA])).stdout) as object;
  expect(info).toMatchObject({ format: 'qcow2', 'backing-filename': join(bases, 'txlog-base.raw') });
  await expectContinuedFrom(join(disksOf('node-a'), retained), onA, 'qcow2');
  const onDisk = parseTxLogImage(await guestView(onA, 'qcow2')).records;
  expect(onDisk.slice(0, SEEDED)).toEqual(seed.acks);
  expect(checkDurability(onDisk, [seed, logAB, logBA]).ok).toBe(true);
}, 600_000);

test('a VM deleted while its local disk is copied: the Migration ends with a reason, the target copy goes, the source disk stays', async () => {
  const vm = 'doomed';
  const file = 'doomed.img';
  const source = join(disksOf('node-a'), file);
  const before = await sha256(source);
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'doomed-ab', namespace: 'default' },
    // 48 MiB at 1 MiB/s: the copy runs for most of a minute.
    spec: { vmName: vm, targetNode: 'node-b', overrides: { bandwidth: '1Mi' } },
  });
  await eventually(
    'the disk copy under way',
    async () => {
      const migration = await getMigration('doomed-ab');
      return (migration.status?.progress?.diskTransferredBytes ?? 0) > 0 ? migration : undefined;
    },
    120_000,
    250,
  );
  expect(await exists(join(disksOf('node-b'), file))).toBe(true);
  await kubectl('delete', 'virtualmachine', vm, '--wait=false');

  const done = await migrationIn('doomed-ab', ['Succeeded', 'Failed', 'Aborted'], 120_000);
  console.log(`doomed-ab: ${done.status?.phase} ${done.status?.failureReason}: ${done.status?.message}`);
  expect(done.status?.phase).toBe('Aborted');
  expect(done.status?.failureReason).toBe('Cancelled');
  expect(done.status?.message).toMatch(/VirtualMachine is being deleted/);
  await eventually(
    'the VM gone',
    async () => {
      const result = await cp.kubectl(['get', 'virtualmachine', vm]);
      return result.code !== 0 && /NotFound/.test(result.stderr) ? true : undefined;
    },
    120_000,
  );
  for (const node of NODES) expect(await guestOn(controls[node], vm)).toBeUndefined();
  // The target's partial copy is removed; the source's disk, which no deletion policy removes, is intact.
  expect((await readdir(disksOf('node-b'))).filter((f) => f.startsWith(file))).toEqual([]);
  expect((await readdir(disksOf('node-a'))).filter((f) => f.startsWith(file))).toEqual([file]);
  expect(await sha256(source)).toBe(before);
  // Nothing is left holding the Migration.
  expect((await getMigration('doomed-ab')).metadata.finalizers ?? []).toEqual([]);
}, 300_000);

test("the README's example: a VM booting from a local qcow2 overlay migrates with kubectl tern migrate --wait", async () => {
  // The example as written, its host paths moved to this test's image roots.
  const manifest = (await readFile(EXAMPLE, 'utf8'))
    .replaceAll('/var/lib/tern-images/namespaces/default', shared)
    .replaceAll('/var/lib/tern-images/shared', bases);
  // The example's preparation: the test image as the golden one under the shared image root (a copy: the QEMU
  // user cannot reach the cache under /root), and the overlay on node-a.
  await copyFile(images.bootDisk, join(bases, 'boot.raw'));
  await chmod(join(bases, 'boot.raw'), 0o644);
  const overlay = join(disksOf('node-a'), 'vm03.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(bases, 'boot.raw'), '-F', 'raw', overlay]);
  await chmod(overlay, 0o666);
  await apply(manifest);
  await waitRunning('vm03');
  const { stdout } = await run(KUBECTL_TERN, ['migrate', 'vm03', '--to', 'node-b', '--wait'], {
    env: { ...process.env, KUBECONFIG: cp.kubeconfigPath },
    timeout: 240_000,
  });
  console.log(`kubectl tern migrate vm03 --to node-b --wait:\n${stdout}`);
  // The guest never writes its boot disk: the overlay holds no data of its own, and no disk bytes are shown.
  expect(stdout).toMatch(/Guest migrated successfully\./);
  expect((await getVm('vm03')).status).toMatchObject({ phase: 'Running', node: 'node-b' });
  expect((await guestOn(controls['node-b'], 'vm03'))?.phase).toBe('GUEST_PHASE_RUNNING');
  expect(await guestOn(controls['node-a'], 'vm03')).toBeUndefined();
  expect((await readdir(disksOf('node-a'))).filter((f) => f.startsWith('vm03'))).toEqual([]);
  expect(await exists(join(disksOf('node-b'), 'vm03.qcow2'))).toBe(true);
}, 300_000);
