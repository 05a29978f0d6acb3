/**
 * Starts a throw-away cluster with two real kubelet nodes (test/harness/kubelet-cluster.ts; root only) for manual
 * poking, prints its kubeconfig, and stays up until Ctrl-C, which removes everything it created:
 *   npm run kubelet-cluster            (or: npx tsx hack/kubelet-cluster.ts)
 */
import { startKubeletCluster } from '../test/harness/kubelet-cluster.js';

const cluster = await startKubeletCluster();
const cp = cluster.controlPlane;
console.log(`kubelet cluster ${cluster.id} up, nodes Ready, in ${cluster.startupMs} ms`);
console.log(`kubeconfig: ${cp.kubeconfigPath}`);
for (const node of cluster.nodes) {
  console.log(
    `node ${node.name}: ${node.address}, netns ${node.netns}, logs ${node.dir}/{kubelet,containerd}.log,` +
      ` ctr --address ${node.containerdSocket} -n k8s.io images ls`,
  );
}
console.log(`try: kubectl --kubeconfig=${cp.kubeconfigPath} get nodes -o wide   (Ctrl-C stops it)`);
process.once('SIGINT', () => {
  console.log('stopping ...');
  void cluster.stop().then(
    () => console.log('stopped; nothing left behind'),
    (error: unknown) => {
      console.error(`stop failed: ${(error as Error).message}`);
      process.exitCode = 1;
    },
  );
});
