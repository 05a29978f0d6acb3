import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { FENCING_REFUSED_METADATA, fencingMetadata } from '../../../proto/index.js';
import { OperatorCalls } from './calls.js';
import { FencingStore } from './fencing.js';
import { RpcMetrics } from './metrics.js';

let dir: string;
let fencing: FencingStore;
let calls: OperatorCalls;
/** The requests the implementations received: a refused call never reaches its implementation. */
let reached: string[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'calls-'));
  fencing = await FencingStore.open(dir);
  calls = new OperatorCalls({
    service: 'test',
    operatorIdentities: ['tern-operator'],
    errorStatuses: [],
    fencing,
    metrics: new RpcMetrics(new Registry()),
    logger: pino({ enabled: false }),
  });
  reached = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A unary call as grpc-js hands it to a handler: the operator's certificate, `metadata`, the request. */
function fakeCall(request: string, metadata: grpc.Metadata, cn = 'tern-operator') {
  return Object.assign(new EventEmitter(), {
    request,
    metadata,
    getAuthContext: () => ({ sslPeerCertificate: { subject: { CN: cn } } }),
    getPeer: () => '127.0.0.1:1',
  }) as unknown as grpc.ServerUnaryCall<string, string>;
}

/** Runs `handler` on one call; resolves with its answer or its error. */
function invoke(
  handler: grpc.handleUnaryCall<string, string>,
  request: string,
  metadata = new grpc.Metadata(),
  cn?: string,
): Promise<{ error: grpc.ServiceError | null; value?: string }> {
  return new Promise((resolve) =>
    handler(fakeCall(request, metadata, cn), (error, value) =>
      resolve({ error: error as grpc.ServiceError | null, value: value ?? undefined }),
    ),
  );
}

const change = () =>
  calls.unary<string, string>('Change', (request) => {
    reached.push(request);
    return `changed ${request}`;
  });
const read = () =>
  calls.read<string, string>('Read', (request) => {
    reached.push(request);
    return `read ${request}`;
  });

describe('OperatorCalls fencing', () => {
  it('answers a guest-changing call whose token is the highest yet, and records it', async () => {
    expect(await invoke(change(), 'a', fencingMetadata(3))).toEqual({ error: null, value: 'changed a' });
    expect(fencing.highestToken).toBe(3);
  });

  it('refuses a guest-changing call with an older token before it reaches the service', async () => {
    await invoke(change(), 'new leader', fencingMetadata(4));
    const { error } = await invoke(change(), 'deposed leader', fencingMetadata(3));
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toBe(
      "the operator's fencing token 3 is older than 4 seen on this node: a newer leader runs",
    );
    expect(error?.metadata.get(FENCING_REFUSED_METADATA)).toEqual(['4']);
    expect(reached).toEqual(['new leader']);
  });

  it('answers a read whatever its token, and a read with a higher token fences older leaders', async () => {
    expect((await invoke(read(), 'r1', fencingMetadata(6))).value).toBe('read r1');
    expect((await invoke(read(), 'r2', fencingMetadata(2))).value).toBe('read r2');
    expect((await invoke(change(), 'c', fencingMetadata(5))).error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(reached).toEqual(['r1', 'r2']);
  });

  it('counts a call without a token as token 0: refused once an elected leader called', async () => {
    expect((await invoke(change(), 'unfenced')).value).toBe('changed unfenced');
    await invoke(read(), 'leader read', fencingMetadata(1));
    const { error } = await invoke(change(), 'no token');
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toMatch(/token 0 \(no leader election, or no token sent\) is older than 1/);
  });

  it('refuses a malformed token with INVALID_ARGUMENT', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('tern-fencing-token', '-1');
    const { error } = await invoke(change(), 'x', metadata);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(reached).toEqual([]);
  });

  it('checks the identity first: a caller that is not the operator does not move the token', async () => {
    const { error } = await invoke(read(), 'x', fencingMetadata(9), 'node-a');
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.metadata.get(FENCING_REFUSED_METADATA)).toEqual([]);
    expect(fencing.highestToken).toBe(0);
  });
});
