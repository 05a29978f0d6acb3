// Helpers the operator's integration tests share: kubectl against the test control plane, polling, the
// daemon's command line for a test node, and the guest agent's VERIFY.
import { join } from 'node:path';
import type { Condition } from '../../crds/index.js';
import { AgentClient, type VerifyResult } from '../../guest/host/agent-client.js';
import type { DevCerts } from './certificates.js';
import { guestDirOfVm, guestOfVm } from './guest-lookup.js';
import { eventually } from './eventually.js';
import type { GuestControlClient, Guest__Output } from '../../proto/index.js';
import type { ControlPlane } from './control-plane.js';

export interface Kubectl {
  /** Runs kubectl; throws with its stderr on a non-zero exit. */
  kubectl(...args: string[]): Promise<string>;
  /** `kubectl apply -f -` of an object or a JSON/YAML manifest. */
  apply(manifest: object | string): Promise<void>;
  /** `kubectl get … -o json`, parsed. */
  getJson<T>(...args: string[]): Promise<T>;
  /** The reasons of the Events about one object. */
  eventReasons(kind: string, name: string): Promise<string[]>;
  /**
   * Holds the operator at a chosen step with a ValidatingAdmissionPolicy (evaluated inside the kube-apiserver)
   * that refuses one kind of write; resolves once `refused` (a server-side dry run) sees the policy in force. The
   * returned release() deletes it and waits until the dry run passes again.
   */
  holdWrites(
    name: string,
    spec: AdmissionHold,
    refused: () => Promise<boolean>,
  ): Promise<() => Promise<void>>;
  /** Whether the apiserver refuses a write (server-side dry run: admission runs, nothing is stored). */
  dryRunRefused(args: string[]): Promise<boolean>;
  /**
   * Holds every write that moves the VM's ownership record (status.node): the operator reaches the hand-over and
   * stops before the compare-and-swap, with the guest loaded and paused on the target and paused on the source.
   */
  holdOwnershipRecord(vm: string): Promise<() => Promise<void>>;
}

export interface AdmissionHold {
  resourceRules: object[];
  objectSelector?: object;
  validations: object[];
}

/** The resource rule of a VirtualMachine status write. */
export const VM_STATUS_UPDATES = [
  {
    apiGroups: ['tern.dev'],
    apiVersions: ['v1alpha1'],
    operations: ['UPDATE'],
    resources: ['virtualmachines/status'],
  },
];

/** kubectl helpers on the control plane `controlPlane()` returns (called lazily: tests assign it in beforeAll). */
export function kubectlOn(controlPlane: () => Pick<ControlPlane, 'kubectl'>): Kubectl {
  const kubectl = async (...args: string[]) => {
    const result = await controlPlane().kubectl(args);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const getJson = async <T>(...args: string[]) =>
    JSON.parse(await kubectl('get', ...args, '-o', 'json')) as T;
  const apply = async (manifest: object | string) => {
    const input = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
    const result = await controlPlane().kubectl(['apply', '-f', '-'], { input });
    if (result.code !== 0) throw new Error(`kubectl apply: ${result.stderr}`);
  };
  const dryRunRefused = async (args: string[]) => {
    const result = await controlPlane().kubectl([...args, '--dry-run=server']);
    if (result.code !== 0 && !/denied request/.test(result.stderr)) throw new Error(result.stderr);
    return result.code !== 0;
  };
  const holdWrites = async (name: string, spec: AdmissionHold, refused: () => Promise<boolean>) => {
    const { validations, ...matchConstraints } = spec;
    await apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: { failurePolicy: 'Fail', matchConstraints, validations },
    });
    await apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'] },
    });
    await eventually(`${name} in force`, async () => ((await refused()) ? true : undefined));
    return async () => {
      await kubectl('delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', name);
      await eventually(`${name} lifted`, async () => ((await refused()) ? undefined : true));
    };
  };
  return {
    kubectl,
    getJson,
    apply,
    dryRunRefused,
    holdWrites,
    holdOwnershipRecord: (vm) =>
      holdWrites(
        'hold-ownership-record',
        {
          resourceRules: VM_STATUS_UPDATES,
          validations: [
            {
              expression:
                '!has(oldObject.status) || !has(oldObject.status.node) || ' +
                '(has(object.status) && has(object.status.node) && object.status.node == oldObject.status.node)',
              message: 'test hold: the ownership record stays',
            },
          ],
        },
        () =>
          dryRunRefused([
            ...['patch', 'virtualmachine', vm, '--subresource=status', '--type=merge'],
            ...['-p', JSON.stringify({ status: { node: 'elsewhere' } })],
          ]),
      ),
    async eventReasons(kind, name) {
      const list = await getJson<{ items: { reason: string }[] }>(
        'events',
        '--field-selector',
        `involvedObject.kind=${kind},involvedObject.name=${name}`,
      );
      return list.items.map((event) => event.reason);
    },
  };
}

export { eventually };

export const condition = (object: { status?: { conditions?: Condition[] } }, type: string) =>
  object.status?.conditions?.find((c) => c.type === type);

export interface TestDaemonOptions {
  node: string;
  certs: DevCerts;
  stateDir: string;
  /** The guest images' root (--shared-image-root). */
  imagesRoot: string;
  kubeconfig: string;
  leaseDurationSeconds: number;
}

/** The daemon's flags for a test node: loopback, TCG, user networking, heartbeat every second. */
export function testDaemonArgs(options: TestDaemonOptions): string[] {
  const pair = options.certs.nodes[options.node]!;
  return [
    ...['--node-name', options.node, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-cert', pair.cert, '--tls-key', pair.key, '--tls-ca', options.certs.ca.cert],
    ...['--state-dir', options.stateDir, '--shared-image-root', options.imagesRoot, '--accelerator', 'tcg'],
    ...['--network', 'user', '--stop-timeout-ms', '3000', '--migration-address', '127.0.0.1'],
    ...['--kubeconfig', options.kubeconfig],
    ...[
      '--lease-duration-seconds',
      String(options.leaseDurationSeconds),
      '--heartbeat-interval-seconds',
      '1',
    ],
  ];
}

/**
 * The daemon's guest of the VirtualMachine `vm` (in `namespace`), or undefined when it has none. The daemon keys
 * guests by the VM's UID; this finds it by its display name, `<namespace>/<name>`.
 */
export function guestOn(
  client: GuestControlClient,
  vm: string,
  namespace = 'default',
): Promise<Guest__Output | undefined> {
  return guestOfVm(client, vm, namespace);
}

/** Connects to the guest agent of VM `vm` (in `namespace`) under a daemon's state dir and runs VERIFY there. */
export async function verifyGuest(
  stateDir: string,
  vm: string,
  namespace = 'default',
): Promise<VerifyResult> {
  const dir = await guestDirOfVm(stateDir, vm, namespace);
  const agent = await AgentClient.connect(join(dir, 'agent.sock'), { timeoutMs: 30_000 });
  try {
    await agent.waitReady(90_000);
    return await agent.verify();
  } finally {
    agent.close();
  }
}
