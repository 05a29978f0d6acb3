// Wires one operator replica: informers, the VirtualMachine, Migration, MigrationPolicy-status, evacuation,
// HypervisorNode-health and (with --guard-namespace) guard-pod and cordon-mirror controllers, the eviction
// webhook, (with --node-signer-ca-cert) the signer of the daemons' certificates, the daemon client pool, leader
// election, and the /metrics, /healthz and /readyz endpoints.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { HypervisorNode, Migration, MigrationPolicy, VirtualMachine } from '../../crds/index.js';
import type { Lease } from './runtime/leader.js';
import { Manager } from './runtime/manager.js';
import type { OperatorConfig } from './config.js';
import { DaemonClientPool } from './daemon/client-pool.js';
import { EventRecorder } from '../../kube/events.js';
import { Leases } from '../../kube/resources.js';
import { RestKubeClient } from '../../kube/rest-client.js';
import { EvacuationReconciler } from './evacuation/reconciler.js';
import { StaleGuestReconciler } from './virtualmachine/stale-guests.js';
import { HypervisorNodeHealthReconciler } from './hypervisornode/health.js';
import { registerHypervisorNodeMetrics } from './hypervisornode/metrics.js';
import { MigrationMetrics } from './migration/metrics.js';
import { MigrationReconciler } from './migration/reconciler.js';
import { MigrationPolicyReconciler } from './migrationpolicy/reconciler.js';
import { HypervisorNodes, MigrationPolicies, Migrations, VirtualMachines } from '../../crds/index.js';
import { VirtualMachineReconciler } from './virtualmachine/reconciler.js';
import { startConsoleServer, type ConsoleServer } from './console/server.js';
import { Nodes, Pods } from '../../kube/resources.js';
import { CordonMirrorReconciler } from './maintenance/cordon-reconciler.js';
import { GUARD_SELECTOR, type KubeNode, type Pod } from './maintenance/guard-pods.js';
import { GuardReconciler } from './maintenance/guard-reconciler.js';
import { startEvictionWebhook, type EvictionWebhookServer } from './maintenance/webhook.js';
import { readFileSync } from 'node:fs';
import { CertificateSigningRequests } from '../../kube/resources.js';
import { loadCertificateAuthority } from '../../pki/index.js';
import { operatorCommonNames } from './identity/operator-names.js';
import { NodeCsrSigner, type CertificateSigningRequest } from './identity/node-csr-signer.js';

