// Frames for a guest paused for its switchover. QEMU does not read a tap while the guest is paused, so a frame the
// bridge forwards to the source's tap waits in the tap's queue and is dropped with the source QEMU: the client's
// segment is lost and it waits for a retransmission timeout, and for every one after it that also reaches the source
// before the target's announce. Forgetting the bridge's learned entries for the guest's MACs on the source's tap
// makes the bridge flood those frames to all its ports instead; the target's tap on the same bridge (its QEMU
// waiting for the incoming guest) keeps them until the target runs, and then QEMU delivers them to the guest.
// Nothing is left to undo: the paused source sends nothing, so no entry comes back until the guest sends again,
// wherever it runs then (the target's announce, or the source's own traffic after a failed switchover).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface GuestPort {
  /** The guest NIC's tap (a bridge port). */
  ifname: string;
  /** The guest NIC's MAC, as the bridge learned it from the guest's frames. */
  mac: string;
}

/** A missing entry is not an error: the bridge never learned it, or aged it out, or the tap is gone already. */
const NOTHING_TO_FORGET = /No such file or directory|Cannot find device|does not exist/i;

/**
 * Deletes the bridge's entries that send `mac` to `ifname` (`bridge fdb del … master`), for each port. Never throws:
 * returns what could not be forgotten (an empty list when all went, or there was nothing to forget).
 */
export async function forgetGuestMacs(
  ports: readonly GuestPort[],
  bridgeCommand: (args: string[]) => Promise<unknown> = (args) => run('bridge', args, { timeout: 5_000 }),
): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    ports.map(async ({ ifname, mac }) => {
      try {
        await bridgeCommand(['fdb', 'del', mac.toLowerCase(), 'dev', ifname, 'master']);
      } catch (error) {
        const err = error as Error & { stderr?: string };
        const text = `${err.stderr ?? ''} ${err.message}`.trim();
        if (!NOTHING_TO_FORGET.test(text)) problems.push(`${mac} on ${ifname}: ${text}`);
      }
    }),
  );
  return problems;
}
