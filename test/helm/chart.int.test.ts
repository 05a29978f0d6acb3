// The helm/tern chart against a real kube-apiserver: `helm lint`, `helm template` applied with strict validation,
// the rendered flags through the programs' own parsers, the operator's and the daemons' RBAC checked call by call
// with SubjectAccessReviews, the admission policies (each daemon confined to its own node, the operator to its
// leader Lease) checked with real ServiceAccount tokens, and the real daemon and operator processes running
// under the chart's identities.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  CoordinationV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { generateDevCerts } from '../harness/certificates.js';
import { parseConfig as parseDaemonConfig } from '../../hypervisor-node/src/config.js';
import { parseConfig as parseOperatorConfig } from '../../operator/src/config.js';
import { guardPod } from '../../operator/src/maintenance/guard-pods.js';
import type { HypervisorNode, VirtualMachine } from '../../crds/index.js';
import { microTime } from '../../kube/objects.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../harness/daemon-process.js';
import { eventually, testDaemonArgs } from '../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../harness/operator-process.js';
import type { LogLine } from '../harness/service-process.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { allowedFor, describeAccess, helm, kubectl, tokenKubeconfig, type Access } from './chart-tools.js';

const run = promisify(execFile);
const CHART = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'helm', 'tern');
const NS = 'tern-system';
const TENANT = 'tenant';
const OPERATOR_SA = { namespace: NS, name: 'tern-operator' };
const DAEMON_SA = { namespace: NS, name: 'tern-hypervisor-node' };
const HVN = { group: 'tern.dev', version: 'v1alpha1', plural: 'hypervisornodes' };

let cp: ControlPlane;
let scratch: string;
let rendered: string;
const running: { stop(): Promise<unknown> }[] = [];

/** The kubeconfig of the daemon pod on `node` (a token bound to that pod, as the kubelet would mount). */
const daemonKubeconfig = (node: string): string => join(scratch, `daemon-${node}.kubeconfig`);

beforeAll(async () => {
  cp = await startControlPlane({ name: 'helm-chart' });
  scratch = mkdtempSync(join(tmpdir(), 'tern-helm-test-'));
  rendered = await helm('template', 'tern', CHART, `--namespace=${NS}`, '--include-crds');
  await kubectl(cp, ['create', 'namespace', NS]);
  await kubectl(cp, ['create', 'namespace', TENANT]);
  await kubectl(cp, ['apply', '--validate=strict', '-f', '-'], rendered);
  // What the kubelet and the scheduler would have made: nodes, and a daemon pod on each (nothing runs them).
  const objects = ['node-a', 'node-b'].flatMap((node) => [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: node } },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `tern-hypervisor-node-${node}`,
        namespace: NS,
        labels: { 'app.kubernetes.io/name': 'tern-hypervisor-node', 'app.kubernetes.io/instance': 'tern' },
      },
      spec: {
        nodeName: node,
        serviceAccountName: DAEMON_SA.name,
        containers: [{ name: 'hypervisor-node', image: 'tern:test' }],
      },
    },
  ]);
  await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  for (const node of ['node-a', 'node-b'])
    await tokenKubeconfig(cp, daemonKubeconfig(node), { ...DAEMON_SA, pod: `tern-hypervisor-node-${node}` });
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((process) => process.stop()));
  if (scratch) {
    await killGuestsIn(join(scratch, 'state'));
    rmSync(scratch, { recursive: true, force: true });
  }
  await cp?.stop();
}, 60_000);

