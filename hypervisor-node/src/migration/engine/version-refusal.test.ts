// Both ends of a migration refuse a TCG guest on a QEMU older than 10.0 before touching it: driven against a
// scripted QMP peer that reports QEMU 7.2 (Debian 12's own), the version that corrupted guests in TCG migrations.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GuestSupervisor } from '../../runtime/supervisor.js';
import type { GuestDefinition, GuestStatus } from '../../model/guest.js';
import { QmpClient } from '../../qemu/qmp-client.js';
import { channelSettings, resolveMigrationPolicy } from './policy.js';
import { SourceMigration } from './source.js';
import { TargetMigration } from './target.js';

const QEMU_7_2 = { qemu: { major: 7, minor: 2, micro: 0 }, package: 'Debian 1:7.2+dfsg-7+deb12u7' };
const REFUSAL =
  /live migration under TCG needs QEMU >= 10\.0, this node has 7\.2\.0 \(QEMU 7\.2 corrupted the guest in 4 of 5 TCG migrations\)/;

let dir: string;
let server: net.Server;
let qmp: QmpClient;
/** Every command the engine sent to "QEMU", in order. */
let commands: string[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tern-refusal-'));
  commands = [];
  server = net.createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const { execute, id } = JSON.parse(buffer.slice(0, nl)) as { execute: string; id: string };
        buffer = buffer.slice(nl + 1);
        commands.push(execute);
        const ret = execute === 'query-version' ? QEMU_7_2 : {};
        socket.write(`${JSON.stringify({ return: ret, id })}\r\n`);
      }
    });
    socket.write(`${JSON.stringify({ QMP: { version: QEMU_7_2, capabilities: [] } })}\r\n`);
  });
  const socketPath = path.join(dir, 'qmp.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  qmp = await QmpClient.connect(socketPath);
});

afterEach(async () => {
  qmp.close();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const status = { name: 'vm01', accelerator: 'tcg', phase: 'Running' } as unknown as GuestStatus;
const channel = { transport: 'unix', path: '/tmp/tern-refusal-never-used.sock' } as const;

test('the source refuses to migrate a TCG guest on QEMU 7.2 and sends no migration command', async () => {
  const supervisor = { get: () => status, qmp: () => qmp } as unknown as GuestSupervisor;
  const policy = resolveMigrationPolicy();
  const migration = new SourceMigration({ supervisor, guest: 'vm01', channel, policy });
  await expect(migration.start()).rejects.toThrow(REFUSAL);
  expect(commands).toEqual(['qmp_capabilities', 'query-version']);
});

test('the target refuses to listen on QEMU 7.2 under TCG and removes the incoming QEMU it started', async () => {
  const deleted: string[] = [];
  const supervisor = {
    create: async () => status,
    qmp: () => qmp,
    delete: async (name: string) => void deleted.push(name),
  } as unknown as GuestSupervisor;
  const spec = { name: 'vm01' } as GuestDefinition;
  const settings = channelSettings(resolveMigrationPolicy());
  await expect(TargetMigration.prepare({ supervisor, spec, channel, settings })).rejects.toThrow(REFUSAL);
  expect(commands).toEqual(['qmp_capabilities', 'query-version']);
  expect(deleted).toEqual(['vm01']);
});
