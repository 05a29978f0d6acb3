// Throughput of one migration link between two Node processes, per transport variant, interleaved:
//   npx tsx test/bench/link-throughput.bench.ts [--mib 256] [--rounds 3]
// The parent plays the source daemon (it sends), a child process the target daemon (it receives, then answers
// one byte back through the same link).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { dialLink, listenForLinks } from '../../hypervisor-node/src/migration/tunnel/tls-link.js';
import {
  MigrationTokenRegistry,
  newMigrationToken,
} from '../../hypervisor-node/src/migration/tunnel/token.js';
import { nodeTls } from './bench-certs.js';
import { dialGrpcLink, serveGrpcLinks } from './grpc-link.js';

interface Variant {
  name: string;
  transport: 'tls' | 'grpc';
  /** Who opens the link: the sender (source daemon) or the receiver (target daemon). */
  dialer: 'source' | 'target';
  messageBytes: number;
  flowControlWindow?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const VARIANTS: Variant[] = [
  { name: 'tls 64KiB writes', transport: 'tls', dialer: 'source', messageBytes: 64 * KiB },
  { name: 'tls 1MiB writes', transport: 'tls', dialer: 'source', messageBytes: 1 * MiB },
  { name: 'grpc source dials 64KiB', transport: 'grpc', dialer: 'source', messageBytes: 64 * KiB },
  { name: 'grpc source dials 1MiB', transport: 'grpc', dialer: 'source', messageBytes: 1 * MiB },
  { name: 'grpc target dials 64KiB', transport: 'grpc', dialer: 'target', messageBytes: 64 * KiB },
  { name: 'grpc target dials 1MiB', transport: 'grpc', dialer: 'target', messageBytes: 1 * MiB },
  {
    name: 'grpc target dials 1MiB win 8MiB',
    transport: 'grpc',
    dialer: 'target',
    messageBytes: 1 * MiB,
    flowControlWindow: 8 * MiB,
  },
  {
    name: 'grpc target dials 64KiB win 8MiB',
    transport: 'grpc',
    dialer: 'target',
    messageBytes: 64 * KiB,
    flowControlWindow: 8 * MiB,
  },
];

/** Receiver: counts `total` bytes, answers one byte, prints the elapsed time from first to last byte. */
function receive(link: Duplex, total: number): void {
  let got = 0;
  link.on('data', (chunk: Buffer) => {
    got += chunk.length;
    if (got !== total) return;
    link.write(Buffer.of(1));
    link.end(); // no argument: grpc-js takes end()'s argument of a server stream as trailing metadata
  });
  link.on('error', (error) => console.error(`receiver: ${error.message}`));
  link.resume();
}

async function child(variant: Variant, total: number, port: number | undefined): Promise<void> {
  const tls = nodeTls('node-b');
  if (variant.transport === 'tls') {
    const tokens = new MigrationTokenRegistry();
    const token = newMigrationToken();
    tokens.grant('bench', token, 1, Date.now() + 600_000);
    const listener = await listenForLinks({
      host: '127.0.0.1',
      port: 0,
      tls,
      admit: tokens.admit.bind(tokens),
      onLink: (link) => {
        receive(link, total);
        link.once('close', () => void listener.close());
      },
    });
    console.log(JSON.stringify({ port: listener.port, token }));
  } else if (variant.dialer === 'source') {
    const server = await serveGrpcLinks(tls, (stream) => {
      receive(stream, total);
      stream.once('finish', () => setTimeout(() => server.close(), 100));
    });
    console.log(JSON.stringify({ port: server.port }));
  } else {
    const link = dialGrpcLink(tls, port!, 0, variant.flowControlWindow);
    receive(link, total);
    link.write(Buffer.of(0)); // opens the stream on the server (grpc-js sends headers with the first message)
  }
}

async function send(link: Duplex, total: number, messageBytes: number): Promise<void> {
  const message = Buffer.alloc(messageBytes, 0xa5);
  const answered = new Promise<void>((resolve, reject) => {
    link.once('data', () => resolve());
    link.once('error', reject);
  });
  link.resume();
  for (let sent = 0; sent < total; sent += messageBytes) {
    if (!link.write(message)) await new Promise((r) => link.once('drain', r));
  }
  await answered;
  link.end();
}

async function runOnce(variant: Variant, total: number): Promise<number> {
  const self = fileURLToPath(import.meta.url);
  const args = ['--import', 'tsx', self, '--child', JSON.stringify(variant), '--total', String(total)];
  const tls = nodeTls('node-a');
  let stop = (): void => undefined;
  let linkReady: Promise<Duplex>;
  if (variant.transport === 'grpc' && variant.dialer === 'target') {
    let accept!: (link: Duplex) => void;
    linkReady = new Promise((resolve) => (accept = resolve));
    const server = await serveGrpcLinks(tls, (stream) => stream.once('data', () => accept(stream)));
    stop = () => server.close();
    args.push('--port', String(server.port));
  }
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  if (!(variant.transport === 'grpc' && variant.dialer === 'target')) {
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: proc.stdout }).once('line', resolve),
    );
    const { port, token } = JSON.parse(line) as { port: number; token?: string };
    linkReady =
      variant.transport === 'tls'
        ? dialLink({ host: '127.0.0.1', port, tls, token: token!, channelIndex: 0 })
        : Promise.resolve(dialGrpcLink(tls, port, 0));
  }
  const link = await linkReady!;
  const started = process.hrtime.bigint();
  await send(link, total, variant.messageBytes);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  stop();
  await exited;
  return total / seconds / 1e6;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const options = new Command()
    .option('--child <variant>')
    .option('--total <bytes>')
    .option('--port <port>')
    .option('--mib <n>', 'MiB per run', '256')
    .option('--rounds <n>', 'interleaved rounds', '3')
    .option('--only <substring>', 'run only variants whose name contains this')
    .parse()
    .opts<{ child?: string; total?: string; port?: string; mib: string; rounds: string; only?: string }>();
  if (options.child) {
    return child(
      JSON.parse(options.child) as Variant,
      Number(options.total),
      options.port ? Number(options.port) : undefined,
    );
  }
  const total = Number(options.mib) * MiB;
  const variants = VARIANTS.filter((v) => !options.only || v.name.includes(options.only));
  const results = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < Number(options.rounds); round++) {
    for (const variant of variants) {
      const mbps = await runOnce(variant, total);
      results.get(variant.name)!.push(mbps);
      console.log(`round ${round + 1} ${variant.name}: ${mbps.toFixed(0)} MB/s`);
    }
  }
  const reference = median(results.get(variants[0]!.name)!);
  console.log(
    `\nmedian of ${options.rounds} rounds, ${options.mib} MiB each (ratio to "${variants[0]!.name}")`,
  );
  for (const [name, values] of results) {
    const m = median(values);
    console.log(`${name.padEnd(34)} ${m.toFixed(0).padStart(5)} MB/s  ${(m / reference).toFixed(2)}`);
  }
}

await main();
