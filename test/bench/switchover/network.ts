// The switchover bench's own network: one bridge both "nodes" (and the direct guests' in-process supervisors) put
// their taps on, named after this process, with an address for the host so the clients reach the guests across
// migrations (a guest keeps its MAC and IP). Plus what the bench reads from it: a packet capture of the guests'
// frames (tcpdump, when installed) and the clients' TCP retransmissions (ss).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ip = async (...args: string[]): Promise<string> => (await run('ip', args, { timeout: 10_000 })).stdout;

export interface BenchNetwork {
  bridge: string;
  /** The host's address on the bridge (the clients' source), and the guests' addresses: `${prefix}.N`. */
  hostIp: string;
  prefix: string;
  remove(): Promise<void>;
}

/**
 * Creates the bridge `tsb<pid>` with 10.231.X.1/24, X the first /24 no route of this host covers yet, and the MAC
 * 02:00:0a:e7:X:01.
 */
export async function createBenchNetwork(): Promise<BenchNetwork> {
  const bridge = `tsb${process.pid % 100_000}`;
  const routes = await ip('-4', 'route', 'show', 'table', 'all');
  let x = process.pid % 250;
  for (let tries = 0; routes.includes(`10.231.${x}.`) && tries < 250; tries++) x = (x + 1) % 250;
  const prefix = `10.231.${x}`;
  await ip('link', 'add', 'name', bridge, 'type', 'bridge');
  const network: BenchNetwork = {
    bridge,
    hostIp: `${prefix}.1`,
    prefix,
    async remove() {
      // The daemons create taps persistent (they outlive a daemon): the guests' last taps are still on the bridge.
      const ports = await ip('-o', 'link', 'show', 'master', bridge).catch(() => '');
      for (const [, tap] of ports.matchAll(/^\d+: ([^:@]+)[:@]/gm))
        await ip('link', 'del', tap!).catch(() => undefined);
      await ip('link', 'del', bridge).catch(() => undefined);
    },
  };
  try {
    // A MAC of its own: a bridge without one takes its lowest port's, here a tap's, and changes it when that tap goes
    // (a migration's source, a direct guest moving): the guests' ARP entries for the host then name a MAC nobody
    // answers to, and their frames to the host are lost until the entry is probed again (tens of seconds). A node's
    // bridge keeps its uplink's MAC (guest-network.ts, tapMac); this bridge has no uplink.
    await ip('link', 'set', 'dev', bridge, 'address', `02:00:0a:e7:${x.toString(16).padStart(2, '0')}:01`);
    await ip('addr', 'add', `${network.hostIp}/24`, 'dev', bridge);
    await ip('link', 'set', 'dev', bridge, 'up');
  } catch (error) {
    await network.remove();
    throw error;
  }
  return network;
}

/** A frame from or to a guest, as captured on the bridge (wall ms, the kernel's timestamp). */
export interface CapturedFrame {
  atMs: number;
  /** guest: the guest sent it; client: a client on the host sent it to the guest. */
  from: 'guest' | 'client';
  /** tcp: a TCP segment (data when it carries payload); other: anything else (the announce's RARP, ARP, …). */
  kind: 'tcp-data' | 'tcp-ack' | 'other';
  /** A RARP: QEMU's announce (or the target daemon's, network/frame-steering.ts). */
  rarp?: boolean;
  /** TCP: the client's port, the sequence range a data segment carries, the acknowledgement number. */
  clientPort?: number;
  seqStart?: number;
  seqEnd?: number;
  ack?: number;
  /** TCP timestamps option: the sender's value, and the value it echoes (tells which copy of a segment arrived). */
  tsVal?: number;
  tsEcr?: number;
}

const FRAME =
  /^(\d+\.\d+) ([0-9a-f:]{17}) > ([0-9a-f:]{17}), [^:]*: (?:[\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[[^\]]*\](?:, seq (\d+):(\d+))?(?:, ack (\d+))?.*, length (\d+)$)?/;
const TIMESTAMPS = /TS val (\d+) ecr (\d+)/;

/**
 * One line of `tcpdump -n -e -tt -S` (absolute sequence numbers) about a frame from or to one of `guestMacs`, whose
 * TCP service listens on `port`; undefined for any other line.
 */
