// The real daemon process with real mTLS certificates and real QEMU guests (TCG): who may call the control API,
// the guest lifecycle through it, WatchGuests, metrics, guests surviving a daemon restart, and user-mode
// networking as the API reports it.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type {
  GuestControlClient,
  GuestEvent__Output,
  GuestSpec,
  Guest__Output,
  NodeInfo__Output,
} from '../../../proto/index.js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { controlClient, unary } from '../../harness/control-client.js';
import {
  killGuestsIn,
  loopbackDaemonArgs,
  startDaemonProcess,
  type DaemonProcess,
} from '../../harness/daemon-process.js';

let work: string;
let stateDir: string;
let certs: DevCerts;
let foreignCerts: DevCerts;
let images: TestGuestImages;
let daemon: DaemonProcess;
let operator: GuestControlClient;
const clients: GuestControlClient[] = [];

function daemonArgs(): string[] {
  return loopbackDaemonArgs(
    { node: 'node-a', certs, stateDir, sharedImageRoot: images.root },
    // A short default stop timeout keeps DeleteGuest of a running guest quick.
    ...['--reserved-memory-mib', '1024', '--stop-timeout-ms', '3000'],
  );
}

function client(files: { cert?: string; key?: string }, ca = certs.ca.cert): GuestControlClient {
  const created = controlClient(`127.0.0.1:${daemon.grpcPort}`, { ca, ...files });
  clients.push(created);
  return created;
}

function guestSpec(name: string): GuestSpec {
  return {
    name,
    uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c01',
    cpus: 1,
    memoryMib: 256,
    boot: { kernel: images.kernel, initrd: images.initrd, cmdline: ['panic=-1', 'tern.wss_mib=16'] },
    disks: [],
    nics: [],
  };
}

async function expectCode(promise: Promise<unknown>, code: grpc.status): Promise<grpc.ServiceError> {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as grpc.ServiceError | undefined;
  expect(error).toBeDefined();
  expect(grpc.status[error!.code]).toBe(grpc.status[code]);
  return error!;
}

/** The value of one sample from the daemon's /metrics, found by name and labels (in any order). */
async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const sample = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => sample[key] === value)) return Number(match[3]);
  }
  return undefined;
}

