// What the operator's clients of one daemon's two gRPC services share: the node they talk to, and unary calls
// with a deadline (the call timeout, plus extra time for calls that wait on QEMU).
import type * as grpc from '@grpc/grpc-js';
import { unary, type UnaryCallback } from '../../../proto/index.js';

export abstract class DaemonApiClient<C extends grpc.Client> {
  constructor(
    readonly nodeName: string,
    readonly endpoint: string,
    protected readonly client: C,
    private readonly callTimeoutMs: number,
  ) {}

  close(): void {
    this.client.close();
  }

  protected unary<T>(
    invoke: (done: UnaryCallback<T>, deadline: grpc.Deadline) => void,
    extraMs = 0,
  ): Promise<T> {
    return unary(invoke, this.callTimeoutMs + extraMs);
  }
}
