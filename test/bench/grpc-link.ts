// The gRPC variant of a migration link, kept for the transport benchmark only (the tunnel uses TLS links, see
// hypervisor-node/src/migration/tunnel/README.md): one bidi stream per QEMU connection, raw Buffers as messages.
import * as grpc from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import type { LinkTls } from '../../hypervisor-node/src/migration/tunnel/tls-link.js';

const identity = (b: Buffer): Buffer => b;
const service: grpc.ServiceDefinition = {
  Channel: {
    path: '/tern.bench.v1.MigrationTunnel/Channel',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const UNLIMITED = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };

export interface GrpcLinkServer {
  port: number;
  close(): void;
}

/** Serves streams; `onStream` gets each with the channel index its caller put in the metadata. */
export async function serveGrpcLinks(
  tls: LinkTls,
  onStream: (stream: Duplex, channelIndex: number) => void,
): Promise<GrpcLinkServer> {
  const server = new grpc.Server(UNLIMITED);
  server.addService(service, {
    Channel: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      // grpc-js streams are Duplex at runtime; its typings describe them as object-mode intersections.
      onStream(call as unknown as Duplex, Number(call.metadata.get('channel')[0]));
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(tls.ca),
    [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { port, close: () => server.forceShutdown() };
}

/** Opens one stream; `flowControlWindow` is grpc-js's client-side receive window (bytes), if set. */
export function dialGrpcLink(
  tls: LinkTls,
  port: number,
  channelIndex: number,
  flowControlWindow?: number,
): Duplex {
  const Client = grpc.makeGenericClientConstructor(service, 'MigrationTunnel');
  const credentials = grpc.credentials.createSsl(
    Buffer.from(tls.ca),
    Buffer.from(tls.key),
    Buffer.from(tls.cert),
  );
  const client = new Client(`127.0.0.1:${port}`, credentials, {
    ...UNLIMITED,
    ...(flowControlWindow ? { 'grpc-node.flow_control_window': flowControlWindow } : {}),
  });
  const metadata = new grpc.Metadata();
  metadata.set('channel', String(channelIndex));
  const call = (
    client as unknown as { Channel: (m: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer> }
  ).Channel(metadata);
  call.once('close', () => client.close());
  // A stream that ends with OK status is a clean close; the status event carries nothing the tunnel needs.
  call.on('status', () => undefined);
  return call as unknown as Duplex;
}
