// Frames for a guest paused for its switchover. QEMU does not read a tap while the guest is paused, so a frame the
// bridge forwards to the source's tap waits in the tap's queue and is dropped with the source QEMU: the client's
// segment is lost and it waits for a retransmission timeout, and for every one after it that also reaches the source
// before the target's announce. Forgetting the bridge's learned entries for the guest's MACs on the source's tap
// makes the bridge flood those frames to all its ports instead; the target's tap on the same bridge (its QEMU
// waiting for the incoming guest) keeps them until the target runs, and then QEMU delivers them to the guest.
// Nothing is left to undo: the paused source sends nothing, so no entry comes back until the guest sends again,
// wherever it runs then (the target's announce, or the source's own traffic after a failed switchover).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { GuestStatus } from '../model/guest.js';
import { WaitingHelper } from './helper-process.js';

const run = promisify(execFile);

export interface GuestPort {
  /** The guest NIC's tap (a bridge port). */
  ifname: string;
  /** The guest NIC's MAC, as the bridge learned it from the guest's frames. */
  mac: string;
  /** The bridge of the tap, when known. */
  bridge?: string;
}

/** A guest's taps with its NICs' MACs. */
export function guestPorts(status: GuestStatus | undefined): GuestPort[] {
  return (status?.nics ?? []).flatMap((nic, i) => {
    const mac = status?.spec.nics[i]?.mac;
    if (nic.kind !== 'tap' || mac === undefined) return [];
    return [{ ifname: nic.ifname, mac, ...(nic.bridge !== undefined ? { bridge: nic.bridge } : {}) }];
  });
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

const BATCH_TIMEOUT_MS = 5_000;

/**
 * `bridge -force -batch -` started ahead of the switchover (when the migration starts): a change to the bridge then
 * costs a write to its stdin instead of starting a process, which takes up to hundreds of ms on a loaded host while
 * the guest's frames still go where they die. One use: run() ends its input; close() ends an unused one.
 */
export class BridgeBatch {
  private readonly helper: WaitingHelper;

  constructor(
    spawnBridge: () => ChildProcess = () =>
      spawn('bridge', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] }),
  ) {
    this.helper = new WaitingHelper(spawnBridge(), 'bridge batch');
  }

  /**
   * Runs `lines` (bridge commands without the program name) and returns what failed, minus `ignore`d messages (an
   * empty list when all went). Never throws.
   */
  async run(lines: readonly string[], ignore?: RegExp): Promise<string[]> {
    const done = await this.helper.finish(lines.map((line) => `${line}\n`).join(''), BATCH_TIMEOUT_MS);
    if (done === undefined) return [`bridge did not finish within ${BATCH_TIMEOUT_MS} ms`];
    if (done.error !== undefined) return [`bridge could not run: ${done.error.message}`];
    return done.stderr
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !/^Command failed/.test(line) && !ignore?.test(line));
  }

  /** Ends the process when it was not used (the migration ended before its switchover). Idempotent. */
  close(): void {
    this.helper.close();
  }
}

/** A BridgeBatch that forgets the guest's MACs, as forgetGuestMacs does. */
export class MacForgetter extends BridgeBatch {
  forget(ports: readonly GuestPort[]): Promise<string[]> {
    return this.run(
      ports.map(({ ifname, mac }) => `fdb del ${mac.toLowerCase()} dev ${ifname} master`),
      NOTHING_TO_FORGET,
    );
  }
}