/** Records every WatchGuests event from the start; `until` waits for one that matches. */
function record(stream: grpc.ClientReadableStream<GuestEvent__Output>) {
  const events: GuestEvent__Output[] = [];
  const waiters = new Set<() => void>();
  stream.on('data', (event: GuestEvent__Output) => {
    events.push(event);
    for (const wake of waiters) wake();
  });
  // The test ends its watches with cancel(), which surfaces as a CANCELLED error; anything else fails the test.
  stream.on('error', (error: grpc.ServiceError) => {
    if (error.code !== grpc.status.CANCELLED) throw error;
  });
  return {
    events,
    until(match: (event: GuestEvent__Output) => boolean, ms = 60_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!events.some(match)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(events.map(summary))}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

const summary = (event: GuestEvent__Output): string =>
  `${event.type}:${event.guest?.spec?.name ?? ''}:${event.guest?.phase ?? ''}`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-ctl-'));
  stateDir = join(work, 'state');
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  foreignCerts = generateDevCerts(join(work, 'foreign-pki'), []);
  images = await testGuestImages();
  daemon = await startDaemonProcess(daemonArgs());
  operator = client(certs.operator);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await daemon?.stop();
  if (stateDir) await killGuestsIn(stateDir);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('who may call the control API', () => {
  it('serves the operator certificate: node info and the guest list', async () => {
    const info = await unary<NodeInfo__Output>((done) => operator.getNodeInfo({}, done));
    expect(info).toMatchObject({
      nodeName: 'node-a',
      accelerator: 'ACCELERATOR_TCG',
      cpuModel: 'max',
      guestCount: 0,
      allocated: { cpus: 0, memoryMib: 0 },
      // Root may create taps: --network auto chose the bridge.
      network: { mode: 'NETWORK_MODE_BRIDGE', bridge: 'tern0', limitation: '' },
    });
    expect(info.qemuVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(info.capacity!.cpus).toBeGreaterThan(0);
    expect(info.allocatable!.memoryMib).toBe(info.capacity!.memoryMib - 1024);
    expect(await unary((done) => operator.listGuests({}, done))).toEqual({ guests: [] });
  });

  it('refuses a node certificate of the same CA with PERMISSION_DENIED, for unary and streaming calls', async () => {
    const peer = client(certs.nodes['node-b']!);
    const refused = await expectCode(
      unary((done) => peer.listGuests({}, done)),
      grpc.status.PERMISSION_DENIED,
    );
    expect(refused.details).toContain('CN=node-b');
    await expectCode(
      unary((done) => peer.getNodeInfo({}, done)),
      grpc.status.PERMISSION_DENIED,
    );
    await expectCode(
      unary((done) => peer.startGuest({ name: 'vm1' }, done)),
      grpc.status.PERMISSION_DENIED,
    );
    const stream = peer.watchGuests({});
    const streamError = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    expect(grpc.status[streamError.code]).toBe('PERMISSION_DENIED');
  });

  it('refuses an operator certificate from another CA in the TLS handshake', async () => {
    // Same CN and URI SAN as the real operator: had the handshake accepted it, the call would have succeeded.
    const impostor = client(foreignCerts.operator);
    await expectCode(
      unary((done) => impostor.listGuests({}, done)),
      grpc.status.UNAVAILABLE,
    );
  });

  it('refuses a client without a certificate in the TLS handshake', async () => {
    const anonymous = client({});
    await expectCode(
      unary((done) => anonymous.listGuests({}, done)),
      grpc.status.UNAVAILABLE,
    );
  });

  it('counts refused and served calls in the RPC latency histogram', async () => {
    const count = (method: string, code: string) =>
      metric('tern_node_rpc_duration_seconds_count', { node: 'node-a', method, code });
    expect(await count('ListGuests', 'OK')).toBeGreaterThanOrEqual(1);
    expect(await count('ListGuests', 'PERMISSION_DENIED')).toBe(1);
    expect(await count('WatchGuests', 'PERMISSION_DENIED')).toBe(1);
    expect(await count('StartGuest', 'PERMISSION_DENIED')).toBe(1);
  });
});

describe('guest lifecycle through the control API', () => {
  it('rejects a spec whose kernel lies outside the image roots with INVALID_ARGUMENT', async () => {
    const spec = { ...guestSpec('outside'), boot: { kernel: '/etc/passwd', initrd: '', cmdline: [] } };
    const error = await expectCode(
      unary((done) => operator.createGuest({ spec }, done)),
      grpc.status.INVALID_ARGUMENT,
    );
    expect(error.details).toContain('boot.kernel');
    await expectCode(
      unary((done) => operator.getGuest({ name: 'outside' }, done)),
      grpc.status.NOT_FOUND,
    );
    await expectCode(
      unary((done) => operator.startGuest({ name: 'outside' }, done)),
      grpc.status.NOT_FOUND,
    );
  });

  it('creates a guest, watches it run, stops it, starts it again and deletes it', async () => {
    const stream = operator.watchGuests({});
    const watch = record(stream);
    await watch.until((event) => event.type === 'TYPE_SYNCED');
    expect(watch.events.map(summary)).toEqual(['TYPE_SYNCED::']);

    const created = await unary<Guest__Output>((done) =>
      operator.createGuest({ spec: guestSpec('vm1') }, done),
    );
    expect(created).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', accelerator: 'ACCELERATOR_TCG' });
    expect(created.pid).toBeGreaterThan(0);
    expect(created.spec).toMatchObject({ name: 'vm1', cpus: 1, memoryMib: 256, machine: '', cpuModel: '' });
    await watch.until((event) => event.guest?.phase === 'GUEST_PHASE_RUNNING');
    expect(watch.events.map(summary).slice(1)).toEqual([
      'TYPE_ADDED:vm1:GUEST_PHASE_STARTING',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_RUNNING',
    ]);

    await expectCode(
      unary((done) => operator.createGuest({ spec: guestSpec('vm1') }, done)),
      grpc.status.ALREADY_EXISTS,
    );
    const info = await unary<NodeInfo__Output>((done) => operator.getNodeInfo({}, done));
    expect(info).toMatchObject({ guestCount: 1, allocated: { cpus: 1, memoryMib: 256 } });
    expect(await metric('tern_node_guests', { node: 'node-a', phase: 'Running' })).toBe(1);

    // The guest's agent is up: heartbeats every few ms, and its memory verifies.
    const agent = await AgentClient.connect(guestPaths(stateDir, 'vm1').agent, { timeoutMs: 30_000 });
    try {
      await agent.waitReady(60_000);
      const from = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(agent.heartbeats.filter((beat) => beat.t >= from).length).toBeGreaterThan(50);
      expect(await agent.verify(30_000)).toMatchObject({ ok: true });
    } finally {
      agent.close();
    }

    const stopped = await unary((done) => operator.stopGuest({ name: 'vm1', timeoutMs: 3_000 }, done));
    expect(stopped).toMatchObject({ phase: 'GUEST_PHASE_STOPPED', pid: 0 });
    await watch.until((event) => event.guest?.phase === 'GUEST_PHASE_STOPPED');
    expect(await metric('tern_node_qemu_exits_total', { node: 'node-a', phase: 'Stopped' })).toBe(1);

    // StartGuest runs the stopped guest again from its stored spec, in a new QEMU process.
    const restarted = await unary<Guest__Output>((done) => operator.startGuest({ name: 'vm1' }, done));
    expect(restarted).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', reason: '', message: '' });
    expect(restarted.spec).toEqual(created.spec);
    expect(restarted.pid).toBeGreaterThan(0);
    expect(restarted.pid).not.toBe(created.pid);
    expect(() => process.kill(restarted.pid, 0)).not.toThrow();
    const notStopped = await expectCode(
      unary((done) => operator.startGuest({ name: 'vm1' }, done)),
      grpc.status.FAILED_PRECONDITION,
    );
    expect(notStopped.details).toContain('is Running; only a Stopped or Failed guest can be started');

    await unary((done) => operator.deleteGuest({ name: 'vm1' }, done));
    await watch.until((event) => event.type === 'TYPE_DELETED');
    expect(watch.events.map(summary).slice(3)).toEqual([
      'TYPE_MODIFIED:vm1:GUEST_PHASE_STOPPING',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_STOPPED',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_STARTING',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_RUNNING',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_STOPPING',
      'TYPE_MODIFIED:vm1:GUEST_PHASE_STOPPED',
      'TYPE_DELETED:vm1:GUEST_PHASE_STOPPED',
    ]);
    expect(() => process.kill(restarted.pid, 0)).toThrow();
    expect(await unary((done) => operator.listGuests({}, done))).toEqual({ guests: [] });
    stream.cancel();
  }, 120_000);

  it('keeps guests running across a daemon restart (SIGTERM, then SIGKILL) and re-attaches to them', async () => {
    const created = await unary<Guest__Output>((done) =>
      operator.createGuest({ spec: guestSpec('vm2') }, done),
    );
    expect(created.phase).toBe('GUEST_PHASE_RUNNING');
    const stream = operator.watchGuests({});
    const streamEnd = new Promise<void>((resolve) => stream.on('end', resolve).on('error', () => resolve()));
    stream.on('data', () => undefined);

    expect(await daemon.stop('SIGTERM')).toBe(0);
    await streamEnd;
    expect(() => process.kill(created.pid, 0)).not.toThrow();

    daemon = await startDaemonProcess(daemonArgs());
    operator = client(certs.operator);
    const again = await unary((done) => operator.getGuest({ name: 'vm2' }, done));
    expect(again).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: created.pid });

    // A daemon killed outright (no chance to detach) leaves the guest running too.
    expect(await daemon.stop('SIGKILL')).toBeNull();
    expect(() => process.kill(created.pid, 0)).not.toThrow();
    daemon = await startDaemonProcess(daemonArgs());
    operator = client(certs.operator);
    const afterKill = await unary((done) => operator.getGuest({ name: 'vm2' }, done));
    expect(afterKill).toMatchObject({ phase: 'GUEST_PHASE_RUNNING', pid: created.pid });

    await unary((done) => operator.deleteGuest({ name: 'vm2' }, done));
    expect(() => process.kill(created.pid, 0)).toThrow();
  }, 120_000);
});

/** One request line to the test guest's transaction service, one reply line back; throws without a reply. */
async function transact(host: string, port: number, request: string): Promise<string> {
  const socket = connect({ host, port });
  socket.setEncoding('utf8');
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(`${request}\n`);
    let reply = '';
    for await (const chunk of socket) {
      reply += chunk as string;
      if (reply.includes('\n')) return reply.trim();
    }
    // QEMU's user-mode stack accepts the connection even while nothing listens in the guest, then closes it.
    throw new Error(`connection closed without a reply to ${request}`);
  } finally {
    socket.destroy();
  }
}

