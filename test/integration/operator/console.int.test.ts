// `kubectl tern console` end to end: the real CLI program, the real operator's console endpoint, a real
// kube-apiserver (TokenReview, SubjectAccessReview, the client CA it publishes), two real daemons and a QEMU guest
// with a shell on its first serial port. A session follows the VM across a live migration.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Migration, VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { eventually } from '../../harness/operator-cluster.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';

const LAUNCHER = fileURLToPath(new URL('../../../cli/bin/kubectl-tern', import.meta.url));
type NodeName = 'node-a' | 'node-b';
const VM = 'cvm';

// The console endpoint serves with the test apiserver's certificate (127.0.0.1), signed by the test CA.
const cluster = twoNodeCluster({
  name: 'console',
  qemuUser: true,
  operatorArgs: (cp) => [
    ...['--console-listen', '127.0.0.1:0', '--console-publish-namespace', 'tern-system'],
    ...[
      '--console-tls-cert',
      join(cp.dir, 'apiserver.crt'),
      '--console-tls-key',
      join(cp.dir, 'apiserver.key'),
    ],
    ...['--console-tls-ca', join(cp.dir, 'ca.crt')],
  ],
});
const { kubectl, apply, getJson } = cluster.kubectl;
const stateDir = (node: NodeName) => cluster.stateDir(node);
const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
/** Sessions of the running test: ended after it, so that a failed test leaves none attached. */
const sessions: ReturnType<typeof spawn>[] = [];

/** A kubeconfig for the ServiceAccount `name` in default, with a bearer token from the TokenRequest API. */
async function serviceAccountKubeconfig(name: string): Promise<string> {
  const token = (await kubectl('create', 'token', name, '-n', 'default')).trim();
  const path = join(cluster.work, `${name}.kubeconfig`);
  const { server, dir } = cluster.controlPlane;
  await writeFile(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: {
            server,
            'certificate-authority-data': (await readFile(join(dir, 'ca.crt'))).toString('base64'),
          },
        },
      ],
      users: [{ name, user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: name, namespace: 'default' } }],
      'current-context': 'test',
    }),
  );
  return path;
}

interface Session {
  write(text: string): void;
  /** Everything the session printed, stdout and stderr interleaved as they came. */
  transcript(): string;
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  exit: Promise<number>;
}

