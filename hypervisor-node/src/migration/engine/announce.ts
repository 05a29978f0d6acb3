import type { QmpClient } from '../../qemu/qmp-client.js';

/** QEMU's own announce-* defaults (net/announce.c), which announce-self wants spelt out. */
const ANNOUNCE = { initial: 50, max: 550, rounds: 5, step: 100 };

/**
 * Has QEMU announce the guest's MACs on the network (RARP rounds from each NIC, or the guest's own announce where
 * its virtio driver offers it): switches learn where the guest runs now. Only while the guest runs: a paused QEMU
 * keeps the frames until it runs again.
 */
export async function announceSelf(qmp: QmpClient): Promise<void> {
  await qmp.execute('announce-self', ANNOUNCE);
}
