// One gRPC client per hypervisor node, dialled at the endpoint its HypervisorNode reports, over mTLS with the
// operator's certificate. The daemon's certificate must name the node (DNS SAN = node name): the TLS target name
// is the node name, not the endpoint, so a HypervisorNode cannot redirect the operator to another node's daemon.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadControlProto, loadMigrationProto } from '../../../proto/index.js';
import type { FencingTokenSource } from './fencing.js';
import { DaemonGuestClient } from './guest-client.js';
import { MigrationDaemonClient } from './migration-client.js';

/** The operator's client certificate and key, and the CA the daemons' certificates must chain to. */
export interface ClientTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface DaemonClientPoolOptions {
  /** Deadline of every unary call to a daemon (calls that wait on QEMU add their own extra time). */
  callTimeoutMs: number;
  tls: ClientTlsFiles;
  /** The fencing token of every call (the manager's: the leader Lease's term, or 0 without leader election). */
  fencing: FencingTokenSource;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Notice a dead peer within ~30 s on an idle channel, and reconnect at most 5 s apart.
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

export class DaemonClientPool {
  private readonly credentials: grpc.ChannelCredentials;
  private readonly GuestControl = loadControlProto().GuestControl;
  private readonly Migration = loadMigrationProto().Migration;
  private readonly clients = new Map<string, DaemonGuestClient>();
  private readonly migrationClients = new Map<string, MigrationDaemonClient>();

  constructor(private readonly options: DaemonClientPoolOptions) {
    // Read once: a rotated certificate takes effect on the operator's next restart.
    this.credentials = grpc.credentials.createSsl(
      readFileSync(options.tls.caFile),
      readFileSync(options.tls.keyFile),
      readFileSync(options.tls.certFile),
    );
  }

  /** Where the clients' fencing token comes from; it throws while this replica may not act. */
  get fencing(): FencingTokenSource {
    return this.options.fencing;
  }

  /** The client of nodeName at endpoint; a client for an older endpoint of that node is closed and replaced. */
  guestClient(nodeName: string, endpoint: string): DaemonGuestClient {
    const existing = this.clients.get(nodeName);
    if (existing?.endpoint === endpoint) return existing;
    existing?.close();
    const raw = new this.GuestControl(endpoint, this.credentials, this.channelOptions(nodeName));
    const created = new DaemonGuestClient(
      nodeName,
      endpoint,
      raw,
      this.options.callTimeoutMs,
      this.options.fencing,
    );
    this.clients.set(nodeName, created);
    return created;
  }

  /** The Migration API client of nodeName at endpoint (same daemon, same rules as guestClient()). */
  migrationClient(nodeName: string, endpoint: string): MigrationDaemonClient {
    const existing = this.migrationClients.get(nodeName);
    if (existing?.endpoint === endpoint) return existing;
    existing?.close();
    const raw = new this.Migration(endpoint, this.credentials, this.channelOptions(nodeName));
    const created = new MigrationDaemonClient(
      nodeName,
      endpoint,
      raw,
      this.options.callTimeoutMs,
      this.options.fencing,
    );
    this.migrationClients.set(nodeName, created);
    return created;
  }

  private channelOptions(nodeName: string): grpc.ChannelOptions {
    return {
      ...CHANNEL_OPTIONS,
      'grpc.ssl_target_name_override': nodeName,
      'grpc.default_authority': nodeName,
    };
  }

  /** Closes the client of a node that vanished. */
  forget(nodeName: string): void {
    this.clients.get(nodeName)?.close();
    this.clients.delete(nodeName);
    this.migrationClients.get(nodeName)?.close();
    this.migrationClients.delete(nodeName);
  }

  get size(): number {
    return this.clients.size;
  }

  close(): void {
    for (const client of [...this.clients.values(), ...this.migrationClients.values()]) client.close();
    this.clients.clear();
    this.migrationClients.clear();
  }
}
