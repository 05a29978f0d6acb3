// For the guest's own integration tests: QEMU launched directly (no daemon) with the test guest, and a minimal
// QMP client. The daemon has its own; these tests must not depend on it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export class Qmp {
  readonly events: { event: string; data?: Record<string, unknown> }[] = [];
  private buf = '';
  private waiting: ((msg: Record<string, unknown>) => void)[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.buf.slice(0, nl)) as Record<string, unknown>;
        this.buf = this.buf.slice(nl + 1);
        if (typeof msg.event === 'string') this.events.push(msg as Qmp['events'][number]);
        else if ('return' in msg || 'error' in msg) this.waiting.shift()?.(msg);
      }
    });
  }

  static async connect(socketPath: string): Promise<Qmp> {
    const deadline = performance.now() + 30_000;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push((msg) =>
        msg.error ? reject(new Error(`${command}: ${JSON.stringify(msg.error)}`)) : resolve(msg.return),
      );
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface DirectGuest {
  name: string;
  dir: string;
  proc: ChildProcess;
  /** Host port forwarded to the guest's TCP service (port 7000). */
  tcpPort: number;
  agentSock: string;
  qmpSock: string;
  /** Resolves when QEMU exited. */
  exited: Promise<void>;
  /** QEMU's stderr so far. */
  stderr: () => string;
}

export interface LaunchOptions {
  kernel: string;
  initrd: string;
  name: string;
  /** Guest kernel command line, after `console=ttyS0 quiet`. */
  append: string;
  memoryMib?: number;
  /** More QEMU arguments (disks). */
  extraArgs?: string[];
  /** `-incoming` URI (`defer`, `unix:...`). */
  incoming?: string;
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Starts QEMU/TCG with the test guest: console to <dir>/console.log, agent channel and QMP on unix sockets,
 * user networking forwarding a free host port to the guest's port 7000. */
export async function launchGuest(opts: LaunchOptions): Promise<DirectGuest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tern-guest-${opts.name}-`));
  const tcpPort = await freePort();
  const args = [
    ...['-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', String(opts.memoryMib ?? 512), '-smp', '1'],
    ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-kernel', opts.kernel, '-initrd', opts.initrd],
    ...['-append', `console=ttyS0 quiet ${opts.append}`],
    ...['-chardev', `file,id=console,path=${dir}/console.log`, '-serial', 'chardev:console'],
    ...['-chardev', `socket,id=agent,path=${dir}/agent.sock,server=on,wait=off`, '-serial', 'chardev:agent'],
    ...['-qmp', `unix:${dir}/qmp.sock,server=on,wait=off`],
    ...['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${tcpPort}-:7000`],
    ...['-device', 'virtio-net-pci,netdev=n0'],
    ...(opts.extraArgs ?? []),
    ...(opts.incoming ? ['-incoming', opts.incoming] : []),
  ];
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) =>
    proc.on('exit', (code) => {
      if (code) console.error(`qemu ${opts.name} exited with ${code}: ${stderr}`);
      resolve();
    }),
  );
  return {
    name: opts.name,
    dir,
    proc,
    tcpPort,
    agentSock: `${dir}/agent.sock`,
    qmpSock: `${dir}/qmp.sock`,
    exited,
    stderr: () => stderr,
  };
}

/** SIGKILL (if still running), then waits for the exit. */
export async function killGuest(guest: DirectGuest): Promise<void> {
  if (guest.proc.exitCode === null && guest.proc.signalCode === null) guest.proc.kill('SIGKILL');
  await guest.exited;
}

/** Polls query-migrate until the migration completed or failed; returns the last answer. */
export async function waitMigration(qmp: Qmp, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const info = (await qmp.execute('query-migrate')) as Record<string, unknown>;
    if (info.status === 'completed' || info.status === 'failed' || info.status === 'cancelled') return info;
    if (performance.now() > deadline)
      throw new Error(`migration still ${String(info.status)} after ${timeoutMs} ms`);
    await sleep(50);
  }
}