export function parseFrame(
  line: string,
  guestMacs: readonly string[],
  port: number,
): { guestMac: string; frame: CapturedFrame } | undefined {
  const m = FRAME.exec(line);
  if (!m) return undefined;
  const [, at, src, dst, srcPort, dstPort, seqStart, seqEnd, ack, length] = m;
  const from = guestMacs.includes(src!) ? 'guest' : guestMacs.includes(dst!) ? 'client' : undefined;
  if (from === undefined) return undefined;
  const frame: CapturedFrame = { atMs: Number(at) * 1000, from, kind: 'other' };
  if (line.includes('ethertype Reverse ARP')) frame.rarp = true;
  if (length !== undefined) {
    frame.kind = Number(length) > 0 ? 'tcp-data' : 'tcp-ack';
    const clientPort = Number(from === 'guest' ? dstPort : srcPort);
    if (Number(from === 'guest' ? srcPort : dstPort) !== port) frame.kind = 'other';
    else {
      frame.clientPort = clientPort;
      if (seqStart !== undefined) frame.seqStart = Number(seqStart);
      if (seqEnd !== undefined) frame.seqEnd = Number(seqEnd);
      if (ack !== undefined) frame.ack = Number(ack);
      const ts = TIMESTAMPS.exec(line);
      if (ts) [frame.tsVal, frame.tsEcr] = [Number(ts[1]), Number(ts[2])];
    }
  }
  return { guestMac: from === 'guest' ? src! : dst!, frame };
}

/** What became of the clients' segments sent while the guest was frozen (captured between pause and resume). */
export interface FrozenSegments {
  sent: number;
  /** The guest acknowledged the first copy: it waited for the guest and reached it. */
  delivered: number;
  /** The guest acknowledged a later copy only: the first one was lost (and each copy before the one that arrived). */
  lost: number;
  /** Never acknowledged while the capture watched. */
  unacknowledged: number;
  /** Sent again 200 ms or more after the first copy (Linux's least retransmission timeout): an RTO fired on it. */
  resentAfterTimeout: number;
}

/**
 * Whether the first copy of each segment reached the guest. Acknowledged and never sent again: it did. Sent again:
 * by the TCP timestamp the guest's first acknowledgement of it echoes (on by default in Linux), which names the
 * client segment the guest last took in order: one sent before the segment was first sent again means the first
 * copy arrived; the copy sent again or a later one means it did not. Without timestamps, an acknowledgement before
 * the segment was sent again counts as the first copy's.
 */