async function retry<T>(ms: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

describe('user-mode networking through the control API', () => {
  it('reports the mode and its limitation, and the forwarded port that reaches the guest', async () => {
    const userStateDir = join(work, 'state-user');
    const args = daemonArgs().map((arg) => (arg === stateDir ? userStateDir : arg));
    const userDaemon = await startDaemonProcess([
      ...args,
      '--network',
      'user',
      '--user-net-guest-port',
      '7000',
    ]);
    try {
      const userClient = controlClient(`127.0.0.1:${userDaemon.grpcPort}`, {
        ca: certs.ca.cert,
        ...certs.operator,
      });
      clients.push(userClient);
      const info = await unary<NodeInfo__Output>((done) => userClient.getNodeInfo({}, done));
      expect(info.network).toMatchObject({ mode: 'NETWORK_MODE_USER', bridge: '' });
      expect(info.network!.limitation).toContain('guests cannot reach each other');

      const spec = guestSpec('vmnet');
      const created = await unary<Guest__Output>((done) =>
        userClient.createGuest(
          {
            spec: {
              ...spec,
              boot: { ...spec.boot, cmdline: [...spec.boot!.cmdline!, 'tern.ip=10.0.2.15/24'] },
              nics: [{ mac: '52:54:00:12:34:56' }],
            },
          },
          done,
        ),
      );
      expect(created.phase).toBe('GUEST_PHASE_RUNNING');
      expect(created.nics).toHaveLength(1);
      const nic = created.nics[0]!;
      expect(nic).toMatchObject({ mac: '52:54:00:12:34:56', backend: 'user' });
      expect(nic.user).toMatchObject({ hostAddress: '127.0.0.1', guestPort: 7000 });
      expect(nic.user!.hostPort).toBeGreaterThan(0);

      const { hostAddress, hostPort } = nic.user!;
      expect(await retry(90_000, () => transact(hostAddress, hostPort, 'INC hits'))).toBe('1');
      expect(await transact(hostAddress, hostPort, 'INC hits')).toBe('2');
      const listed = await unary<{ guests: Guest__Output[] }>((done) => userClient.listGuests({}, done));
      expect(listed.guests[0]!.nics).toEqual(created.nics);

      await unary((done) => userClient.deleteGuest({ name: 'vmnet' }, done));
    } finally {
      await userDaemon.stop();
      await killGuestsIn(userStateDir);
    }
  }, 180_000);
});
