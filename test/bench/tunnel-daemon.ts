// One daemon's side of the migration tunnel, as a separate process for the benchmark. The parent drives it over
// stdin/stdout JSON lines; the data plane is the real tunnel module.
//   node --import tsx test/bench/tunnel-daemon.ts --role source|target --transport tls|grpc
//
// tls:  the source daemon dials one TLS link per QEMU connection to the target daemon (the production design).
// grpc: the target daemon dials one gRPC bidi stream per channel to the source daemon, so the bulk receiver is
//       the gRPC client whose receive window grpc-js can tune (measured fastest gRPC shape, link-throughput bench).
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import { Command } from 'commander';
import {
  openSourceEndpoint,
  type TunnelEndpoint,
} from '../../hypervisor-node/src/migration/tunnel/source-endpoint.js';
import { openTargetEndpoint } from '../../hypervisor-node/src/migration/tunnel/target-endpoint.js';
import { dialLink, listenForLinks } from '../../hypervisor-node/src/migration/tunnel/tls-link.js';
import { MigrationTokenRegistry } from '../../hypervisor-node/src/migration/tunnel/token.js';
import { nodeTls } from './bench-certs.js';
import { dialGrpcLink, serveGrpcLinks } from './grpc-link.js';

export interface DaemonRequest {
  id: number;
  token: string;
  channels: number;
  /** Source: the unix socket QEMU migrates into. Target: the target QEMU's incoming socket. */
  socketPath: string;
  /** Source: the peer's port (TLS link listener of the target daemon); target (grpc): the source daemon's port. */
  peerPort?: number;
  maxInFlightBytes?: number;
}

export type DaemonMessage =
  | { listening: number }
  | { id: number; ready: true }
  | { id: number; done: true; stats: ReturnType<TunnelEndpoint['stats']>; error?: string };

const GRPC_WINDOW = 8 << 20;
const reply = (message: DaemonMessage): void => void process.stdout.write(JSON.stringify(message) + '\n');

async function main(): Promise<void> {
  const { role, transport } = new Command()
    .requiredOption('--role <role>')
    .requiredOption('--transport <transport>')
    .parse()
    .opts<{ role: 'source' | 'target'; transport: 'tls' | 'grpc' }>();
  const tls = nodeTls(role === 'source' ? 'node-a' : 'node-b');
  const tokens = new MigrationTokenRegistry();
  const targets = new Map<string, ReturnType<typeof openTargetEndpoint>>();
  // grpc: streams the target dialled, per migration token and channel index, until the source endpoint asks.
  const incoming = new Map<string, Map<number, (stream: Duplex) => void>>();

  const report = (id: number, endpoint: TunnelEndpoint): void => {
    void endpoint.done.then((results) => {
      const error = results.find((r) => r.error)?.error?.message;
      reply({ id, done: true, stats: endpoint.stats(), ...(error ? { error } : {}) });
    });
  };

  if (role === 'target' && transport === 'tls') {
    const listener = await listenForLinks({
      host: '127.0.0.1',
      port: 0,
      tls,
      admit: tokens.admit.bind(tokens),
      onLink: (link, admission) => {
        targets
          .get(admission.migrationId)
          ?.accept(link, admission.channelIndex)
          .catch(() => undefined);
      },
    });
    reply({ listening: listener.port });
  }
  if (role === 'source' && transport === 'grpc') {
    const server = await serveGrpcLinks(tls, (stream, channelIndex) => {
      // The target's first message only opens the stream; it is not migration data.
      stream.once('data', (hello: Buffer) => {
        stream.pause();
        const token = hello.toString();
        incoming.get(token)?.get(channelIndex)?.(stream);
      });
    });
    reply({ listening: server.port });
  }

  for await (const line of createInterface({ input: process.stdin })) {
    const request = JSON.parse(line) as DaemonRequest;
    const migrationId = String(request.id);
    if (role === 'target') {
      tokens.grant(migrationId, request.token, request.channels, Date.now() + 600_000);
      const endpoint = openTargetEndpoint({
        qemuSocketPath: request.socketPath,
        channels: request.channels,
        maxInFlightBytes: request.maxInFlightBytes,
      });
      targets.set(migrationId, endpoint);
      if (transport === 'grpc') {
        for (let index = 0; index < request.channels; index++) {
          const stream = dialGrpcLink(tls, request.peerPort!, index, GRPC_WINDOW);
          stream.write(Buffer.from(request.token));
          endpoint.accept(stream, index).catch(() => undefined);
        }
      }
      report(request.id, endpoint);
    } else {
      const waiting = new Map<number, (stream: Duplex) => void>();
      const streams = new Map<number, Promise<Duplex>>();
      for (let index = 0; index < request.channels; index++) {
        streams.set(index, new Promise((resolve) => waiting.set(index, resolve)));
      }
      incoming.set(request.token, waiting);
      const endpoint = await openSourceEndpoint({
        socketPath: request.socketPath,
        channels: request.channels,
        maxInFlightBytes: request.maxInFlightBytes,
        connect: (channelIndex) =>
          transport === 'tls'
            ? dialLink({
                host: '127.0.0.1',
                port: request.peerPort!,
                tls,
                token: request.token,
                channelIndex,
              })
            : streams.get(channelIndex)!,
      });
      report(request.id, endpoint);
    }
    reply({ id: request.id, ready: true });
  }
  process.exit(0); // the parent closed our stdin: the benchmark is over
}

await main();
