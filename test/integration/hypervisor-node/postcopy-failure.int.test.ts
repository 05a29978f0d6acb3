// A post-copy migration whose stream breaks, with two real daemon processes and QEMU (TCG), driven by the operator's
// own sequence (test/harness/migration-driver.ts → operator/src/migration/sequence.ts) against an in-memory
// ownership record. Once QEMU switched to post-copy the target holds the device state and part of the memory, the
// source the rest. A link that comes back within the policy's stall timeout resumes the stream (QEMU's post-copy
// recovery) and the migration completes. When the target QEMU dies or the link stays down, neither QEMU can run the
// guest: the migration must end (Failed, post-copy), both QEMUs must be stopped (none left paused for good), and
// the source's guest reports PostCopyFailed so that the VM's restart policy starts it again.
//
// QEMU runs as root here: post-copy needs userfaultfd, which an unprivileged QEMU (--qemu-user) only gets where the
// host lets that user open /dev/userfaultfd (or sets vm.unprivileged_userfaultfd=1).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDevCerts, type DevCerts } from '../../harness/certificates.js';
import type { GuestSpec, MigrationOutcome__Output } from '../../../proto/index.js';
import { testGuestImages, type TestGuestImages } from '../../fixtures/test-guest.js';
import { unary } from '../../harness/control-client.js';
import { killGuestsIn } from '../../harness/daemon-process.js';
import {
  assertAtMostOneRunning,
  begin,
  handOver,
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
  postCopyGuest(images, name, '7e1b3c20-6a5d-4f70-9b12-c3d4e5f6', ++uuids);

/** A new guest on node A, migrating to node B under POST_COPY until QEMU switched to post-copy. */
async function inPostCopy(name: string, connectVia?: (endpoint: string) => Promise<string>) {
  await unary((done) => nodeA.control.createGuest({ spec: spec(name) }, done));
  record.set(name, nodeA.name);
  const run = await begin({
    guest: name,
    from: nodeA,
    to: nodeB,
    policy: POST_COPY,
    ...(connectVia ? { connectVia } : {}),
  });
  await run.until((e) => e.phase?.to === 'MIGRATION_PHASE_POST_COPY');
  // The target has loaded the device state (QEMU's post-copy "run", the guest kept paused by -S): from here on a
  // broken stream pauses post-copy on both sides. (Before it, the target QEMU gives up and exits.)
  await eventually(
    `${name} loaded for post-copy on ${nodeB.name}`,
    async () => ((await getMigration(nodeB, run.id)).stage === 'MIGRATION_STAGE_LOADED' ? true : undefined),
    30_000,
    20,
  );
  return run;
}

/**
 * The post-copy failed: the outcome says why, the hand-over's failure side leaves the record with the source, whose
 * guest is Failed (PostCopyFailed) with no QEMU, and nothing of the guest is left on the target.
 */
async function expectBothStopped(name: string, run: RunningMigration): Promise<MigrationOutcome__Output> {
  const outcome = await run.outcome;
  console.log(`${name}: ${outcome.result} in ${outcome.durationMs} ms: ${outcome.reason}`);
  expect(outcome).toMatchObject({ result: 'RESULT_FAILED', postCopy: true });
  expect(outcome.reason).toMatch(
    /^post-copy failed: .* could not be resumed within 10 s .*neither can run it: the source QEMU was stopped$/,
  );
  const result = await handOver(run, { guest: name, from: nodeA, to: nodeB, record });
  expect(result.owner).toBe(nodeA.name);
  expect((await getMigration(nodeA, run.id)).stage).toBe('MIGRATION_STAGE_SOURCE_LOST');
  expect((await getMigration(nodeB, run.id)).stage).toBe('MIGRATION_STAGE_ABORTED');
  expect(await assertAtMostOneRunning(name, [nodeA, nodeB])).toEqual(['GUEST_PHASE_FAILED', 'ABSENT']);
  const source = await getGuest(nodeA, name);
  expect(source).toMatchObject({ reason: 'PostCopyFailed', pid: 0 });
  expect(source.message).toMatch(/^post-copy failed: /);
  return outcome;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tern-pcf-'));
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

test('the target QEMU killed in post-copy: Failed, the source QEMU stopped (PostCopyFailed), nothing left paused', async () => {
  const run = await inPostCopy('target-killed');
  process.kill((await getGuest(nodeB, 'target-killed')).pid, 'SIGKILL');
  await expectBothStopped('target-killed', run);
}, 180_000);

test('the link cut in post-copy and back within the deadline: the stream resumes, the guest runs on the target', async () => {
  let link: TcpLink | undefined;
  try {
    const run = await inPostCopy('link-back', async (endpoint) => {
      link = await TcpLink.open(endpoint);
      return link.endpoint;
    });
    link!.cut();
    const paused = await run.until((e) => /^post-copy paused: /.test(e.phase?.reason ?? ''));
    expect(paused.phase).toMatchObject({
      from: 'MIGRATION_PHASE_POST_COPY',
      to: 'MIGRATION_PHASE_POST_COPY',
    });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    link!.restore();
    const outcome = await run.outcome;
    console.log(`link-back: ${outcome.result} in ${outcome.durationMs} ms: ${outcome.reason}`);
    if (outcome.result !== 'RESULT_COMPLETED') console.log(postCopyTrail(run, [nodeA, nodeB]));
    expect(outcome).toMatchObject({ result: 'RESULT_COMPLETED', postCopy: true });
    expect(run.events.some((e) => /^post-copy resumed after \d+ ms/.test(e.phase?.reason ?? ''))).toBe(true);
    const result = await handOver(run, { guest: 'link-back', from: nodeA, to: nodeB, record });
    expect(result.owner).toBe(nodeB.name);
    expect(await assertAtMostOneRunning('link-back', [nodeA, nodeB])).toEqual([
      'ABSENT',
      'GUEST_PHASE_RUNNING',
    ]);
    // Every page reached the target intact: the guest's own check of its memory.
    const agent = await AgentClient.connect(guestPaths(nodeB.stateDir, 'link-back').agent, {
      timeoutMs: 30_000,
    });
    try {
      const verified = await agent.verify();
      expect(verified.detail).toMatch(/^OK /);
    } finally {
      agent.close();
    }
  } finally {
    await link?.close();
  }
}, 180_000);

test('the link cut in post-copy and not back within the deadline: Failed, both QEMUs stopped, nothing left paused', async () => {
  let link: TcpLink | undefined;
  try {
    const run = await inPostCopy('link-cut', async (endpoint) => {
      link = await TcpLink.open(endpoint);
      return link.endpoint;
    });
    link!.cut();
    await expectBothStopped('link-cut', run);
  } finally {
    await link?.close();
  }
}, 180_000);
