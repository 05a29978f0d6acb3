// Frames for a guest paused for its switchover, when each node has a bridge of its own behind a switch (the local
// cluster's layout, and any real one): the source's bridge forgetting the guest's MACs does not help there, since
// the switch keeps sending the frames to the source's node. The target steers them to its own node instead
// (network/frame-steering.ts, the daemon's SteerFrames, which the operator calls when it sees the pause). Same rig as
// frozen-frames.int.test.ts (test/fixtures/frozen-frames.ts): the switchover held paused HOLD_MS, three clients
// sending the whole time, captures on the switch and on the target's tap.
import { bridgesBehindSwitch, FrozenFramesRig } from '../../fixtures/frozen-frames.js';

/** How long the switchover holds the paused guest: longer than Linux's least retransmission timeout (200 ms). */
const HOLD_MS = 600;
const CLIENTS = 3;

let rig: FrozenFramesRig | undefined;

beforeAll(async () => {
  rig = await FrozenFramesRig.start(bridgesBehindSwitch, {
    name: 'frozensw',
    uuid: '5b0c0e2e-3d4a-4b5c-8d6e-7f8091a2f0f1',
    mac: '52:54:00:5b:10:02',
  });
  await rig.startClients(CLIENTS);
}, 300_000);

afterAll(async () => {
  await rig?.close();
}, 120_000);

test('without steering, the segments sent while the guest was frozen die at the source (the case steering is for)', async () => {
  const held = await rig!.migrateHeld({ holdMs: HOLD_MS, steer: false, countFrom: () => undefined });
  expect(held.steeredUs).toBeUndefined();
  expect(held.sent).toBeGreaterThan(0);
  // None of them reached the target: the switch sent them to the source's node, whose bridge floods a frame only
  // to its own ports, however early the source forgot the guest.
  expect(held.missed).toBe(held.sent);
}, 300_000);

test(`2 migrations (both ways) held paused ${HOLD_MS} ms, the target steering the frames at the pause: every segment sent after it reaches the target`, async () => {
  let sentWhileSteered = 0;
  let missedTarget = 0;
  for (let i = 0; i < 2; i++) {
    const held = await rig!.migrateHeld({
      holdMs: HOLD_MS,
      steer: true,
      countFrom: (migration) => migration.steeredUs,
    });
    expect(held.steerProblems).toEqual([]);
    expect(held.steeredUs).toBeDefined();
    expect(held.steeredUs!).toBeGreaterThanOrEqual(held.pausedUs);
    expect(held.steeredUs!).toBeLessThan(held.resumedUs);
    sentWhileSteered += held.sent;
    missedTarget += held.missed;
  }
  expect(sentWhileSteered).toBeGreaterThanOrEqual(2);
  expect(missedTarget).toBe(0);
}, 600_000);

test('a switchover that fails after the target steered the frames: the source runs the guest on, announces it, and every client is answered again', async () => {
  const held = await rig!.migrateHeld({
    holdMs: HOLD_MS,
    steer: true,
    rollBack: true,
    countFrom: (migration) => migration.steeredUs,
  });
  expect(held.steerProblems).toEqual([]);
  // Steered to the target, whose QEMU was then removed: what the clients sent meanwhile is lost with it.
  expect(held.steeredUs).toBeDefined();
  // The source announced the guest again after its `cont`, which brought the frames back to it: the rig saw every
  // client answered after the resume.
  expect(held.announcedAfterResume).toBe(true);
}, 300_000);