test('helm lint --strict passes and kube-apiserver accepts every rendered object under strict field validation', async () => {
  expect(await helm('lint', '--strict', CHART)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  const kinds = parseAllDocuments(rendered)
    .map((doc) => doc.toJS() as { kind?: string } | null)
    .filter((object) => object?.kind)
    .map((object) => object!.kind);
  for (const kind of [
    'CustomResourceDefinition',
    'ServiceAccount',
    'ClusterRole',
    'ClusterRoleBinding',
    'Role',
    'RoleBinding',
    'Deployment',
    'DaemonSet',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
  ])
    expect(kinds).toContain(kind);
  const deployment = JSON.parse(
    await kubectl(cp, ['get', 'deployment', 'tern-operator', '-n', NS, '-o', 'json']),
  ) as { spec: { replicas: number; template: { spec: { serviceAccountName: string } } } };
  expect(deployment.spec.replicas).toBe(2);
  expect(deployment.spec.template.spec.serviceAccountName).toBe(OPERATOR_SA.name);
});

interface Container {
  args: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
}

/**
 * The container's args and environment as the kubelet passes them: downward-API env filled from `fieldValues`,
 * and $(VAR) in args replaced by it.
 */
function asKubeletRunsIt(
  kind: string,
  fieldValues: Record<string, string>,
  manifests = rendered,
): { args: string[]; env: Record<string, string> } {
  const workload = parseAllDocuments(manifests)
    .map((doc) => doc.toJS() as { kind?: string; spec: { template: { spec: { containers: Container[] } } } })
    .find((object) => object?.kind === kind)!;
  const [container] = workload.spec.template.spec.containers;
  const env: Record<string, string> = {};
  for (const variable of container!.env ?? []) {
    const value = fieldValues[variable.valueFrom?.fieldRef?.fieldPath ?? ''];
    if (value === undefined) throw new Error(`${kind}: no test value for env ${variable.name}`);
    env[variable.name] = value;
  }
  const args = container!.args.map((arg) =>
    arg.replace(/\$\((\w+)\)/g, (_, name: string) => {
      if (env[name] === undefined) throw new Error(`${kind}: $(${name}) is not in the container's env`);
      return env[name];
    }),
  );
  return { args, env };
}

test("the rendered workloads' flags are accepted by the daemon's and the operator's own parsers", () => {
  const daemonSet = asKubeletRunsIt('DaemonSet', { 'spec.nodeName': 'node-a', 'status.hostIP': '10.1.2.3' });
  const daemon = parseDaemonConfig(daemonSet.args, daemonSet.env);
  expect(daemon).toMatchObject({
    nodeName: 'node-a',
    advertiseAddress: '10.1.2.3:7443',
    migrationAddress: '10.1.2.3',
    // nodeIdentity.source csr by default: the node's key is made on the node, its certificate asked for.
    tls: { caFile: '/etc/tern/ca/ca.crt', fromCsr: { lifetimeSeconds: 86400 } },
    operatorIdentities: ['tern-operator'],
    registration: { kubeconfig: 'in-cluster', leaseNamespace: NS, fenceAfterSeconds: 120 },
    // QEMU drops to a uid of its own, which needs no passwd entry in the image.
    qemuUser: '60400:60400',
    imageRoot: '/var/lib/tern-images/namespaces',
    sharedImageRoots: ['/var/lib/tern-images/shared'],
  });
  const deployment = asKubeletRunsIt('Deployment', { 'metadata.name': 'tern-operator-7d9f-x2' });
  const operator = parseOperatorConfig(deployment.args, deployment.env);
  expect(operator).toMatchObject({
    kubeconfig: undefined,
    metricsListen: { host: '0.0.0.0', port: 8080 },
    leaderElection: { namespace: NS, name: 'tern-operator', identity: 'tern-operator-7d9f-x2' },
    nodeLeaseNamespace: NS,
    nodeLossMarginSeconds: 30,
    tls: { certFile: '/etc/tern/tls/tls.crt', caFile: '/etc/tern/tls/ca.crt' },
  });
});

test('every container runs the image by tag, or by digest when image.digest is set, and the programs of its build', async () => {
  const containers = (manifests: string) =>
    parseAllDocuments(manifests)
      .map((doc) => doc.toJS() as { kind?: string; spec?: Record<string, unknown> } | null)
      .flatMap((object) => {
        const spec = (
          object?.kind === 'Pod' ? object.spec : (object?.spec?.template as { spec?: object })?.spec
        ) as { containers?: { name: string; image: string; command: string[] }[] } | undefined;
        return spec?.containers ?? [];
      });
  const appVersion = (parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string })
    .appVersion;
  const byTag = containers(rendered);
  // The operator, the daemon and the `helm test` Pod.
  expect(byTag.map((c) => c.name).sort()).toEqual(['hypervisor-node', 'operator', 'ready-check']);
  for (const container of byTag) expect(container.image).toBe(`tern:${appVersion}`);
  // The bundles of `npm run build` that the image holds in /app (test/integration/build/image.int.test.ts runs them).
  const commands = Object.fromEntries(byTag.map((c) => [c.name, c.command]));
  expect(commands).toMatchObject({
    operator: ['node', '--enable-source-maps', '/app/operator.mjs'],
    'hypervisor-node': ['node', '--enable-source-maps', '/app/hypervisor-node.mjs'],
  });

  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const byDigest = containers(
    await helm(
      'template',
      'tern',
      CHART,
      `--namespace=${NS}`,
      '--set=tests.enabled=true',
      '--show-only',
      'templates/tests/ready-check-pod.yaml',
      '--show-only',
      'templates/operator-deployment.yaml',
      '--show-only',
      'templates/hypervisor-node-daemonset.yaml',
      `--set=image.repository=registry.example/tern`,
      `--set=image.tag=ignored`,
      `--set=image.digest=${digest}`,
    ),
  );
  expect(byDigest.map((c) => c.image)).toEqual([
    `registry.example/tern@${digest}`,
    `registry.example/tern@${digest}`,
    `registry.example/tern@${digest}`,
  ]);
  await expect(helm('template', 'tern', CHART, '--set=image.digest=0.1.0')).rejects.toThrow(
    "at '/image/digest'",
  );
});

test("the DaemonSet runs guests in cgroups of their own under the host's cgroup root, so pod restarts spare them", () => {
  interface PodSpec {
    containers: (Container & { volumeMounts: { name: string; mountPath: string }[] })[];
    volumes: { name: string; hostPath?: { path: string; type?: string } }[];
  }
  const daemonSet = parseAllDocuments(rendered)
    .map((doc) => doc.toJS() as { kind?: string; spec: { template: { spec: PodSpec } } } | null)
    .find((object) => object?.kind === 'DaemonSet')!;
  const pod = daemonSet.spec.template.spec;
  const mount = pod.containers[0]!.volumeMounts.find((m) => m.mountPath === '/host/sys/fs/cgroup');
  expect(pod.volumes.find((volume) => volume.name === mount?.name)?.hostPath).toEqual({
    path: '/sys/fs/cgroup',
    type: 'Directory',
  });
  const { args, env } = asKubeletRunsIt('DaemonSet', {
    'spec.nodeName': 'node-a',
    'status.hostIP': '10.1.2.3',
  });
  expect(parseDaemonConfig(args, env).guestCgroupRoot).toBe('/host/sys/fs/cgroup/tern-guests');
});

/**
 * Runs the `helm test` Pod's command as rendered (its script from the rendered ConfigMap, its env), with what the
 * kubelet would give it: the apiserver's address and CA, and a token of the test ServiceAccount.
 */
async function readyCheck(): Promise<{ code: number; output: string }> {
  const objects = parseAllDocuments(rendered).map(
    (doc) => doc.toJS() as { kind?: string; metadata?: { name: string } } | null,
  );
  const pod = objects.find((o) => o?.kind === 'Pod') as unknown as {
    spec: {
      serviceAccountName: string;
      containers: { command: string[]; env: { name: string; value: string }[] }[];
      volumes: { configMap: { name: string } }[];
    };
  };
  const configMap = objects.find(
    (o) => o?.kind === 'ConfigMap' && o.metadata?.name === pod.spec.volumes[0]!.configMap.name,
  ) as unknown as { data: Record<string, string> };
  const [container] = pod.spec.containers;
  const [node, scriptPath] = container!.command;
  expect(node).toBe('node');
  const dir = join(scratch, 'ready-check');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, basename(scriptPath!));
  writeFileSync(script, configMap.data[basename(scriptPath!)]!);
  const token = await kubectl(cp, [
    'create',
    'token',
    pod.spec.serviceAccountName,
    '-n',
    NS,
    '--duration=10m',
  ]);
  writeFileSync(join(dir, 'token'), token.trim());
  const admin = parse(await kubectl(cp, ['config', 'view', '--raw', '-o', 'yaml'])) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  };
  const { server, 'certificate-authority-data': ca } = admin.clusters[0]!.cluster;
  writeFileSync(join(dir, 'ca.crt'), Buffer.from(ca, 'base64'));
  const url = new URL(server);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...Object.fromEntries(container!.env.map(({ name, value }) => [name, value])),
    KUBERNETES_SERVICE_HOST: url.hostname,
    KUBERNETES_SERVICE_PORT: url.port,
    NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt'),
    SERVICE_ACCOUNT_DIR: dir,
    TIMEOUT_SECONDS: '1',
  };
  try {
    const { stdout } = await run(process.execPath, [script], { env });
    return { code: 0, output: stdout };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, output: stdout + stderr };
  }
}

