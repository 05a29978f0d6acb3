import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { HostPort } from '../../cmdline/index.js';
import type { GuestPhase, GuestStatus } from './model/guest.js';

const PHASES: GuestPhase[] = ['Starting', 'Running', 'Paused', 'Stopping', 'Stopped', 'Failed'];

export interface DaemonMetrics {
  registry: Registry;
  /** tern_node_qemu_exits_total{phase}: QEMU processes that ended, by the phase the guest ended in (Stopped, Failed). */
  qemuExits: Counter<'phase'>;
}

/** A registry of its own (not prom-client's global one), with tern_node_guests{phase} read from listGuests at scrape. */
export function createDaemonMetrics(nodeName: string, listGuests: () => GuestStatus[]): DaemonMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeName });
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'tern_node_guests',
    help: 'Guests on this node by phase',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const counts = new Map<GuestPhase, number>(PHASES.map((phase) => [phase, 0]));
      for (const guest of listGuests()) counts.set(guest.phase, (counts.get(guest.phase) ?? 0) + 1);
      for (const [phase, count] of counts) this.set({ phase }, count);
    },
  });
  // One series per guest: its key on the node (the VM's UID) with the name people know it by.
  new Gauge({
    name: 'tern_node_guest_info',
    help: 'Each guest on this node (value 1): its name (the key), display name (namespace/name) and phase',
    labelNames: ['guest', 'display_name', 'phase'],
    registers: [registry],
    collect() {
      this.reset();
      for (const guest of listGuests()) {
        const displayName = guest.spec.displayName ?? guest.name;
        this.set({ guest: guest.name, display_name: displayName, phase: guest.phase }, 1);
      }
    },
  });
  return {
    registry,
    qemuExits: new Counter({
      name: 'tern_node_qemu_exits_total',
      help: 'QEMU processes that exited, by the phase their guest ended in',
      labelNames: ['phase'],
      registers: [registry],
    }),
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format) and GET /healthz. */
export async function startMetricsServer(registry: Registry, listen: HostPort): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (error: Error) => response.writeHead(500).end(error.message),
      );
    } else if (request.method === 'GET' && request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
