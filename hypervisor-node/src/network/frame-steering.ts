// Frames for a guest paused for its switchover, when the target node is behind another bridge or a switch. The
// source's bridge forgetting the guest's MACs (fdb.ts) helps only a target on the same bridge: a switch (or the
// local cluster's host bridge) still sends the frames to the source node, whose bridge never sends a frame back out
// of the port it came in by, so they die there. It learns the guest's new port only from a frame the guest's MAC
// sends from the target node, and QEMU holds its own announce until `cont`.
//
// So the target's daemon, told that the source paused the guest (SteerFrames), steers the frames itself:
//   1. its bridge's entry for each of the guest's MACs moves to the guest's tap here (`bridge fdb replace … dynamic`),
//      where it may have named the uplink the guest's frames came in by; the incoming QEMU keeps what arrives
//      there until it runs, as on the source's bridge;
//   2. one RARP per MAC, as QEMU's announce sends, goes out of the bridge device itself (a raw packet socket, from a
//      small perl program: Node has none, and perl-base is in every Debian): the bridge floods it to its ports, the
//      uplink among them, and the switches behind learn the MAC at this node. The bridge itself learns nothing from
//      a frame it sends, so its entry stays on the tap.
// The entry is dynamic: should the switchover fail, the source's announce (it announces when it resumes) moves it
// and the switches' back; should the target QEMU go, the entry goes with its tap. Both helpers start with the
// migration and wait, so that steering costs two writes, not two process starts.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BridgeBatch, type GuestPort } from './fdb.js';
import { WaitingHelper } from './helper-process.js';

/** A RARP request for `mac` from `mac`, padded to Ethernet's minimum: QEMU's announce frame (net/announce.c). */
export function rarpFrame(mac: string): Buffer {
  const hw = Buffer.from(mac.split(':').map((byte) => parseInt(byte, 16)));
  if (hw.length !== 6 || hw.some((byte) => Number.isNaN(byte))) throw new Error(`not a MAC: ${mac}`);
  const frame = Buffer.alloc(60);
  frame.fill(0xff, 0, 6); // broadcast
  hw.copy(frame, 6);
  frame.writeUInt16BE(0x8035, 12); // RARP
  frame.writeUInt16BE(1, 14); // Ethernet
  frame.writeUInt16BE(0x0800, 16); // IPv4
  frame[18] = 6;
  frame[19] = 4;
  frame.writeUInt16BE(3, 20); // reverse request
  hw.copy(frame, 22); // sender: the guest, IP 0.0.0.0
  hw.copy(frame, 32); // target: the guest, IP 0.0.0.0
  return frame;
}

// Opens an AF_PACKET socket (17, SOCK_RAW 3) on the interface named first (SIOCGIFINDEX 0x8933; ifreq is 40 bytes),
// says "ready", and on a line from stdin sends each frame (hex) out of it; EOF instead exits without sending.
const SENDER = `
my ($ifname, @frames) = @ARGV;
socket(my $s, 17, 3, 0) or die "packet socket: $!\\n";
my $ifreq = pack('a16 x24', $ifname);
ioctl($s, 0x8933, $ifreq) or die "no interface $ifname: $!\\n";
my $to = pack('S n i S C C a8', 17, 0x8035, unpack('x16 i', $ifreq), 1, 0, 6, '');
$| = 1;
print "ready\\n";
defined(my $go = <STDIN>) or exit 0;
for my $frame (@frames) { send($s, pack('H*', $frame), 0, $to) or die "send: $!\\n"; }
`;

const SEND_TIMEOUT_MS = 5_000;

/** The perl sender of rarpFrame()s, started ahead; send() lets it go. */
export class FrameSender {
  private readonly helper: WaitingHelper;
  /** Resolves once the socket is open on the interface (or the process ended without). */
  readonly ready: Promise<boolean>;

  constructor(
    ifname: string,
    frames: readonly Buffer[],
    spawnPerl: (args: string[]) => ChildProcess = (args) =>
      spawn('perl', args, { stdio: ['pipe', 'pipe', 'pipe'] }),
  ) {
    const child = spawnPerl(['-e', SENDER, ifname, ...frames.map((frame) => frame.toString('hex'))]);
    this.helper = new WaitingHelper(child, 'frame sender');
    this.ready = new Promise((resolve) => {
      if (child.stdout === null) return resolve(false);
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => resolve(line === 'ready'));
      lines.once('close', () => resolve(false));
    });
  }

  /** Sends the frames; returns what failed (an empty list when they went). Never throws. */
  async send(): Promise<string[]> {
    const done = await this.helper.finish('go\n', SEND_TIMEOUT_MS);
    if (done === undefined) return [`the frame sender did not finish within ${SEND_TIMEOUT_MS} ms`];
    if (done.error !== undefined) return [`perl could not run: ${done.error.message}`];
    if (done.code !== 0) return [`the frame sender failed: ${done.stderr.trim() || `exit ${done.code}`}`];
    return [];
  }

  /** Ends the process without sending (the migration ended before its switchover). Idempotent. */
  close(): void {
    this.helper.close();
  }
}

/** Both steps, their helpers started ahead: steer() when the source paused the guest, close() when not needed. */
export class FrameSteerer {
  private readonly batch: BridgeBatch;
  private readonly senders: FrameSender[];

  /** `ports`: the guest's taps here, each with its bridge. */
  constructor(
    private readonly ports: readonly GuestPort[],
    helpers: { batch?: BridgeBatch; sender?: (bridge: string, frames: Buffer[]) => FrameSender } = {},
  ) {
    this.batch = helpers.batch ?? new BridgeBatch();
    const sender = helpers.sender ?? ((bridge, frames) => new FrameSender(bridge, frames));
    const bridges = new Set(ports.flatMap(({ bridge }) => (bridge !== undefined ? [bridge] : [])));
    this.senders = [...bridges].map((bridge) =>
      sender(
        bridge,
        ports.filter((port) => port.bridge === bridge).map(({ mac }) => rarpFrame(mac)),
      ),
    );
  }

  /** Returns what failed (an empty list when the frames now come here). Never throws; once only. */
  async steer(): Promise<string[]> {
    // The entries first: a frame the switches send here once they learnt this node must find the tap.
    const entries = await this.batch.run(
      this.ports.map(({ ifname, mac }) => `fdb replace ${mac.toLowerCase()} dev ${ifname} master dynamic`),
    );
    const sent = await Promise.all(this.senders.map((sender) => sender.send()));
    const unknown = this.ports.filter(({ bridge }) => bridge === undefined);
    return [
      ...entries,
      ...sent.flat(),
      ...unknown.map(
        ({ ifname }) => `${ifname}: its bridge is not known (a tap of an older daemon): not announced`,
      ),
    ];
  }

  close(): void {
    this.batch.close();
    for (const sender of this.senders) sender.close();
  }
}
