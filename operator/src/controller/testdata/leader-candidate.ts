// One operator replica for controller.int.test.ts, run as its own process so the test can SIGKILL it:
// a Manager with leader election and a controller that prints every ConfigMap it reconciles.
// Usage: leader-candidate.ts <kubeconfig> <identity> <namespace>
import { RestKubeClient } from '../../kube/rest-client.js';
import { ConfigMaps } from '../../kube/resources.js';
import { createLogger } from '../logger.js';
import { LeadershipLostError, Manager } from '../manager.js';

const [kubeconfig, identity, namespace] = process.argv.slice(2);
if (!kubeconfig || !identity || !namespace)
  throw new Error('usage: leader-candidate.ts <kubeconfig> <identity> <namespace>');

const client = RestKubeClient.fromKubeconfig(kubeconfig);
const manager = new Manager({
  client,
  logger: createLogger({ level: 'warn' }),
  leaderElection: {
    namespace,
    name: 'leader-test',
    identity,
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 500,
  },
  shutdownTimeoutMs: 5_000,
});
manager
  .addController({
    name: 'configmaps',
    reconcile: async ({ key }) => {
      console.log(JSON.stringify({ event: 'reconciled', key, identity, at: Date.now() }));
    },
  })
  .watch(manager.informer(ConfigMaps, { namespace }));
manager.handleSignals();
console.log(JSON.stringify({ event: 'started', identity }));
try {
  await manager.start();
  console.log(JSON.stringify({ event: 'stopped', identity }));
  client.close();
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ event: 'failed', identity, lost: err instanceof LeadershipLostError }));
  process.exit(1);
}
