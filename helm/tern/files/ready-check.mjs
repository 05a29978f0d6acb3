// `helm test` check (templates/tests/ready-check-pod.yaml): the operator has a ready replica and a leader renewing
// its Lease, and every node running a daemon pod has a Ready HypervisorNode. Plain Node.js (>= 20, no packages):
// it reads the API with the pod's ServiceAccount token (NODE_EXTRA_CA_CERTS names the cluster's CA). Each check is
// retried until TIMEOUT_SECONDS; it prints one line per check and exits 1 if any failed.
/* global process, console, fetch, setTimeout */
import { readFileSync } from 'node:fs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
};
const namespace = env('NAMESPACE');
const deployment = env('OPERATOR_DEPLOYMENT');
const leaseName = env('LEADER_LEASE');
const daemonSelector = env('DAEMON_SELECTOR');
const timeoutMs = Number(process.env.TIMEOUT_SECONDS ?? '60') * 1000;
const tokenFile = `${process.env.SERVICE_ACCOUNT_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount'}/token`;
const host = env('KUBERNETES_SERVICE_HOST');
const server = `https://${host.includes(':') ? `[${host}]` : host}:${env('KUBERNETES_SERVICE_PORT')}`;

async function get(path) {
  // Read each time: the kubelet rotates the projected token.
  const token = readFileSync(tokenFile, 'utf8').trim();
  const response = await fetch(`${server}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok)
    throw new Error(`GET ${path}: ${response.status} ${(await response.text()).slice(0, 300)}`);
  return response.json();
}

/** Each check resolves to a problem (a string) or undefined when all is well. */
const checks = {
  async 'operator replicas'() {
    const d = await get(`/apis/apps/v1/namespaces/${namespace}/deployments/${deployment}`);
    const ready = d.status?.readyReplicas ?? 0;
    return ready >= 1
      ? undefined
      : `Deployment ${deployment} has no ready replica (0/${d.spec.replicas} ready)`;
  },
  async 'operator leader'() {
    const lease = await get(`/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseName}`);
    const { holderIdentity, renewTime, leaseDurationSeconds } = lease.spec ?? {};
    if (!holderIdentity) return `leader Lease ${leaseName} has no holder: no operator replica leads`;
    const ageMs = Date.now() - Date.parse(renewTime);
    // Twice the duration: the clocks of this pod and of the leader's node may differ a little.
    return ageMs <= 2 * leaseDurationSeconds * 1000
      ? undefined
      : `leader Lease ${leaseName} (holder ${holderIdentity}) not renewed for ${Math.round(ageMs / 1000)} s`;
  },
  async 'hypervisor nodes'() {
    const pods = await get(
      `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(daemonSelector)}`,
    );
    const daemonNodes = pods.items.map((pod) => pod.spec.nodeName).filter(Boolean);
    if (daemonNodes.length === 0)
      return `no daemon pod (${daemonSelector}) is scheduled: label the hypervisor hosts as hypervisorNode.nodeSelector says`;
    const hvns = new Map(
      (await get('/apis/tern.dev/v1alpha1/hypervisornodes')).items.map((n) => [n.metadata.name, n]),
    );
    const problems = [];
    for (const node of daemonNodes.sort()) {
      const hvn = hvns.get(node);
      const ready = hvn?.status?.conditions?.find((c) => c.type === 'Ready');
      if (!hvn) problems.push(`${node}: no HypervisorNode (its daemon has not registered)`);
      else if (ready?.status !== 'True')
        problems.push(
          `${node}: not Ready (${ready ? `${ready.reason}: ${ready.message}` : 'no Ready condition'})`,
        );
    }
    return problems.length === 0 ? undefined : `HypervisorNode ${problems.join('; ')}`;
  },
};

const deadline = Date.now() + timeoutMs;
let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  let problem;
  for (;;) {
    try {
      problem = await check();
    } catch (error) {
      problem = error.message;
    }
    if (problem === undefined || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  if (problem === undefined) console.log(`ok: ${name}`);
  else {
    failed++;
    console.log(`FAIL: ${name}: ${problem}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
