// Frames for a guest paused for its switchover are not lost (docs/architecture.md "Frames during the switchover"),
// when both nodes' taps share a bridge (as the bench's two nodes do): the switchover held paused HOLD_MS in the
// Quiescing step, three clients sending the whole time (test/fixtures/frozen-frames.ts). A capture on the bridge
// and one on the target's tap show that, once the source's engine made the bridge forget the guest's MACs, every
// client segment reaches the target's tap, whose QEMU delivers it to the guest when it runs; without that, they go
// to the paused source's tap only and die with the source QEMU. The target does not steer here (the operator's
// SteerFrames): frozen-frames-switch.int.test.ts covers that.
import { FrozenFramesRig, oneBridge } from '../../fixtures/frozen-frames.js';

/** How long the switchover holds the paused guest: longer than Linux's least retransmission timeout (200 ms). */
const HOLD_MS = 600;
const MIGRATIONS = 3;
const CLIENTS = 3;

let rig: FrozenFramesRig | undefined;

beforeAll(async () => {
  rig = await FrozenFramesRig.start(oneBridge, {
    name: 'frozen',
    uuid: '5b0c0e2e-3d4a-4b5c-8d6e-7f8091a2f0f0',
    mac: '52:54:00:5b:10:01',
  });
}, 300_000);

afterAll(async () => {
  await rig?.close();
}, 120_000);

test(`${MIGRATIONS} migrations held paused ${HOLD_MS} ms with ${CLIENTS} clients sending: every segment sent while the guest was frozen reaches it`, async () => {
  await rig!.startClients(CLIENTS);
  let sentWhileFlooding = 0;
  let missedTarget = 0;
  for (let i = 0; i < MIGRATIONS; i++) {
    const held = await rig!.migrateHeld({
      holdMs: HOLD_MS,
      steer: false,
      // From the moment the bridge forgot the source's tap on. Before it (the time the engine takes to see the
      // pause and run `bridge`), frames still went to the source's tap only and died with it.
      countFrom: (migration) => migration.floodedUs,
    });
    // The source's engine forgot the guest's MACs on its bridge once QEMU paused the guest (network/fdb.ts).
    expect(held.floodedUs).toBeDefined();
    expect(held.floodedUs!).toBeGreaterThanOrEqual(held.pausedUs);
    sentWhileFlooding += held.sent;
    missedTarget += held.missed;
  }
  // Segments were sent while the guest was paused and its frames flooded (the hold makes sure), and every one of
  // them reached the tap of the QEMU that runs the guest next.
  expect(sentWhileFlooding).toBeGreaterThanOrEqual(MIGRATIONS);
  expect(missedTarget).toBe(0);
}, 600_000);