export interface RunningOperator {
  manager: Manager;
  metricsPort: number;
  /** The users' console endpoint's port (--console-listen); undefined without one. */
  consolePort?: number;
  /** The eviction webhook's port (--eviction-webhook-listen); undefined without one. */
  evictionWebhookPort?: number;
  /** Resolves when the manager ends; rejects with LeadershipLostError when leadership was lost. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startOperator(config: OperatorConfig, logger: Logger): Promise<RunningOperator> {
  const client = RestKubeClient.fromKubeconfig(config.kubeconfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const identity = config.leaderElection?.identity ?? `tern-operator_${process.pid}`;
  const manager = new Manager({ client, logger, registry, leaderElection: config.leaderElection });
  const events = new EventRecorder(client, { component: 'tern-operator', instance: identity, logger });
  const pool = new DaemonClientPool({
    tls: config.tls,
    callTimeoutMs: config.daemonCallTimeoutMs,
    fencing: manager,
  });

  const vms = manager.informer<VirtualMachine>(VirtualMachines);
  const nodes = manager.informer<HypervisorNode>(HypervisorNodes);
  const leases = manager.informer<Lease>(Leases, { namespace: config.nodeLeaseNamespace });
  const migrations = manager.informer<Migration>(Migrations);
  nodes.addHandlers({ onDelete: (node) => pool.forget(node.metadata.name!) });
  registerHypervisorNodeMetrics(
    registry,
    () => nodes.list(),
    () => vms.list(),
  );

  const vmReconciler = new VirtualMachineReconciler({
    client,
    pool,
    nodes,
    vms,
    migrations,
    events,
    pollIntervalMs: config.guestPollIntervalMs,
    stopTimeoutMs: config.guestStopTimeoutMs,
  });
  manager
    .addController({ name: 'virtualmachine', reconcile: vmReconciler.reconcile, workers: config.workers })
    .watch(vms)
    .watch(nodes, vmReconciler.vmKeysForNode);
  const staleGuests = new StaleGuestReconciler({
    client,
    pool,
    nodes,
    vms,
    events,
    stopTimeoutMs: config.guestStopTimeoutMs,
  });
  manager.addController({ name: 'stale-guests', reconcile: staleGuests.reconcile }).watch(nodes);

  const policies = manager.informer<MigrationPolicy>(MigrationPolicies);
  const migrationReconciler = new MigrationReconciler({
    client,
    pool,
    nodes,
    vms,
    migrations,
    policies,
    events,
    limits: config.migrationLimits,
    progressIntervalMs: config.migrationProgressIntervalMs,
    historyLimit: config.migrationHistoryLimit,
    metrics: new MigrationMetrics(registry, () => migrations.list()),
  });
  // One worker: admissions run one at a time, so two never take the same concurrency slot. The phases run
  // outside the worker (one run per Migration).
  manager
    .addController({ name: 'migration', reconcile: migrationReconciler.reconcile, workers: 1 })
    .watch(migrations)
    .watch(migrations, migrationReconciler.pendingKeys)
    .watch(vms, migrationReconciler.migrationKeysForVm)
    .watch(nodes, migrationReconciler.migrationKeysForNode);

  const policyStatus = new MigrationPolicyReconciler({ client, policies });
  manager.addController({ name: 'migrationpolicy', reconcile: policyStatus.reconcile }).watch(policies);

  const evacuation = new EvacuationReconciler({ client, nodes, vms, migrations, events });
  manager
    .addController({ name: 'evacuation', reconcile: evacuation.reconcile })
    .watch(nodes)
    .watch(vms, evacuation.nodeKeysForVm)
    .watch(migrations, evacuation.nodeKeysForMigration);

  const health = new HypervisorNodeHealthReconciler({
    client,
    nodes,
    leases,
    leaseNamespace: config.nodeLeaseNamespace,
    nodeLossMarginMs: config.nodeLossMarginSeconds * 1000,
    events,
  });
  manager
    .addController({ name: 'hypervisornode-health', reconcile: health.reconcile })
    .watch(nodes)
    .watch(leases, health.nodeKeyForLease);

  const maintenance = config.nodeMaintenance;
  if (maintenance) {
    const kubeNodes = manager.informer<KubeNode>(Nodes);
    const pods = manager.informer<Pod>(Pods, {
      namespace: maintenance.namespace,
      labelSelector: GUARD_SELECTOR,
    });
    const guards = new GuardReconciler({
      client,
      vms,
      nodes,
      pods,
      kubeNodes,
      namespace: maintenance.namespace,
      image: maintenance.guardImage,
    });
    manager
      .addController({ name: 'vm-guard', reconcile: guards.reconcile })
      .watch(vms)
      .watch(pods, guards.vmKeysForPod)
      .watch(kubeNodes, guards.vmKeysForKubeNode);
    const mirror = new CordonMirrorReconciler({ client, nodes, kubeNodes });
    manager
      .addController({ name: 'cordon-mirror', reconcile: mirror.reconcile })
      .watch(nodes)
      .watch(kubeNodes);
  }

  const signer = config.nodeSigner;
  if (signer) {
    const ca = loadCertificateAuthority(
      readFileSync(signer.caCertFile, 'utf8'),
      readFileSync(signer.caKeyFile, 'utf8'),
    );
    const csrs = manager.informer<CertificateSigningRequest>(CertificateSigningRequests, {
      fieldSelector: NodeCsrSigner.fieldSelector,
    });
    const { namespace, name } = signer.daemonServiceAccount;
    const nodeCsrSigner = new NodeCsrSigner({
      client,
      ca,
      policy: {
        daemonUsername: `system:serviceaccount:${namespace}:${name}`,
        operatorNames: operatorCommonNames(readFileSync(config.tls.certFile, 'utf8')),
        maxLifetimeSeconds: signer.maxLifetimeSeconds,
      },
    });
    manager.addController({ name: 'node-csr-signer', reconcile: nodeCsrSigner.reconcile }).watch(csrs);
  }

  const server = http.createServer((request, response) => {
    const reply = (code: number, body: string, type = 'text/plain') => {
      response.writeHead(code, { 'content-type': type }).end(body);
    };
    if (request.url === '/metrics') {
      registry.metrics().then(
        (text) => reply(200, text, registry.contentType),
        (error: unknown) => reply(500, String(error)),
      );
    } else if (request.url === '/healthz') reply(200, 'ok');
    else if (request.url === '/readyz')
      reply(manager.hasSynced() ? 200 : 503, manager.hasSynced() ? 'ok' : 'syncing');
    else reply(404, 'not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.metricsListen.port, config.metricsListen.host, resolve);
  });

  // Every replica serves consoles (they only read the VM and forward bytes), leader or not.
  let consoleServer: ConsoleServer | undefined;
  if (config.console !== undefined) {
    try {
      consoleServer = await startConsoleServer(config.console, client, pool, logger);
    } catch (error) {
      server.close();
      throw error;
    }
  }

  // Every replica answers evictions too: the apiserver calls whichever the Service picks.
  let webhookServer: EvictionWebhookServer | undefined;
  if (maintenance?.webhook !== undefined) {
    try {
      webhookServer = await startEvictionWebhook(maintenance.webhook, client, logger);
    } catch (error) {
      server.close();
      void consoleServer?.close();
      throw error;
    }
  }

  const done = manager.start().finally(() => {
    void consoleServer?.close();
    void webhookServer?.close();
    pool.close();
    server.close();
  });
  return {
    manager,
    metricsPort: (server.address() as AddressInfo).port,
    consolePort: consoleServer?.port,
    evictionWebhookPort: webhookServer?.port,
    done,
    async stop() {
      await manager.stop();
      await done.catch(() => undefined);
    },
  };
}
