// What to type next, printed after `npm run cluster -- up` and after the demo.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClusterDir, exampleVmPath, type ClusterState } from './cluster-state.js';

export const PLUGIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../cli/bin');

/** How to use the cluster, printed after `up` (and by the demo). */
export function usageHint(state: ClusterState): string {
  const down = state.dir === defaultClusterDir() ? '' : ` --dir ${state.dir}`;
  return [
    `export KUBECONFIG=${state.kubeconfig}`,
    `export PATH=${PLUGIN_DIR}:$PATH   # kubectl tern`,
    `kubectl get tern -o wide            # VirtualMachines, Migrations, HypervisorNodes`,
    `kubectl apply -f ${exampleVmPath(state)}   # a small test-guest VM`,
    `kubectl tern migrate vm01 --wait    # kubectl tern status vm01, drain ${state.nodes[0]?.name ?? 'NODE'}, uncordon ...`,
    `npm run cluster -- status${down}`,
    `npm run cluster -- down${down}`,
  ]
    .map((line) => `  ${line}`)
    .join('\n');
}