/** `kubectl tern console …` with piped stdin, as the user `kubeconfig` names. */
function consoleSession(kubeconfig: string, ...args: string[]): Session {
  // The endpoint's certificate (the test apiserver's) names localhost as well as 127.0.0.1.
  const child = spawn(LAUNCHER, ['console', VM, '--console-server-name', 'localhost', ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  sessions.push(child);
  let transcript = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (transcript += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (transcript += d));
  const exit = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  void exit.then(() => clearTimeout(timer));
  return {
    write: (text) => child.stdin.write(text),
    transcript: () => transcript,
    exit,
    waitFor: (pattern, ms = 30_000) =>
      eventually(`${pattern} in the console session`, async () => pattern.exec(transcript)?.[0], ms).catch(
        (error: unknown) => {
          throw new Error(`${(error as Error).message}; the session printed:\n${transcript}`);
        },
      ),
  };
}

beforeAll(async () => {
  await cluster.start();
  // Two users: console-user may attach (the docs' ClusterRole, bound in default), nobody may only find the endpoint.
  await apply(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: console-user, namespace: default}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tern-console}
rules:
  - apiGroups: [tern.dev]
    resources: [virtualmachines/console]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: console-user, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tern-console}
subjects: [{kind: ServiceAccount, name: console-user, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: tern-console-endpoint, namespace: tern-system}
rules:
  - apiGroups: ['']
    resources: [configmaps]
    resourceNames: [tern-console]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tern-console-endpoint, namespace: tern-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: tern-console-endpoint}
subjects:
  - {kind: ServiceAccount, name: console-user, namespace: default}
  - {kind: ServiceAccount, name: nobody, namespace: default}
`);
  await apply(testGuestVm(VM, cluster.images));
  const vm = await cluster.runningVm(VM);
  // The guest's init starts the console shell after the agent announced itself.
  await eventually(
    'the guest agent on the console',
    async () =>
      cluster.images.readyPattern.test(
        await readFile(join(stateDir(vm.status!.node as NodeName), vm.metadata.uid!, 'console.log'), 'utf8'),
      ) || undefined,
    60_000,
  );
}, 240_000);

afterEach(() => {
  for (const child of sessions.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

afterAll(() => cluster.stop());

it('refuses a user without get on virtualmachines/console, with a clear message', async () => {
  const session = consoleSession(await serviceAccountKubeconfig('nobody'));
  expect(await session.exit).toBe(1);
  expect(session.transcript()).toMatch(
    /error: user "system:serviceaccount:default:nobody" cannot get virtualmachines\/console of default\/cvm/,
  );
}, 60_000);

it('--history prints what the console wrote before (client certificate of the apiserver client CA)', async () => {
  // The admin kubeconfig authenticates with a client certificate (CN=admin, O=system:masters).
  const session = consoleSession(cluster.controlPlane.kubeconfigPath, '--history');
  await session.waitFor(/Successfully connected to default\/cvm console\. The escape sequence is \^\]/);
  await session.waitFor(/tern-agent:/);
  expect(session.transcript()).toMatch(/Run \/init as init process/);
  session.write('\x1d');
  expect(await session.exit).toBe(0);
}, 60_000);

it('runs commands in the guest, refuses a second session, and follows the VM across a live migration', async () => {
  const user = await serviceAccountKubeconfig('console-user');
  const session = consoleSession(user);
  await session.waitFor(/Successfully connected/);
  // busybox's line editor asks the terminal where the cursor is (ESC [6n) and would take the first keys of a piped
  // command for the answer: an empty line first, then the command at its prompt.
  session.write('\n');
  await session.waitFor(/\/ # /);
  session.write('echo tern-$RANDOM-ok\n');
  const first = await session.waitFor(/tern-\d+-ok/);
  // Without --history, only what the guest wrote since.
  expect(session.transcript()).not.toMatch(/tern-agent:/);

  // One interactive session per VM.
  const second = consoleSession(cluster.controlPlane.kubeconfigPath);
  expect(await second.exit).toBe(1);
  expect(second.transcript()).toMatch(/already connected/);

  const from = (await getVm()).status!.node as NodeName;
  const to: NodeName = from === 'node-a' ? 'node-b' : 'node-a';
  await apply({
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'console-move', namespace: 'default' },
    spec: { vmName: VM, targetNode: to },
  });
  await session.waitFor(new RegExp(`\\[tern\\] VM moved to node ${to}; console reconnected`), 120_000);
  // The record moves at the hand-over, before the Migration has finished.
  const done = await eventually(
    'the migration ended',
    async () => {
      const migration = await getJson<Migration>('migration', 'console-move');
      return ['Succeeded', 'Failed', 'Aborted'].includes(migration.status?.phase ?? '')
        ? migration
        : undefined;
    },
    60_000,
  );
  expect(done.status?.phase).toBe('Succeeded');
  expect((await getVm()).status?.node).toBe(to);

  session.write('echo tern-$RANDOM-ok\n');
  const answered = await eventually(
    'a second answer',
    async () => [...session.transcript().matchAll(/tern-\d+-ok/g)].map((m) => m[0]).find((t) => t !== first),
    30_000,
  );
  // Answered by the guest on the new node: its console log there has it.
  const uid = (await getVm()).metadata.uid!;
  expect(await readFile(join(stateDir(to), uid, 'console.log'), 'utf8')).toContain(answered);

  session.write('\x1d');
  expect(await session.exit).toBe(0);
  console.log(`console session transcript:\n${session.transcript()}`);
}, 200_000);
