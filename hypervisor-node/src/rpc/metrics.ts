// tern_node_rpc_duration_seconds{method,code}: the latency of every call to the daemon's gRPC services, by the
// gRPC status code name it ended with.
import * as grpc from '@grpc/grpc-js';
import { Histogram, type Registry } from 'prom-client';

export class RpcMetrics {
  private readonly duration: Histogram<'method' | 'code'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'tern_node_rpc_duration_seconds',
      help: 'gRPC call latency (for streams: until the stream ends)',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    });
  }

  /** A call that began at `started` (process.hrtime.bigint()) ended now with `code`. */
  observe(method: string, started: bigint, code: grpc.status): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.duration.observe({ method, code: grpc.status[code] }, seconds);
  }
}
