// The agent compiled for this host and run as a plain process (guest/README.md: it runs on a host too): its
// transaction log on a regular file, read back by the host's parser, and what a real TCP stack does to a client
// that hangs up with a reply still due (QEMU's user networking never resets the guest's side, so the guest
// tests cannot show it).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startDurableClient } from './host/durable-client.js';
import { checkDurability, parseTxLogImage, SLOT_SIZE, type ClientRecord } from './host/txlog.js';
import { freePort } from './qemu-direct.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('the agent as a host process, its log on a file', () => {
  let work: string;
  let binary: string;
  let logFile: string;
  let agent: ChildProcess;
  let port: number;
  let stderr = '';

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-agent-host-'));
    binary = path.join(work, 'agent');
    execFileSync('gcc', [
      '-static',
      '-O2',
      '-Wall',
      '-Wextra',
      '-o',
      binary,
      path.join(here, 'agent', 'agent.c'),
    ]);
    logFile = path.join(work, 'log.raw');
    fs.writeFileSync(logFile, '');
    fs.truncateSync(logFile, 256 * SLOT_SIZE);
    port = await freePort();
    // The agent channel is /dev/null: commands are not needed here; TCP is enabled by tern.ip (any value).
    // SIGPIPE back to its default action, as in the guest: a child of Node inherits Node's "ignore".
    agent = spawn(
      'env',
      [
        '--default-signal=PIPE',
        binary,
        ...[
          'tern.chan=/dev/null',
          'tern.wss_mib=1',
          'tern.ip=host',
          `tern.port=${port}`,
          `tern.txlog=${logFile}`,
        ],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    agent.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    while (!stderr.includes(`tcp=${port}`)) {
      if (agent.exitCode !== null) throw new Error(`the agent exited: ${stderr}`);
      await sleep(20);
    }
  }, 60_000);

  afterAll(() => {
    agent?.kill('SIGKILL');
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('keeps running when clients hang up with transactions in flight (no SIGPIPE on the late reply)', async () => {
    // Each connection is a client of its own: the checker holds each client to its sending order.
    const hangups: ClientRecord[] = [];
    for (let i = 0; i < 20; i++) {
      await sleep(20);
      expect({ exitCode: agent.exitCode, signal: agent.signalCode }).toEqual({
        exitCode: null,
        signal: null,
      });
      const payloads = [0, 1, 2, 3].map((k) => `h${i}.${k}`);
      hangups.push({ name: `h${i}`, acks: [], unknown: payloads });
      const socket = net.createConnection({ host: '127.0.0.1', port });
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      // Written, then the socket closed at once: the kernel answers the agent's late replies with a reset.
      await new Promise((resolve) =>
        socket.write(`${payloads.map((p) => `TX ${p}`).join('\n')}\nPING\n`, resolve),
      );
      socket.destroy();
    }
    await sleep(200);
    expect({ exitCode: agent.exitCode, signal: agent.signalCode }).toEqual({ exitCode: null, signal: null });

    const client = startDurableClient({
      name: 'c',
      endpoint: () => ({ host: '127.0.0.1', port }),
      transactions: 50,
    });
    const log = await client.done;
    expect(log.acks).toHaveLength(50);

    // The C writer and the TypeScript reader agree on the format: the file holds every acknowledged record.
    const image = parseTxLogImage(fs.readFileSync(logFile));
    expect(image.end).toBe('blank');
    const report = checkDurability(image.records, [...hangups, log]);
    expect(report.text).toMatch(/^OK: 50 acknowledged/);
    expect(report.ok).toBe(true);
  }, 60_000);
});
