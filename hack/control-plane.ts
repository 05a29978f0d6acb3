/**
 * Starts a throw-away control plane (real etcd + kube-apiserver) for manual poking, prints its kubeconfig and
 * start-up time, and stays up until Ctrl-C:  npx tsx hack/control-plane.ts
 */
import { startControlPlane } from '../test/harness/control-plane.js';

const cp = await startControlPlane({ name: 'manual' });
console.log(`control plane up in ${cp.startupMs} ms`);
console.log(`kubeconfig: ${cp.kubeconfigPath}`);
console.log(`server: ${cp.server}`);
console.log(`logs: ${cp.dir}/kube-apiserver.log ${cp.dir}/etcd.log`);
console.log(`try: kubectl --kubeconfig=${cp.kubeconfigPath} get namespaces   (Ctrl-C stops it)`);
// The harness's own SIGINT handler has already killed both servers and removed the dir when this one runs.
process.once('SIGINT', () => void cp.stop().then(() => console.log('stopped')));
