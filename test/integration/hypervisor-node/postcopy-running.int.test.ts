// Post-copy for real: at the post-copy switch (the source switched to post-copy and the target loaded the device
// state) the operator's sequence (test/harness/migration-driver.ts → operator/src/migration/sequence.ts
// switchToTargetInPostCopy) moves the ownership record to the target and resumes the guest there while the
// remaining pages still stream. Two real daemon processes and QEMU (TCG), an in-memory ownership record.
//
// - the guest runs on the target (its heartbeat advances there) while the source still reports the migration
//   running, and the memory is intact once the source finished;
// - a link cut while the guest runs on the target pauses post-copy on both sides and recovers;
// - the target QEMU killed, or the source QEMU killed, while the guest runs on the target: the post-copy fails,
//   the record stays with the target, both QEMUs are stopped and the guest there is Failed for its restartPolicy.
//
// TERN_POSTCOPY_RUNS=<n> repeats the first case n times and prints the distribution of the post-copy switch's
// timings (docs/tuning.md, "Post-copy"). QEMU runs as root here: post-copy needs userfaultfd.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type { GuestSpec, Guest__Output } from '../../../proto/index.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { unary } from '../../harness/control-client.js';
import { killGuestsIn } from '../../harness/daemon-process.js';
import {
  assertAtMostOneRunning,
  begin,
  handOver,
  switchInPostCopy,
  InMemoryOwnership,
  type RunningMigration,
} from '../../harness/migration-driver.js';
import { TcpLink } from '../../harness/tcp-link.js';
import {
  POST_COPY,
  getGuest,
  getMigration,
  postCopyGuest,
  postCopyTrail,
  startPostCopyNode,
  type PostCopyNode,
} from '../../fixtures/post-copy-nodes.js';
import { eventually } from '../../harness/eventually.js';
import { AgentClient } from '../../../guest/host/agent-client.js';
import { guestPaths } from '../../../hypervisor-node/src/model/state-dir.js';

const RUNS = Number(process.env.TERN_POSTCOPY_RUNS ?? 1);

type Node = PostCopyNode;

let work: string;
let certs: DevCerts;
let images: TestGuestImages;
let nodeA: Node;
let nodeB: Node;
const record = new InMemoryOwnership();
const clients: { close(): void }[] = [];

const startNode = (name: string): Promise<Node> => startPostCopyNode({ work, certs, images, clients }, name);
let uuids = 0;
const spec = (name: string): GuestSpec =>
  postCopyGuest(images, name, '5c2d4e31-7b6e-4a81-8c23-d4e5f6a7', ++uuids);

interface Switched {
  run: RunningMigration;
  /** performance.now() when the driver saw the source's PostCopy phase, and when the target ran the guest. */
  postCopySeenAtMs: number;
  resumedAtMs: number;
}

/**
 * A new guest on node A, migrating to node B under POST_COPY, through the post-copy switch: the record names B and
 * B runs the guest while A still sends pages.
 */