test('values.schema.json refuses misspelt or mistyped values with their path, and takes the documented ones', async () => {
  const refused = async (args: string[]) => {
    try {
      await helm('template', 'tern', CHART, ...args);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error(`helm template ${args.join(' ')} was accepted`);
  };
  expect(await refused(['--set=operator.replica=3'])).toContain(
    "at '/operator': additional properties 'replica' not allowed",
  );
  expect(await refused(['--set=monitoring.serviceMonitor.enable=true'])).toContain(
    "at '/monitoring/serviceMonitor': additional properties 'enable' not allowed",
  );
  expect(await refused(['--set=hypervisorNode.accelerator=kvmm'])).toContain(
    "at '/hypervisorNode/accelerator': value must be one of 'auto', 'kvm', 'tcg'",
  );
  expect(await refused(['--set=operator.replicas=two'])).toContain("at '/operator/replicas'");
  expect(await refused(['--set=monitoring.prometheusRule.downtimeTargetSeconds=0.3'])).toContain(
    "at '/monitoring/prometheusRule/downtimeTargetSeconds': value must be one of 0.005",
  );
  // The values blocks docs/monitoring.md shows, each as a values file.
  const docs = readFileSync(join(CHART, '..', '..', 'docs', 'monitoring.md'), 'utf8');
  const examples = [...docs.matchAll(/```yaml\n# values\.yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(examples.length).toBeGreaterThan(0);
  for (const [i, example] of examples.entries()) {
    const file = join(scratch, `docs-example-${i}.yaml`);
    writeFileSync(file, example);
    const kinds = parseAllDocuments(
      await helm('template', 'tern', CHART, `--namespace=${NS}`, '-f', file),
    ).map((doc) => (doc.toJS() as { kind?: string } | null)?.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap']),
    );
  }
});

// Every call in operator/src: informers list+watch cluster-wide (Leases only in the node-lease namespace),
// reconcilers get, finalizers are JSON patches, status goes through PUT on /status, Events are created and patched.
const tern = (verb: string, resource: string, more: Partial<Access> = {}): Access => ({
  verb,
  group: 'tern.dev',
  resource,
  ...more,
});
const core = (verb: string, resource: string, more: Partial<Access> = {}): Access => ({
  verb,
  group: '',
  resource,
  ...more,
});
const lease = (verb: string, more: Partial<Access> = {}): Access => ({
  verb,
  group: 'coordination.k8s.io',
  resource: 'leases',
  namespace: NS,
  ...more,
});
const inTenant = { namespace: TENANT };

const OPERATOR_CALLS: Access[] = [
  ...['list', 'watch'].flatMap((verb) =>
    ['virtualmachines', 'migrations', 'hypervisornodes', 'migrationpolicies'].map((r) => tern(verb, r)),
  ),
  tern('get', 'virtualmachines', inTenant),
  tern('patch', 'virtualmachines', inTenant),
  tern('update', 'virtualmachines', { ...inTenant, subresource: 'status' }),
  tern('get', 'migrations', inTenant),
  tern('create', 'migrations', inTenant),
  tern('delete', 'migrations', inTenant),
  tern('patch', 'migrations', inTenant),
  tern('update', 'migrations', { ...inTenant, subresource: 'status' }),
  tern('update', 'migrationpolicies', { subresource: 'status' }),
  tern('get', 'hypervisornodes', { name: 'node-a' }),
  tern('update', 'hypervisornodes', { name: 'node-a', subresource: 'status' }),
  core('get', 'namespaces', { name: TENANT }),
  core('create', 'events', inTenant),
  core('patch', 'events', inTenant),
  core('create', 'events', { namespace: 'default' }),
  core('patch', 'events', { namespace: 'default' }),
  lease('create'),
  lease('get', { name: 'tern-operator' }),
  lease('update', { name: 'tern-operator' }),
  lease('list'),
  lease('watch'),
];

const OPERATOR_MUST_NOT: Access[] = [
  core('delete', 'namespaces', { name: TENANT }),
  core('get', 'secrets', { namespace: NS }),
  core('list', 'secrets'),
  core('get', 'configmaps', { namespace: NS }),
  core('create', 'pods', inTenant),
  core('create', 'serviceaccounts', { namespace: NS, subresource: 'token', name: DAEMON_SA.name }),
  core('impersonate', 'users'),
  tern('create', 'virtualmachines', inTenant),
  tern('update', 'virtualmachines', inTenant),
  tern('delete', 'virtualmachines', inTenant),
  tern('update', 'hypervisornodes', { name: 'node-a' }),
  tern('delete', 'hypervisornodes', { name: 'node-a' }),
  tern('patch', 'hypervisornodes', { name: 'node-a', subresource: 'status' }),
  tern('update', 'migrationpolicies'),
  tern('get', 'migrationpolicies'),
  lease('update', { name: 'node-a' }),
  lease('delete', { name: 'tern-operator' }),
  lease('list', { namespace: 'default' }),
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
];

test("the operator's ServiceAccount may make exactly the calls the operator makes", async () => {
  const allowed = await allowedFor(cp, OPERATOR_SA, [...OPERATOR_CALLS, ...OPERATOR_MUST_NOT]);
  expect(allowed).toEqual(OPERATOR_CALLS.map(describeAccess));
});

// hypervisor-node/src/registration: get/create its HypervisorNode, merge-patch its status, create and
// merge-patch its Lease.
const DAEMON_CALLS: Access[] = [
  tern('get', 'hypervisornodes', { name: 'node-a' }),
  tern('create', 'hypervisornodes'),
  tern('patch', 'hypervisornodes', { name: 'node-a', subresource: 'status' }),
  lease('create'),
  lease('patch', { name: 'node-a' }),
];

const DAEMON_MUST_NOT: Access[] = [
  tern('list', 'hypervisornodes'),
  tern('update', 'hypervisornodes', { name: 'node-a' }),
  tern('patch', 'hypervisornodes', { name: 'node-a' }),
  tern('delete', 'hypervisornodes', { name: 'node-a' }),
  tern('update', 'hypervisornodes', { name: 'node-a', subresource: 'status' }),
  tern('get', 'virtualmachines', inTenant),
  tern('update', 'virtualmachines', { ...inTenant, subresource: 'status' }),
  tern('create', 'migrations', inTenant),
  lease('get', { name: 'node-a' }),
  lease('delete', { name: 'node-a' }),
  lease('create', { namespace: 'default' }),
  core('get', 'secrets', { namespace: NS }),
  core('create', 'events', { namespace: 'default' }),
];

test("the daemons' ServiceAccount may make exactly the calls the daemon makes", async () => {
  const allowed = await allowedFor(cp, DAEMON_SA, [...DAEMON_CALLS, ...DAEMON_MUST_NOT]);
  expect(allowed).toEqual(DAEMON_CALLS.map(describeAccess));
});

test('the operator replicas are spread over nodes, evicted one at a time, and a stopping one serves on while its endpoints drop it', () => {
  const objects = parseAllDocuments(rendered).map(
    (doc) => doc.toJS() as { kind?: string; spec: Record<string, unknown> } | null,
  );
  const deployment = (
    objects.find((object) => object?.kind === 'Deployment')!.spec as { template: { spec: OperatorPodSpec } }
  ).template.spec;
  expect(objects.find((object) => object?.kind === 'PodDisruptionBudget')?.spec).toEqual({
    maxUnavailable: 1,
    selector: {
      matchLabels: { 'app.kubernetes.io/name': 'tern-operator', 'app.kubernetes.io/instance': 'tern' },
    },
  });
  expect(deployment.containers[0]!.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
  expect(deployment.affinity).toEqual({
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            topologyKey: 'kubernetes.io/hostname',
            labelSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'tern-operator',
                'app.kubernetes.io/instance': 'tern',
              },
            },
          },
        },
      ],
    },
  });
});

interface OperatorPodSpec {
  containers: { lifecycle?: unknown }[];
  affinity?: unknown;
}

test('helm install against a cluster names the Secrets and ConfigMaps the pods would wait for, before it creates anything', async () => {
  // A namespace of its own, without the objects a user creates first (docs/install.md "Install on a cluster").
  const ns = 'tern-prerequisites';
  await kubectl(cp, ['create', 'namespace', ns]);
  const install = (...values: string[]) =>
    helm(
      ...[
        'install',
        'prereq',
        CHART,
        '--namespace',
        ns,
        '--kubeconfig',
        cp.kubeconfigPath,
        '--dry-run=server',
      ],
      // A release of another name, without the CRDs: nothing of the chart applied before conflicts with it.
      ...['--set=crds.install=false', ...values],
    );
  await expect(install()).rejects.toThrow(
    `missing in namespace ${ns}: Secret tern-operator-tls, Secret tern-ca, ConfigMap tern-ca (nodeIdentity.source is csr;`,
  );
  await expect(install('--set=nodeIdentity.source=secret')).rejects.toThrow(
    `missing in namespace ${ns}: Secret tern-operator-tls, Secret tern-node-tls (nodeIdentity.source is secret;`,
  );
  for (const name of ['tern-operator-tls', 'tern-ca'])
    await kubectl(cp, ['-n', ns, 'create', 'secret', 'generic', name, '--from-literal=tls.crt=x']);
  await kubectl(cp, ['-n', ns, 'create', 'configmap', 'tern-ca', '--from-literal=ca.crt=x']);
  await expect(install('--set=operator.nodeMaintenance.enabled=true')).rejects.toThrow(
    `missing in namespace ${ns}: Secret tern-eviction-webhook-tls (nodeIdentity.source is csr;`,
  );
  expect(await install()).toMatch(/^STATUS: pending-install$/m);
  // A namespace --create-namespace is about to make holds none of them yet.
  await expect(install('--namespace=tern-new', '--create-namespace')).rejects.toThrow(
    'missing in namespace tern-new: Secret tern-operator-tls, Secret tern-ca, ConfigMap tern-ca',
  );
  // `helm template` (and GitOps renderers) reach no cluster: nothing to check there.
  expect(await helm('template', 'tern', CHART, '--namespace', 'nowhere')).toContain('kind: DaemonSet');
});

test('with nodeIdentity.source secret, every daemon pod mounts the shared Secret and serves with its own pair from it', async () => {
  const secretMode = await helm(
    ...['template', 'tern', CHART, `--namespace=${NS}`, '--set=nodeIdentity.source=secret'],
  );
  const daemonSet = asKubeletRunsIt(
    'DaemonSet',
    { 'spec.nodeName': 'node-a', 'status.hostIP': '10.1.2.3' },
    secretMode,
  );
  expect(parseDaemonConfig(daemonSet.args, daemonSet.env).tls).toEqual({
    certFile: '/etc/tern/tls/node-a.crt',
    keyFile: '/etc/tern/tls/node-a.key',
    caFile: '/etc/tern/tls/ca.crt',
  });
  const deployment = asKubeletRunsIt('Deployment', { 'metadata.name': 'tern-operator-7d9f-x2' }, secretMode);
  expect(parseOperatorConfig(deployment.args, deployment.env).nodeSigner).toBeUndefined();
  expect(secretMode).toContain('secretName: tern-node-tls');
  expect(secretMode).not.toContain('tern-hypervisor-node-node-certificate');
});

test('by default (nodeIdentity.source csr), the daemons mount no key and may only ask for certificates, and only the operator holds the CA key and may approve and sign them', async () => {
  const csrMode = rendered;
  interface PodSpec {
    containers: { volumeMounts: { name: string; mountPath: string }[] }[];
    volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
  }
  const podOf = (kind: string) =>
    parseAllDocuments(csrMode)
      .map((doc) => doc.toJS() as { kind?: string; spec: { template: { spec: PodSpec } } } | null)
      .find((object) => object?.kind === kind)!.spec.template.spec;
  expect(podOf('DaemonSet').volumes.filter((v) => v.secret)).toEqual([]);
  expect(podOf('DaemonSet').volumes.find((v) => v.configMap)).toEqual({
    name: 'ca',
    configMap: { name: 'tern-ca' },
  });
  expect(podOf('Deployment').volumes.map((v) => v.secret?.secretName)).toContain('tern-ca');

  const daemonSet = asKubeletRunsIt(
    'DaemonSet',
    { 'spec.nodeName': 'node-a', 'status.hostIP': '10.1.2.3' },
    csrMode,
  );
  expect(parseDaemonConfig(daemonSet.args, daemonSet.env).tls).toEqual({
    caFile: '/etc/tern/ca/ca.crt',
    fromCsr: { lifetimeSeconds: 86400 },
  });
  const deployment = asKubeletRunsIt('Deployment', { 'metadata.name': 'tern-operator-7d9f-x2' }, csrMode);
  expect(parseOperatorConfig(deployment.args, deployment.env).nodeSigner).toEqual({
    caCertFile: '/etc/tern/signer/tls.crt',
    caKeyFile: '/etc/tern/signer/tls.key',
    daemonServiceAccount: DAEMON_SA,
    maxLifetimeSeconds: 86400,
  });

  // The RBAC of templates/node-identity-rbac.yaml, applied with the rest of the default chart (beforeAll).
  const csr = (verb: string, more: Partial<Access> = {}): Access => ({
    verb,
    group: 'certificates.k8s.io',
    resource: 'certificatesigningrequests',
    ...more,
  });
  const signer = (verb: string, name: string): Access => ({
    verb,
    group: 'certificates.k8s.io',
    resource: 'signers',
    name,
  });
  const TERN_SIGNER = 'tern.dev/hypervisor-node';
  const operatorCalls = [
    csr('list'),
    csr('watch'),
    csr('get'),
    csr('update', { subresource: 'approval' }),
    csr('update', { subresource: 'status' }),
    signer('approve', TERN_SIGNER),
    signer('sign', TERN_SIGNER),
    core('get', 'nodes', { name: 'node-a' }),
  ];
  const operatorMustNot = [
    csr('create'),
    csr('delete'),
    csr('update'),
    signer('approve', 'kubernetes.io/kube-apiserver-client'),
    signer('sign', 'kubernetes.io/kube-apiserver-client'),
    signer('approve', 'tern.dev/other'),
  ];
  expect(await allowedFor(cp, OPERATOR_SA, [...operatorCalls, ...operatorMustNot])).toEqual(
    operatorCalls.map(describeAccess),
  );
  const daemonCalls = [csr('create'), csr('get')];
  const daemonMustNot = [
    csr('list'),
    csr('update', { subresource: 'approval' }),
    csr('update', { subresource: 'status' }),
    csr('delete'),
    signer('approve', TERN_SIGNER),
    signer('sign', TERN_SIGNER),
  ];
  expect(await allowedFor(cp, DAEMON_SA, [...daemonCalls, ...daemonMustNot])).toEqual(
    daemonCalls.map(describeAccess),
  );
});

function apis(kubeconfigPath: string): { nodes: CustomObjectsApi; leases: CoordinationV1Api } {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { nodes: kc.makeApiClient(CustomObjectsApi), leases: kc.makeApiClient(CoordinationV1Api) };
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const hypervisorNode = (name: string) => ({
  apiVersion: 'tern.dev/v1alpha1',
  kind: 'HypervisorNode',
  metadata: { name },
});
const nodeLease = (name: string) => ({
  metadata: { name, namespace: NS },
  spec: { holderIdentity: name, leaseDurationSeconds: 40 },
});

async function expectRefused(call: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiException);
  expect((error as ApiException<string>).code).toBe(403);
  expect(String((error as ApiException<string>).body)).toMatch(message);
}

test('the admission policy lets a daemon write only the HypervisorNode and Lease of its own node', async () => {
  const a = apis(daemonKubeconfig('node-a'));
  const b = apis(daemonKubeconfig('node-b'));
  const notOwn = (resource: string, name: string) =>
    new RegExp(
      `tern-hypervisor-node-own-node-only.*node node-a may write only its own ${resource}, not ${name}`,
    );

  await a.nodes.createClusterCustomObject({ ...HVN, body: hypervisorNode('node-a') });
  await a.nodes.patchClusterCustomObjectStatus(
    { ...HVN, name: 'node-a', body: { status: { endpoint: '127.0.0.1:7443' } } },
    mergePatch,
  );
  await a.leases.createNamespacedLease({ namespace: NS, body: nodeLease('node-a') });
  await a.leases.patchNamespacedLease(
    { name: 'node-a', namespace: NS, body: { spec: { holderIdentity: 'node-a' } } },
    mergePatch,
  );

  await expectRefused(
    a.nodes.createClusterCustomObject({ ...HVN, body: hypervisorNode('node-b') }),
    notOwn('hypervisornodes', 'node-b'),
  );
  await expectRefused(
    a.leases.createNamespacedLease({ namespace: NS, body: nodeLease('node-b') }),
    notOwn('leases', 'node-b'),
  );
  // node-b's daemon registers itself; node-a's may then neither write its status nor renew its Lease.
  await b.nodes.createClusterCustomObject({ ...HVN, body: hypervisorNode('node-b') });
  await b.leases.createNamespacedLease({ namespace: NS, body: nodeLease('node-b') });
  await expectRefused(
    a.nodes.patchClusterCustomObjectStatus(
      { ...HVN, name: 'node-b', body: { status: { endpoint: '127.0.0.1:1' } } },
      mergePatch,
    ),
    notOwn('hypervisornodes', 'node-b'),
  );
  await expectRefused(
    a.leases.patchNamespacedLease(
      { name: 'node-b', namespace: NS, body: { spec: { holderIdentity: 'node-a' } } },
      mergePatch,
    ),
    notOwn('leases', 'node-b'),
  );
  const nodeB = JSON.parse(await kubectl(cp, ['get', 'hypervisornode', 'node-b', '-o', 'json'])) as {
    status?: { endpoint?: string };
  };
  expect(nodeB.status?.endpoint).toBeUndefined();
});

test('a daemon token that is not bound to a pod names no node and may write nothing', async () => {
  const unbound = apis(await tokenKubeconfig(cp, join(scratch, 'unbound.kubeconfig'), DAEMON_SA));
  const noNode = /must authenticate with a token bound to its pod/;
  await expectRefused(
    unbound.nodes.createClusterCustomObject({ ...HVN, body: hypervisorNode('node-c') }),
    noNode,
  );
  await expectRefused(
    unbound.leases.createNamespacedLease({ namespace: NS, body: nodeLease('node-c') }),
    noNode,
  );
});

test('the admission policy lets the operator create no Lease but its leader Lease', async () => {
  const operator = apis(await tokenKubeconfig(cp, join(scratch, 'operator-lease.kubeconfig'), OPERATOR_SA));
  await expectRefused(
    operator.leases.createNamespacedLease({ namespace: NS, body: nodeLease('node-z') }),
    /tern-operator-leader-lease-only.*may create only its leader Lease tern-operator, not node-z/,
  );
});

test("the admission policy refuses a VirtualMachine naming paths outside its namespace's image directory and the shared roots", async () => {
  const vm = (boot: object, disks: object[] = []): string =>
    JSON.stringify({
      apiVersion: 'tern.dev/v1alpha1',
      kind: 'VirtualMachine',
      metadata: { name: 'vm-paths', namespace: TENANT },
      spec: { running: false, cpu: { cores: 1 }, memory: '64Mi', boot, disks },
    });
  // A read-only image every node has is shared (a local disk cannot be read-only: the CRD refuses it).
  const disk = (name: string, path: string, readOnly: boolean) => ({
    name,
    path,
    readOnly,
    storage: readOnly ? 'shared' : 'local',
  });
  const own = `/var/lib/tern-images/namespaces/${TENANT}`;
  const shared = '/var/lib/tern-images/shared';
  const create = (body: string) => cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: body });
  const ok = await create(
    vm({ kernel: { path: `${shared}/vmlinuz`, initrdPath: `${own}/initrd` } }, [
      disk('root', `${own}/root.qcow2`, false),
      disk('gold', `${shared}/gold.raw`, true),
    ]),
  );
  expect(ok.stderr).toBe('');
  const refused = [
    [
      vm({ kernel: { path: `${shared}/vmlinuz` } }, [
        disk('root', '/var/lib/tern-images/namespaces/other/r.raw', false),
      ]),
      `a writable disk must lie in this namespace's image directory ${own}/, not /var/lib/tern-images/namespaces/other/r.raw`,
    ],
    [
      vm({ kernel: { path: `${shared}/vmlinuz` } }, [disk('root', `${shared}/gold.raw`, false)]),
      `a writable disk must lie in this namespace's image directory ${own}/, not ${shared}/gold.raw`,
    ],
    [
      vm({ kernel: { path: '/etc/passwd' } }),
      `kernel, initrd and read-only disks must lie in this namespace's image directory ${own}/ or a shared image root (${shared}/), not /etc/passwd`,
    ],
    [
      vm({ kernel: { path: `${shared}/vmlinuz` } }, [disk('root', `${own}x/r.raw`, true)]),
      `not ${own}x/r.raw`,
    ],
  ] as const;
  for (const [body, message] of refused) {
    const result = await create(body);
    expect(result.stderr).toContain('tern-vm-image-paths');
    expect(result.stderr).toContain(message);
  }

  // A VM written before the policy (or before the roots moved) keeps taking metadata changes (finalizers, labels:
  // it can still be deleted); only a new spec is judged.
  const binding = ['validatingadmissionpolicybinding', 'tern-vm-image-paths'];
  const bindingManifest = await kubectl(cp, ['get', ...binding, '-o', 'json']);
  await kubectl(cp, ['delete', ...binding]);
  await eventually('the policy lifted', async () => {
    const result = await create(refused[2][0]);
    return result.code === 0 ? true : undefined;
  });
  await kubectl(cp, ['create', '-f', '-'], refused[2][0]);
  await kubectl(cp, ['apply', '-f', '-'], bindingManifest);
  await eventually('the policy in force', async () => {
    const result = await create(refused[2][0].replace('"vm-paths"', '"vm-paths-2"'));
    return result.code !== 0 ? true : undefined;
  });
  await kubectl(cp, ['label', 'virtualmachine', 'vm-paths', '-n', TENANT, 'tier=old']);
  const specChange = await cp.kubectl([
    'patch',
    'virtualmachine',
    'vm-paths',
    '-n',
    TENANT,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { boot: { kernel: { path: '/etc/shadow' } } } }),
  ]);
  expect(specChange.stderr).toContain('not /etc/shadow');
  await kubectl(cp, ['delete', 'virtualmachine', 'vm-paths', '-n', TENANT]);
});

/** Log lines that show the API refused a call (an RBAC or admission-policy gap). */
const refusals = (logs: LogLine[]): string[] =>
  logs.map((line) => JSON.stringify(line)).filter((line) => /forbidden/i.test(line));

interface Status {
  status?: {
    phase?: string;
    failureReason?: string;
    conditions?: { type: string; status: string; reason: string }[];
  };
  metadata: { finalizers?: string[] };
}

test('the real daemon and operator do their work under the chart identities without a refused call', async () => {
  const certs = generateDevCerts(join(scratch, 'certs'), [{ name: 'node-a' }]);
  const stateDir = join(scratch, 'state');
  const imagesRoot = join(scratch, 'images');
  mkdirSync(stateDir);
  mkdirSync(imagesRoot);
  const daemon: DaemonProcess = await startDaemonProcess(
    testDaemonArgs({
      node: 'node-a',
      certs,
      stateDir,
      imagesRoot,
      kubeconfig: daemonKubeconfig('node-a'),
      leaseDurationSeconds: 10,
    }),
  );
  running.push(daemon);
  const operatorKubeconfig = await tokenKubeconfig(cp, join(scratch, 'operator.kubeconfig'), OPERATOR_SA);
  const operator: OperatorProcess = await startOperatorProcess([
    ...['--kubeconfig', operatorKubeconfig, '--metrics-listen', '127.0.0.1:0'],
    ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
    ...['--leader-lease-duration-seconds', '5', '--migration-history-limit', '1'],
  ]);
  running.push(operator);
  const get = async <T>(...args: string[]) =>
    JSON.parse(await kubectl(cp, ['get', ...args, '-o', 'json'])) as T;

  // A node whose daemon stopped renewing an hour ago, a stopped VM, and two Migrations of a VM that does not exist.
  const stale = microTime(new Date(Date.now() - 3_600_000));
  await kubectl(
    cp,
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        hypervisorNode('node-gone'),
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          ...nodeLease('node-gone'),
          spec: { holderIdentity: 'node-gone', leaseDurationSeconds: 10, renewTime: stale },
        },
        {
          apiVersion: 'tern.dev/v1alpha1',
          kind: 'VirtualMachine',
          metadata: { name: 'vm-stopped', namespace: TENANT },
          spec: {
            running: false,
            cpu: { cores: 1 },
            memory: '64Mi',
            // The chart's shared image root (the admission policy checks the path; the VM never runs).
            boot: { kernel: { path: '/var/lib/tern-images/shared/vmlinuz' } },
          },
        },
      ],
    }),
  );
  for (const name of ['ghost-1', 'ghost-2']) {
    await kubectl(
      cp,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'tern.dev/v1alpha1',
        kind: 'Migration',
        metadata: { name, namespace: TENANT },
        spec: { vmName: 'ghost' },
      }),
    );
  }

  // Leader election: the operator created the Lease and holds it (create, get, update).
  await eventually('the operator holds the leader Lease', async () => {
    const leader = await get<{ spec: { holderIdentity?: string } }>('lease', 'tern-operator', '-n', NS);
    return leader.spec.holderIdentity ? leader : undefined;
  });
  // The daemon registered its node and renews its heartbeat.
  await eventually('node-a is Ready', async () => {
    const node = await get<Status>('hypervisornode', 'node-a');
    return node.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  });
  // Health: status update and a Warning Event in "default" about the cluster-scoped node.
  await eventually('node-gone is NotReady with LeaseExpired', async () => {
    const node = await get<Status>('hypervisornode', 'node-gone');
    return node.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'LeaseExpired');
  });
  // VirtualMachine: finalizer patch, status update, Event in the tenant namespace.
  await eventually('vm-stopped is Stopped', async () => {
    const vm = await get<Status>('virtualmachine', 'vm-stopped', '-n', TENANT);
    return vm.status?.phase === 'Stopped' && vm.metadata.finalizers?.includes('tern.dev/guest')
      ? vm
      : undefined;
  });
  // Migration: finalizer patch, status update, and deletion of the older one by the history limit of 1.
  await eventually('ghost-2 Failed with VMNotFound and ghost-1 pruned', async () => {
    const list = await get<{ items: (Status & { metadata: { name: string } })[] }>(
      'migrations',
      '-n',
      TENANT,
    );
    const [only] = list.items;
    return list.items.length === 1 &&
      only!.metadata.name === 'ghost-2' &&
      only!.status?.failureReason === 'VMNotFound' &&
      !only!.metadata.finalizers?.length
      ? only
      : undefined;
  });
  const events = async (namespace: string) =>
    (
      await get<{ items: { reason: string; involvedObject: { name: string } }[] }>('events', '-n', namespace)
    ).items.map((e) => `${e.involvedObject.name}:${e.reason}`);
  await eventually('the Events were recorded', async () => {
    const all = [...(await events('default')), ...(await events(TENANT))];
    return all.includes('node-gone:NodeNotReady') && all.includes('vm-stopped:Stopped') ? all : undefined;
  });
  // Deleting the VM: the operator removes its finalizer (JSON patch) and the VM goes away.
  await kubectl(cp, ['delete', 'virtualmachine', 'vm-stopped', '-n', TENANT, '--wait=false']);
  await eventually('vm-stopped is gone', async () => {
    const result = await cp.kubectl(['get', 'virtualmachine', 'vm-stopped', '-n', TENANT]);
    return result.code !== 0 && /NotFound/.test(result.stderr) ? true : undefined;
  });

  // `helm test`: the chart's ready check, as its Pod runs it, with the test ServiceAccount's token. No kubelet
  // here: the Deployment has no ready replica yet, and node-b's daemon pod has no running daemon.
  const before = await readyCheck();
  expect(before.code).toBe(1);
  expect(before.output).toContain(
    'FAIL: operator replicas: Deployment tern-operator has no ready replica (0/2 ready)',
  );
  expect(before.output).toContain('ok: operator leader');
  expect(before.output).toContain(
    'FAIL: hypervisor nodes: HypervisorNode node-b: not Ready (no Ready condition)',
  );
  // What the kubelet and the Deployment controller would report once a replica's /readyz answers; node-b's
  // daemon pod gone (the node no longer matches the DaemonSet).
  await kubectl(cp, [
    ...['patch', 'deployment', 'tern-operator', '-n', NS, '--subresource=status', '--type=merge'],
    ...['-p', JSON.stringify({ status: { replicas: 2, readyReplicas: 1 } })],
  ]);
  await kubectl(cp, [
    'delete',
    'pod',
    'tern-hypervisor-node-node-b',
    '-n',
    NS,
    '--grace-period=0',
    '--force',
  ]);
  expect(await readyCheck()).toEqual({
    code: 0,
    output: 'ok: operator replicas\nok: operator leader\nok: hypervisor nodes\n',
  });

  expect(await operator.stop()).toBe(0);
  // On SIGTERM the daemon reports Ready=False through its own status subresource.
  expect(await daemon.stop()).toBe(0);
  expect((await readyCheck()).output).toMatch(
    /FAIL: hypervisor nodes: HypervisorNode node-a: not Ready \(DaemonStopped: /,
  );
  const nodeA = await get<Status>('hypervisornode', 'node-a');
  expect(nodeA.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
    status: 'False',
    reason: 'DaemonStopped',
  });
  expect(refusals(operator.logs)).toEqual([]);
  expect(refusals(daemon.logs)).toEqual([]);
  expect(daemon.logs.filter((line) => line.msg === 'registration update failed')).toEqual([]);
}, 180_000);

