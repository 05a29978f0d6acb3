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

/** Creates the bridge `tsb<pid>` with 10.231.X.1/24, X the first /24 no route of this host covers yet. */
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
    await ip('addr', 'add', `${network.hostIp}/24`, 'dev', bridge);
    await ip('link', 'set', 'dev', bridge, 'up');
  } catch (error) {
    await network.remove();
    throw error;
  }
  return network;
}

/** A frame a guest sent, as captured on the bridge (wall ms, kernel timestamp). */
export interface CapturedFrame {
  atMs: number;
  /** tcp: a TCP segment (data when it carries payload); other: anything else (the announce's RARP, ARP, …). */
  kind: 'tcp-data' | 'tcp-ack' | 'other';
}

export interface Capture {
  /** Frames by source MAC (lowercase), in capture order. */
  framesOf(mac: string): readonly CapturedFrame[];
  /** Drops what was captured before `beforeMs` (bounds the memory over a long run). */
  forget(beforeMs: number): void;
  stop(): Promise<void>;
}

/**
 * tcpdump on the bridge for frames from `macs`, or undefined when tcpdump is not installed. Waits until it
 * listens (it says so on stderr).
 */
export async function startCapture(bridge: string, macs: readonly string[]): Promise<Capture | undefined> {
  const found = await run('sh', ['-c', 'command -v tcpdump']).catch(() => undefined);
  if (found === undefined) return undefined;
  const filter = macs.map((mac) => `ether src ${mac}`).join(' or ');
  const child: ChildProcess = spawn(
    'tcpdump',
    ['-i', bridge, '-n', '-e', '-tt', '-l', '--immediate-mode', '--time-stamp-precision=micro', filter],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const frames = new Map<string, CapturedFrame[]>(macs.map((mac) => [mac.toLowerCase(), []]));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    // 1765060000.123456 52:54:00:..:.. > fe:..., ethertype IPv4 (0x0800), length 66: a.b.c.d.7000 > …: Flags [P.], …, length 8
    const m = /^(\d+\.\d+) ([0-9a-f:]{17}) > /.exec(line);
    if (!m) return;
    const list = frames.get(m[2]!);
    if (list === undefined) return;
    const tcp = / Flags \[/.test(line);
    const length = /, length (\d+)$/.exec(line);
    list.push({
      atMs: Number(m[1]) * 1000,
      kind: !tcp ? 'other' : length && Number(length[1]) > 0 ? 'tcp-data' : 'tcp-ack',
    });
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
