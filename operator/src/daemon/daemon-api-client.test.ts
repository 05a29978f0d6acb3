import * as grpc from '@grpc/grpc-js';
import {
  FENCING_REFUSED_METADATA,
  FENCING_TOKEN_METADATA,
  type GuestControlClient,
} from '../../../proto/index.js';
import { FencedError, type FencingTokenSource } from './fencing.js';
import { DaemonGuestClient } from './guest-client.js';

/** A GuestControl client that records each getGuest/stopGuest call and answers with `answer`. */
function fakeClient(answer: () => grpc.ServiceError | null) {
  const calls: Array<{ token: string | undefined }> = [];
  const respond = (
    _request: unknown,
    metadata: grpc.Metadata,
    _options: grpc.CallOptions,
    done: (error: grpc.ServiceError | null, value?: unknown) => void,
  ) => {
    calls.push({ token: metadata.get(FENCING_TOKEN_METADATA)[0] as string | undefined });
    const error = answer();
    setImmediate(() => done(error, error ? undefined : { phase: 'GUEST_PHASE_STOPPED' }));
  };
  const raw = { getGuest: respond, stopGuest: respond, close: () => undefined };
  return { raw: raw as unknown as GuestControlClient, calls };
}

const tokenSource = (token: () => number): FencingTokenSource => ({ fencingToken: token });

describe('the daemon clients and fencing', () => {
  it("sends the token source's token on every call", async () => {
    const { raw, calls } = fakeClient(() => null);
    let token = 4;
    const client = new DaemonGuestClient(
      'node-a',
      'x:1',
      raw,
      1_000,
      tokenSource(() => token),
    );
    await client.getGuest('vm');
    token = 5;
    await client.stopGuest('vm', 1_000);
    expect(calls).toEqual([{ token: '4' }, { token: '5' }]);
  });

  it('makes no call when the token source refuses (this replica does not lead)', async () => {
    const { raw, calls } = fakeClient(() => null);
    const client = new DaemonGuestClient('node-a', 'x:1', raw, 1_000, {
      fencingToken: () => {
        throw new Error('this replica does not lead');
      },
    });
    await expect(client.stopGuest('vm', 1_000)).rejects.toThrow('this replica does not lead');
    expect(calls).toEqual([]);
  });

  it('a view bound to a signal makes no call once it aborted; the pool client is not affected', async () => {
    const { raw, calls } = fakeClient(() => null);
    const client = new DaemonGuestClient(
      'node-a',
      'x:1',
      raw,
      1_000,
      tokenSource(() => 1),
    );
    const stopped = new AbortController();
    const run = client.during(stopped.signal);
    expect(run).toBeInstanceOf(DaemonGuestClient);
    await run.getGuest('vm');
    stopped.abort();
    await expect(run.stopGuest('vm', 1_000)).rejects.toMatchObject({ name: 'AbortError' });
    await client.stopGuest('vm', 1_000);
    expect(calls).toHaveLength(2);
  });

  it("turns a daemon's refusal of a stale token into a FencedError with the daemon's highest token", async () => {
    const refusal = () => {
      const metadata = new grpc.Metadata();
      metadata.set(FENCING_REFUSED_METADATA, '7');
      const details = "the operator's fencing token 6 is older than 7 seen on this node: a newer leader runs";
      return Object.assign(new Error(details), { code: grpc.status.PERMISSION_DENIED, details, metadata });
    };
    const client = new DaemonGuestClient(
      'node-a',
      'x:1',
      fakeClient(refusal).raw,
      1_000,
      tokenSource(() => 6),
    );
    const error = await client.stopGuest('vm', 1_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FencedError);
    expect(error).toMatchObject({ nodeName: 'node-a', highestToken: 7 });
    expect((error as Error).message).toBe(
      "node-a refused the call: the operator's fencing token 6 is older than 7 seen on this node: a newer leader runs",
    );
    // A refusal for another reason (an identity the daemon does not accept) stays the gRPC error it is.
    const denied = () =>
      Object.assign(new Error('not the operator'), {
        code: grpc.status.PERMISSION_DENIED,
        details: 'not the operator',
        metadata: new grpc.Metadata(),
      });
    const other = new DaemonGuestClient(
      'node-a',
      'x:1',
      fakeClient(denied).raw,
      1_000,
      tokenSource(() => 6),
    );
    await expect(other.stopGuest('vm', 1_000)).rejects.not.toBeInstanceOf(FencedError);
  });
});