// Last: it adds the console's objects to the cluster the tests above share.
test('with operator.console.enabled the operator may check console users and publish its endpoint, and its flags parse', async () => {
  const values = ['--set', 'operator.console.enabled=true'];
  const withConsole = await helm('template', 'tern', CHART, `--namespace=${NS}`, ...values);
  const deployment = parseAllDocuments(withConsole)
    .map((doc) => doc.toJS() as { kind?: string; spec: { template: { spec: { containers: Container[] } } } })
    .find((doc) => doc.kind === 'Deployment')!;
  const args = deployment.spec.template.spec.containers[0]!.args!;
  expect(parseOperatorConfig(args, {}).console).toEqual({
    listen: { host: '0.0.0.0', port: 9443 },
    certFile: '/etc/tern/console-tls/tls.crt',
    keyFile: '/etc/tern/console-tls/tls.key',
    caFile: '/etc/tern/console-tls/ca.crt',
    publishNamespace: NS,
    advertise: `tern-operator-console.${NS}.svc:9443`,
  });
  const consoleObjects = await helm(
    'template',
    'tern',
    CHART,
    `--namespace=${NS}`,
    ...values,
    '--show-only',
    'templates/operator-console.yaml',
  );
  await kubectl(cp, ['apply', '--validate=strict', '-f', '-'], consoleObjects);
  const calls: Access[] = [
    { verb: 'create', group: 'authentication.k8s.io', resource: 'tokenreviews' },
    { verb: 'create', group: 'authorization.k8s.io', resource: 'subjectaccessreviews' },
    core('get', 'configmaps', { namespace: 'kube-system', name: 'extension-apiserver-authentication' }),
    core('create', 'configmaps', { namespace: NS }),
    core('get', 'configmaps', { namespace: NS, name: 'tern-console' }),
    core('patch', 'configmaps', { namespace: NS, name: 'tern-console' }),
  ];
  const mustNot = [
    core('get', 'configmaps', { namespace: 'kube-system', name: 'kube-proxy' }),
    core('patch', 'configmaps', { namespace: NS, name: 'other' }),
    core('list', 'configmaps', { namespace: NS }),
  ];
  expect(await allowedFor(cp, OPERATOR_SA, [...calls, ...mustNot])).toEqual(calls.map(describeAccess));
});