async function runningOnTarget(
  name: string,
  connectVia?: (endpoint: string) => Promise<string>,
): Promise<Switched> {
  await unary((done) => nodeA.control.createGuest({ spec: spec(name) }, done));
  record.set(name, nodeA.name);
  // Dirtying its working set (the agent fills it first): far faster than the link, so pre-copy cannot converge.
  const agent = await AgentClient.connect(guestPaths(nodeA.stateDir, name).agent, { timeoutMs: 60_000 });
  try {
    await agent.waitReady(120_000);
  } finally {
    agent.close();
  }
  const run = await begin({
    guest: name,
    from: nodeA,
    to: nodeB,
    policy: POST_COPY,
    ...(connectVia ? { connectVia } : {}),
  });
  await run
    .until((e) => e.phase?.to === 'MIGRATION_PHASE_POST_COPY')
    .catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await run.outcome)}`);
    });
  const postCopySeenAtMs = performance.now();
  const switched = await switchInPostCopy(run, { guest: name, from: nodeA, to: nodeB, record });
  const resumedAtMs = performance.now();
  expect(switched).toMatchObject({ kind: 'resumed', committedHere: true });
  expect(record.owner(name)).toBe(nodeB.name);
  return { run, postCopySeenAtMs, resumedAtMs };
}

/** Two heartbeats of the guest's agent on `node`, `apartMs` apart: the second's sequence number is higher. */
async function heartbeatAdvances(node: Node, name: string, apartMs: number): Promise<[number, number]> {
  const agent = await AgentClient.connect(guestPaths(node.stateDir, name).agent, { timeoutMs: 30_000 });
  try {
    const first = (await agent.stats(30_000)).hb_seq;
    await new Promise((resolve) => setTimeout(resolve, apartMs));
    const second = (await agent.stats(30_000)).hb_seq;
    return [first, second];
  } finally {
    agent.close();
  }
}

async function verifyMemory(node: Node, name: string): Promise<void> {
  const agent = await AgentClient.connect(guestPaths(node.stateDir, name).agent, { timeoutMs: 30_000 });
  try {
    expect((await agent.verify()).detail).toMatch(/^OK /);
  } finally {
    agent.close();
  }
}

/**
 * The post-copy failed after the switch: the hand-over stops both QEMUs, the record stays with the target, the
 * source's remains are released and the target's guest is Failed (its restartPolicy starts it again there).
 */
async function expectFailedOnTarget(name: string, run: RunningMigration): Promise<Guest__Output> {
  const outcome = await run.outcome;
  console.log(`${name}: ${outcome.result} in ${outcome.durationMs} ms: ${outcome.reason}`);
  expect(outcome).toMatchObject({ result: 'RESULT_FAILED', postCopy: true });
  const result = await handOver(run, { guest: name, from: nodeA, to: nodeB, record });
  expect(result).toMatchObject({ owner: nodeB.name, kind: 'postCopyFailedOnTarget' });
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RELEASED');
  expect(await getMigration(nodeB, run.id)).toMatchObject({
    stage: 'MIGRATION_STAGE_RESUMED',
    guestLost: true,
  });
  const target = await eventually(
    `${name}'s QEMU on ${nodeB.name} gone`,
    async () => {
      const guest = await getGuest(nodeB, name);
      return guest.phase === 'GUEST_PHASE_FAILED' ? guest : undefined;
    },
    30_000,
    100,
  );
  expect(await assertAtMostOneRunning(name, [nodeA, nodeB])).toEqual(['ABSENT', 'GUEST_PHASE_FAILED']);
  expect(target.pid).toBe(0);
  return target;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-pcr-'));
  certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }, { name: 'node-b' }]);
  images = await testGuestImages();
  [nodeA, nodeB] = await Promise.all([startNode('node-a'), startNode('node-b')]);
}, 120_000);