export function frozenSegments(
  frames: readonly CapturedFrame[],
  pausedMs: number,
  resumedMs: number,
): FrozenSegments {
  const result: FrozenSegments = { sent: 0, delivered: 0, lost: 0, unacknowledged: 0, resentAfterTimeout: 0 };
  const seen = new Set<string>();
  /** When the client first sent the segment carrying a timestamp, per client port and timestamp. */
  const sentAt = new Map<string, number>();
  for (const f of frames)
    if (f.from === 'client' && f.tsVal !== undefined && !sentAt.has(`${f.clientPort}:${f.tsVal}`))
      sentAt.set(`${f.clientPort}:${f.tsVal}`, f.atMs);
  for (const [i, segment] of frames.entries()) {
    if (segment.from !== 'client' || segment.kind !== 'tcp-data' || segment.seqEnd === undefined) continue;
    if (segment.atMs <= pausedMs || segment.atMs >= resumedMs) continue;
    // A copy of a segment seen before (sent again, alone or within a bigger one) is not a segment of its own.
    const key = `${segment.clientPort}:${segment.seqEnd}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (
      frames
        .slice(0, i)
        .some(
          (f) =>
            f.from === 'client' &&
            f.clientPort === segment.clientPort &&
            f.seqEnd !== undefined &&
            f.seqEnd >= segment.seqEnd! &&
            (f.seqStart ?? f.seqEnd) < segment.seqEnd!,
        )
    )
      continue;
    result.sent++;
    const later = frames.slice(i + 1);
    // Sent again, maybe within a bigger segment (Linux collapses small segments it retransmits).
    const again = later.find(
      (f) =>
        f.from === 'client' &&
        f.clientPort === segment.clientPort &&
        f.seqEnd !== undefined &&
        f.seqEnd >= segment.seqEnd! &&
        (f.seqStart ?? f.seqEnd) < segment.seqEnd!,
    );
    if (again !== undefined && again.atMs - segment.atMs >= 200) result.resentAfterTimeout++;
    const acked = later.find(
      (f) => f.from === 'guest' && f.clientPort === segment.clientPort && (f.ack ?? 0) >= segment.seqEnd!,
    );
    if (acked === undefined) {
      result.unacknowledged++;
      continue;
    }
    const echoedAt =
      acked.tsEcr === undefined ? undefined : sentAt.get(`${segment.clientPort}:${acked.tsEcr}`);
    const delivered =
      again === undefined || (echoedAt !== undefined ? echoedAt < again.atMs : acked.atMs < again.atMs);
    if (delivered) result.delivered++;
    else result.lost++;
  }
  return result;
}

export interface Capture {
  /** Frames from and to a guest (by its MAC, lowercase), in capture order. */
  framesOf(mac: string): readonly CapturedFrame[];
  /** Drops what was captured before `beforeMs` (bounds the memory over a long run). */
  forget(beforeMs: number): void;
  stop(): Promise<void>;
}

/**
 * tcpdump on the bridge for frames from and to `macs` (guests serving TCP on `port`), or undefined when tcpdump is
 * not installed. Waits until it listens (it says so on stderr).
 */
export async function startCapture(
  bridge: string,
  macs: readonly string[],
  port: number,
): Promise<Capture | undefined> {
  const found = await run('sh', ['-c', 'command -v tcpdump']).catch(() => undefined);
  if (found === undefined) return undefined;
  const guestMacs = macs.map((mac) => mac.toLowerCase());
  const filter = guestMacs.map((mac) => `ether host ${mac}`).join(' or ');
  const child: ChildProcess = spawn(
    'tcpdump',
    ['-i', bridge, '-n', '-e', '-tt', '-S', '-l', '--immediate-mode', '--time-stamp-precision=micro', filter],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const frames = new Map<string, CapturedFrame[]>(guestMacs.map((mac) => [mac, []]));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = parseFrame(line, guestMacs, port);
    if (parsed) frames.get(parsed.guestMac)!.push(parsed.frame);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start listening within 10 s')), 10_000);
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${err.trim()}`));
    });
  });
  return {
    framesOf: (mac) => frames.get(mac.toLowerCase()) ?? [],
    forget(beforeMs) {
      for (const [mac, list] of frames)
        frames.set(
          mac,
          list.filter((f) => f.atMs >= beforeMs),
        );
    },
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * The TCP retransmissions (ss's `retrans:<now>/<total>`, total) of this host's connections to `guestIp`:`port`,
 * one number per connection, and whether an RTO fired (ss shows `backoff:` while a retransmission timer backs off).
 */
export async function retransmissionsTo(
  guestIp: string,
  port: number,
): Promise<{ connections: number; retrans: number; backoff: number }> {
  const { stdout } = await run('ss', ['-tin', 'dst', `${guestIp}:${port}`], { timeout: 10_000 });
  let connections = 0;
  let retrans = 0;
  let backoff = 0;
  for (const line of stdout.split('\n')) {
    if (/^\S+\s+\d+\s+\d+\s/.test(line)) connections++;
    const r = /retrans:\d+\/(\d+)/.exec(line);
    if (r) retrans += Number(r[1]);
    const b = /backoff:(\d+)/.exec(line);
    if (b) backoff += Number(b[1]);
  }
  return { connections, retrans, backoff };
}

/**
 * This network namespace's TcpExt counters (/proc/net/netstat), host-wide: TCPTimeouts (retransmission timeouts
 * fired) and TCPLossProbes (tail loss probes sent).
 */
export async function tcpCounters(): Promise<{ timeouts: number; lossProbes: number }> {
  const lines = (await readFile('/proc/net/netstat', 'utf8')).split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i]!.startsWith('TcpExt:')) continue;
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const value = (name: string) => Number(values[names.indexOf(name)]);
    return { timeouts: value('TCPTimeouts'), lossProbes: value('TCPLossProbes') };
  }
  throw new Error('/proc/net/netstat has no TcpExt counters');
}