// Last too: its webhook configuration would hold every eviction in the release namespace.
test('with operator.nodeMaintenance.enabled the operator may keep guard pods, mirror cordons and publish its webhook CA, and may create no other pod', async () => {
  const values = ['--set', 'operator.nodeMaintenance.enabled=true'];
  const withMaintenance = await helm('template', 'tern', CHART, `--namespace=${NS}`, ...values);
  const deployment = parseAllDocuments(withMaintenance)
    .map((doc) => doc.toJS() as { kind?: string; spec: { template: { spec: { containers: Container[] } } } })
    .find((doc) => doc.kind === 'Deployment')!;
  const args = deployment.spec.template.spec.containers[0]!.args!;
  const configuration = `tern-operator-eviction-${NS}`;
  expect(parseOperatorConfig(args, {}).nodeMaintenance).toEqual({
    namespace: NS,
    guardImage: 'registry.k8s.io/pause:3.10',
    webhook: {
      listen: { host: '0.0.0.0', port: 9444 },
      certFile: '/etc/tern/webhook-tls/tls.crt',
      keyFile: '/etc/tern/webhook-tls/tls.key',
      caFile: '/etc/tern/webhook-tls/ca.crt',
      configuration,
      namespace: NS,
    },
  });
  const objects = await helm(
    'template',
    'tern',
    CHART,
    `--namespace=${NS}`,
    ...values,
    '--show-only',
    'templates/operator-node-maintenance.yaml',
  );
  await kubectl(cp, ['apply', '--validate=strict', '-f', '-'], objects);
  const calls: Access[] = [
    ...['get', 'list', 'watch', 'patch'].map((verb) => core(verb, 'nodes', { name: 'node-a' })),
    tern('patch', 'hypervisornodes', { name: 'node-a' }),
    ...['get', 'list', 'watch', 'create', 'delete'].map((verb) => core(verb, 'pods', { namespace: NS })),
    ...['get', 'patch'].map((verb) => ({
      verb,
      group: 'admissionregistration.k8s.io',
      resource: 'validatingwebhookconfigurations',
      name: configuration,
    })),
  ];
  const mustNot: Access[] = [
    core('create', 'pods', inTenant),
    core('delete', 'pods', inTenant),
    core('delete', 'nodes', { name: 'node-a' }),
    core('update', 'nodes', { name: 'node-a' }),
    core('create', 'pods', { namespace: NS, subresource: 'eviction', name: 'x' }),
    tern('delete', 'hypervisornodes', { name: 'node-a' }),
    {
      verb: 'patch',
      group: 'admissionregistration.k8s.io',
      resource: 'validatingwebhookconfigurations',
      name: 'other',
    },
  ];
  expect(await allowedFor(cp, OPERATOR_SA, [...calls, ...mustNot])).toEqual(calls.map(describeAccess));

  // The admission policy: the operator's guard pod passes, any other pod from the operator is refused.
  const operatorKubeconfig = await tokenKubeconfig(
    cp,
    join(scratch, 'operator-pods.kubeconfig'),
    OPERATOR_SA,
  );
  const vm = {
    metadata: { name: 'vm1', namespace: TENANT, uid: '00000000-0000-0000-0000-000000000001' },
    spec: {},
    status: { node: 'node-a', phase: 'Running' },
  } as unknown as VirtualMachine;
  const node = {
    metadata: { name: 'node-a', uid: '00000000-0000-0000-0000-00000000000a' },
  } as HypervisorNode;
  const guard = guardPod(vm, node, { namespace: NS, image: 'registry.k8s.io/pause:3.10' });
  const asOperator = (pod: object) =>
    cp.kubectl(['--kubeconfig', operatorKubeconfig, 'create', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify(pod),
    });
  const accepted = await asOperator(guard);
  expect(accepted.stderr).toBe('');
  expect(accepted.code).toBe(0);
  const other = structuredClone(guard) as unknown as { spec: { containers: { image: string }[] } };
  other.spec.containers[0]!.image = 'busybox';
  // A policy is in force a moment after it is stored.
  const refused = await eventually('the guard-pods-only policy in force', async () => {
    const result = await asOperator(other);
    return result.code !== 0 ? result : undefined;
  });
  expect(refused.stderr).toMatch(/tern-operator-guard-pods-only.*the operator may create only guard pods/);
});
