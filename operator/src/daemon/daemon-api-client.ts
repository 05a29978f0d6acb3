// What the operator's clients of one daemon's two gRPC services share: the node they talk to, unary calls with a
// deadline (the call timeout, plus extra time for calls that wait on QEMU), and the fencing token every call
// carries (fencing.ts). A view bound to a signal (during()) makes no call once the signal aborted: a migration run
// whose controller stopped cannot reach a daemon any more.
import type * as grpc from '@grpc/grpc-js';
import { fencingMetadata, unary, type UnaryCallback } from '../../../proto/index.js';
import { asFencedError, UNFENCED, type FencingTokenSource } from './fencing.js';

/** What each call passes to the grpc-js client method: the metadata with the token, and the deadline. */
export interface CallContext {
  metadata: grpc.Metadata;
  options: grpc.CallOptions;
}

type ClientConstructor<This, C extends grpc.Client> = new (
  nodeName: string,
  endpoint: string,
  client: C,
  callTimeoutMs: number,
  fencing?: FencingTokenSource,
  signal?: AbortSignal,
) => This;

export abstract class DaemonApiClient<C extends grpc.Client> {
  constructor(
    readonly nodeName: string,
    readonly endpoint: string,
    protected readonly client: C,
    private readonly callTimeoutMs: number,
    private readonly fencing: FencingTokenSource = UNFENCED,
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * This client for calls made on behalf of something that can stop (a migration run): once `signal` aborted,
   * every call throws its reason instead of reaching the daemon. It shares the channel: do not close it.
   */
  during(signal: AbortSignal): this {
    const Client = this.constructor as ClientConstructor<this, C>;
    return new Client(this.nodeName, this.endpoint, this.client, this.callTimeoutMs, this.fencing, signal);
  }

  close(): void {
    this.client.close();
  }

  /** The metadata of a call made now: the fencing token (throws when this replica may not call, or stopped). */
  protected callMetadata(): grpc.Metadata {
    this.signal?.throwIfAborted();
    return fencingMetadata(this.fencing.fencingToken());
  }

  protected async unary<T>(
    invoke: (done: UnaryCallback<T>, call: CallContext) => void,
    extraMs = 0,
  ): Promise<T> {
    const metadata = this.callMetadata();
    try {
      return await unary(
        (done, deadline) => invoke(done, { metadata, options: { deadline } }),
        this.callTimeoutMs + extraMs,
      );
    } catch (error) {
      throw asFencedError(this.nodeName, error);
    }
  }
}
