// A gRPC proxy in front of one daemon, for tests of what reaches a daemon late: it serves both daemon services
// with the node's certificate (so the operator, which checks the node name, dials it as the daemon when the daemon
// advertises the proxy's address), forwards every call to the daemon with the operator's certificate and the
// call's fencing token, and holds the calls a test picks until it releases them, as a slow or congested network
// would deliver them. A held call is forwarded on release without the caller's deadline: the daemon sees it
// arrive late, whatever became of the caller meanwhile; the daemon's answer is kept for the test.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  FENCING_TOKEN_METADATA,
  fencingTokenOf,
  loadControlProto,
  loadMigrationProto,
} from '../../proto/index.js';
import type { DevCerts } from './certificates.js';

export interface ProxiedCall {
  method: string;
  /** The call's fencing token (undefined: malformed). */
  token: number | undefined;
}

export interface HeldCall extends ProxiedCall {
  /** The daemon's answer once the call was released and forwarded. */
  answer: Promise<{ code: grpc.status; details: string }>;
}

type Answer = { error: grpc.ServiceError | null; value?: unknown };

export class GrpcHoldProxy {
  /** Every call forwarded at once, in order. */
  readonly forwarded: ProxiedCall[] = [];
  /** Every call held. */
  readonly held: HeldCall[] = [];
  private hold: ((call: ProxiedCall) => boolean) | undefined;
  private releaseHeld: () => void = () => undefined;
  private released: Promise<void> = Promise.resolve();
  private upstream: grpc.Client | undefined;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
    private readonly certs: DevCerts,
    private readonly nodeName: string,
  ) {}

  /** Listens on a free loopback port as `nodeName`; connect() names the daemon behind it. */
  static async start(certs: DevCerts, nodeName: string): Promise<GrpcHoldProxy> {
    const pair = certs.nodes[nodeName]!;
    const server = new grpc.Server();
    const credentials = grpc.ServerCredentials.createSsl(
      readFileSync(certs.ca.cert),
      [{ cert_chain: readFileSync(pair.cert), private_key: readFileSync(pair.key) }],
      true,
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', credentials, (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    const proxy = new GrpcHoldProxy(server, port, certs, nodeName);
    for (const service of [loadControlProto().GuestControl.service, loadMigrationProto().Migration.service]) {
      server.addService(service, proxy.handlers(service));
    }
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Forwards to the daemon at `address` from now on. */
  connect(address: string): void {
    this.upstream?.close();
    const { ca, cert, key } = { ...this.certs.operator, ca: this.certs.ca.cert };
    this.upstream = new grpc.Client(
      address,
      grpc.credentials.createSsl(readFileSync(ca), readFileSync(key), readFileSync(cert)),
      { 'grpc.ssl_target_name_override': this.nodeName },
    );
  }

  /** Holds the unary calls `match` picks, from now until release(). */
  holdCalls(match: (call: ProxiedCall) => boolean): void {
    this.hold = match;
    this.released = new Promise((resolve) => (this.releaseHeld = resolve));
  }

  /** Forwards the held calls and holds no more; resolves with their answers. */
  async release(): Promise<Array<{ code: grpc.status; details: string }>> {
    this.hold = undefined;
    this.releaseHeld();
    return Promise.all(this.held.map((call) => call.answer));
  }

  async close(): Promise<void> {
    this.releaseHeld();
    this.upstream?.close();
    this.server.forceShutdown();
  }

  private handlers(service: grpc.ServiceDefinition): grpc.UntypedServiceImplementation {
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, definition] of Object.entries(service)) {
      handlers[name] = definition.responseStream
        ? (call: grpc.ServerWritableStream<unknown, unknown>) => this.stream(definition, call)
        : (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
            this.unary(definition, call, callback);
    }
    return handlers;
  }

  private unary(
    definition: grpc.MethodDefinition<unknown, unknown>,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ): void {
    const proxied = { method: definition.path.split('/').pop()!, token: fencingTokenOf(call.metadata) };
    const metadata = tokenOnly(call.metadata);
    const forward = () =>
      new Promise<Answer>((resolve) =>
        this.upstream!.makeUnaryRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          call.request,
          metadata,
          {},
          (error, value) => resolve({ error, value }),
        ),
      );
    let answered: Promise<Answer>;
    if (this.hold?.(proxied)) {
      answered = this.released.then(forward);
      this.held.push({
        ...proxied,
        answer: answered.then(({ error }) => ({
          code: error?.code ?? grpc.status.OK,
          details: error?.details ?? '',
        })),
      });
    } else {
      this.forwarded.push(proxied);
      answered = forward();
    }
    void answered.then(({ error, value }) => callback(error, value));
  }

  private stream(
    definition: grpc.MethodDefinition<unknown, unknown>,
    call: grpc.ServerWritableStream<unknown, unknown>,
  ): void {
    this.forwarded.push({ method: definition.path.split('/').pop()!, token: fencingTokenOf(call.metadata) });
    const upstream = this.upstream!.makeServerStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      call.request,
      tokenOnly(call.metadata),
      {},
    );
    let done = false;
    upstream.on('data', (message: unknown) => call.write(message));
    upstream.on('end', () => {
      if (!done) call.end();
      done = true;
    });
    upstream.on('error', (error: grpc.ServiceError) => {
      if (!done) call.emit('error', error);
      done = true;
    });
    call.on('cancelled', () => upstream.cancel());
  }
}

/** The metadata forwarded: the fencing token, if the call carries one. */
function tokenOnly(incoming: grpc.Metadata): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const value of incoming.get(FENCING_TOKEN_METADATA)) metadata.add(FENCING_TOKEN_METADATA, value);
  return metadata;
}