afterAll(async () => {
  for (const client of clients) client.close();
  for (const node of [nodeA, nodeB]) {
    if (node === undefined) continue;
    await node.daemon.stop();
    await killGuestsIn(node.stateDir);
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

test(
  'the guest runs on the target before the source finished; the memory is intact at the end',
  async () => {
    const figures: { pauseToRunning: number; postCopyToRunning: number; seenToResumed: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const name = `runs-${i}`;
      const { run, postCopySeenAtMs, resumedAtMs } = await runningOnTarget(name);
      // The guest runs on B, its heartbeat advancing there, while A still sends pages (its migration runs).
      expect(await assertAtMostOneRunning(name, [nodeA, nodeB])).toEqual([
        'GUEST_PHASE_PAUSED',
        'GUEST_PHASE_RUNNING',
      ]);
      const [first, second] = await heartbeatAdvances(nodeB, name, 300);
      expect(second).toBeGreaterThan(first);
      expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_RUNNING');
      expect(run.events.some((e) => e.outcome)).toBe(false);

      const outcome = await run.outcome;
      expect(outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
      const result = await handOver(run, { guest: name, from: nodeA, to: nodeB, record });
      expect(result).toMatchObject({ owner: nodeB.name, kind: 'handedOver' });
      expect(await assertAtMostOneRunning(name, [nodeA, nodeB])).toEqual(['ABSENT', 'GUEST_PHASE_RUNNING']);
      // The target's migration completed after the resume and was retired: RESUMED, nothing lost.
      expect(await getMigration(nodeB, run.id)).toMatchObject({
        stage: 'MIGRATION_STAGE_RESUMED',
        guestLost: false,
      });
      await verifyMemory(nodeB, name);

      // One host, one clock: the daemons' stamps compare directly.
      const steps = (await getMigration(nodeB, run.id)).switchover!;
      const pausedAtUs = Number(outcome.switchover!.pausedAtUnixUs);
      const postCopyAtMs = Number(
        run.events.find((e) => e.phase?.to === 'MIGRATION_PHASE_POST_COPY')!.atUnixMs,
      );
      const resumedAtUs = Number(steps.resumedAtUnixUs);
      const row = {
        pauseToRunning: (resumedAtUs - pausedAtUs) / 1000,
        postCopyToRunning: resumedAtUs / 1000 - postCopyAtMs,
        seenToResumed: resumedAtMs - postCopySeenAtMs,
      };
      figures.push(row);
      console.log(
        `${name}: source paused → target running ${row.pauseToRunning.toFixed(1)} ms; post-copy switch (source ` +
          `postcopy-active) → target running ${row.postCopyToRunning.toFixed(1)} ms; PostCopy seen → ResumeTarget ` +
          `answered ${row.seenToResumed.toFixed(1)} ms; target loaded → resumed ` +
          `${((resumedAtUs - Number(steps.loadedAtUnixUs)) / 1000).toFixed(1)} ms (ResumeTarget arrived after ` +
          `${((Number(steps.resumeRequestedAtUnixUs) - Number(steps.loadedAtUnixUs)) / 1000).toFixed(1)} ms); QEMU downtime ` +
          `${outcome.downtimeMs} ms; post-copy ran ${outcome.durationMs} ms in all`,
      );
      await unary((done) => nodeB.control.deleteGuest({ name }, done));
    }
    if (RUNS > 1) {
      const p50 = (values: number[]) =>
        [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
      console.log(
        `post-copy over ${RUNS} runs, p50: source paused → target running ` +
          `${p50(figures.map((f) => f.pauseToRunning)).toFixed(1)} ms; post-copy switch → target running ` +
          `${p50(figures.map((f) => f.postCopyToRunning)).toFixed(1)} ms; PostCopy seen → ResumeTarget answered ` +
          `${p50(figures.map((f) => f.seenToResumed)).toFixed(1)} ms`,
      );
    }
  },
  180_000 * RUNS,
);

test('the link cut while the guest runs on the target, back within the deadline: post-copy recovers', async () => {
  let link: TcpLink | undefined;
  try {
    const { run } = await runningOnTarget('link-back', async (endpoint) => {
      link = await TcpLink.open(endpoint);
      return link.endpoint;
    });
    link!.cut();
    await run.until((e) => /^post-copy paused: /.test(e.phase?.reason ?? ''));
    // The guest stays on B (its QEMU runs, blocked on the pages it lacks); A never runs it again.
    expect(await assertAtMostOneRunning('link-back', [nodeA, nodeB])).toEqual([
      'GUEST_PHASE_PAUSED',
      'GUEST_PHASE_RUNNING',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    link!.restore();
    const outcome = await run.outcome;
    console.log(`link-back: ${outcome.result} in ${outcome.durationMs} ms: ${outcome.reason}`);
    if (outcome.result !== 'RESULT_COMPLETED') console.log(postCopyTrail(run, [nodeA, nodeB]));
    expect(outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
    expect(run.events.some((e) => /^post-copy resumed after \d+ ms/.test(e.phase?.reason ?? ''))).toBe(true);
    const result = await handOver(run, { guest: 'link-back', from: nodeA, to: nodeB, record });
    expect(result).toMatchObject({ owner: nodeB.name, kind: 'handedOver' });
    expect(await assertAtMostOneRunning('link-back', [nodeA, nodeB])).toEqual([
      'ABSENT',
      'GUEST_PHASE_RUNNING',
    ]);
    await verifyMemory(nodeB, 'link-back');
  } finally {
    await link?.close();
  }
}, 180_000);

test('the target QEMU killed while it runs the guest in post-copy: Failed there, the source removed', async () => {
  const { run } = await runningOnTarget('target-killed');
  process.kill((await getGuest(nodeB, 'target-killed')).pid, 'SIGKILL');
  await expectFailedOnTarget('target-killed', run);
}, 180_000);

test('the source QEMU killed while the target runs the guest in post-copy: the target guest is stopped (PostCopyFailed)', async () => {
  const { run } = await runningOnTarget('source-killed');
  process.kill((await getGuest(nodeA, 'source-killed')).pid, 'SIGKILL');
  const target = await expectFailedOnTarget('source-killed', run);
  expect(target.reason).toBe('PostCopyFailed');
  expect(target.message).toMatch(/^post-copy did not complete /);
}, 180_000);
