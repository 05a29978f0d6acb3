// The kubelet cluster (test/harness/kubelet-cluster.ts): two real kubelet nodes register and turn Ready; ordinary
// pods from a locally built image run on each (one placed by the scheduler, one by nodeName) and their logs come
// back through kube-apiserver → kubelet, with their service account token mounted; a privileged hostNetwork pod sees its node's network and may mount; and
// stop() leaves nothing behind. Needs root (startKubeletCluster says so otherwise).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import {
  BUSYBOX_IMAGE,
  kubeletClusterLeftovers,
  readyNodes,
  startKubeletCluster,
  type KubeletCluster,
} from '../harness/kubelet-cluster.js';

const POD_TIMEOUT_MS = 90_000;
// The service account token is a tmpfs kubelet mounts in its own mount namespace: containerd must see it.
const HELLO =
  'echo "hello from $(hostname) in $(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"; ip -4 -o addr show eth0';
const TEST_TIMEOUT_MS = 200_000;

function pod(
  name: string,
  script: string,
  placement: Record<string, unknown>,
  extra: { hostNetwork?: boolean; privileged?: boolean } = {},
): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      ...placement,
      restartPolicy: 'Never',
      hostNetwork: extra.hostNetwork ?? false,
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'main',
          image: BUSYBOX_IMAGE,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', script],
          securityContext: extra.privileged ? { privileged: true } : undefined,
        },
      ],
    },
  });
}

describe('kubelet cluster', () => {
  let cluster: KubeletCluster;

  beforeAll(async () => {
    cluster = await startKubeletCluster();
    console.log(`kubelet cluster ${cluster.id} up with Ready nodes in ${cluster.startupMs} ms`);
  }, 300_000);

  afterAll(async () => {
    if (cluster === undefined) return;
    await cluster.stop();
    expect(await kubeletClusterLeftovers(cluster.id)).toEqual([]);
  }, 120_000);

  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cluster.controlPlane.kubectl(args, { input });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr.trim()}`);
    return res.stdout;
  };

  /** Waits until the pod has ended; returns its phase and node. */
  const finished = async (name: string): Promise<{ phase: string; node: string }> => {
    const deadline = Date.now() + POD_TIMEOUT_MS;
    for (;;) {
      const p = JSON.parse(await kubectl(['get', 'pod', name, '-o', 'json'])) as {
        spec: { nodeName?: string };
        status: { phase?: string };
      };
      const phase = p.status.phase ?? '';
      if (phase === 'Succeeded' || phase === 'Failed') return { phase, node: p.spec.nodeName ?? '' };
      if (Date.now() > deadline) {
        throw new Error(
          `pod ${name} still ${phase} after ${POD_TIMEOUT_MS} ms:\n${await kubectl(['describe', 'pod', name])}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };

  it('registers both nodes, Ready, with their own addresses', async () => {
    expect((await readyNodes(cluster.controlPlane)).sort()).toEqual(['node-a', 'node-b']);
    for (const node of cluster.nodes) {
      const address = await kubectl([
        'get',
        'node',
        node.name,
        '-o',
        'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}',
      ]);
      expect(address).toBe(node.address);
    }
  });

  it(
    'runs a pod to completion on each node and reads its logs through the apiserver',
    async () => {
      const [a, b] = cluster.nodes;
      await kubectl(
        ['apply', '-f', '-'],
        [
          pod('hello-a', HELLO, {
            nodeSelector: { 'kubernetes.io/hostname': a!.name },
          }),
          pod('hello-b', HELLO, { nodeName: b!.name }),
        ].join('---\n'),
      );
      for (const [name, node, podCidr] of [
        ['hello-a', a!, '10.216.0.'],
        ['hello-b', b!, '10.216.1.'],
      ] as const) {
        expect(await finished(name)).toEqual({ phase: 'Succeeded', node: node.name });
        const logs = await kubectl(['logs', name]);
        expect(logs).toContain(`hello from ${name} in default`);
        // The pod has its own network namespace, on the node's CNI bridge.
        expect(logs).toContain(`inet ${podCidr}`);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'runs a privileged hostNetwork pod on each node',
    async () => {
      const script = 'ip -4 -o addr show eth0 && mount -t tmpfs none /tmp && echo mounted';
      await kubectl(
        ['apply', '-f', '-'],
        cluster.nodes
          .map((node) =>
            pod(
              `host-${node.name}`,
              script,
              { nodeName: node.name },
              { hostNetwork: true, privileged: true },
            ),
          )
          .join('---\n'),
      );
      for (const node of cluster.nodes) {
        expect(await finished(`host-${node.name}`)).toEqual({ phase: 'Succeeded', node: node.name });
        const logs = await kubectl(['logs', `host-${node.name}`]);
        expect(logs).toContain(`inet ${node.address}/24`);
        expect(logs).toContain('mounted');
      }
    },
    TEST_TIMEOUT_MS,
  );
});
