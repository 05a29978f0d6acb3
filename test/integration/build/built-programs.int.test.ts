// The production build (hack/build-dist.ts, `npm run build`): its bundles run under plain node from a directory with
// no node_modules and no tsx (every dependency and the .proto files inside the build), and the built daemon and
// operator, against a real kube-apiserver, run a VM whose guest verifies its memory; the built kubectl-tern reads it.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import { generateDevCerts } from '../../harness/certificates.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { killGuestsIn, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';
import {
  condition,
  eventually,
  kubectlOn,
  testDaemonArgs,
  verifyGuest,
} from '../../harness/operator-cluster.js';
import { startOperatorProcess, type OperatorProcess } from '../../harness/operator-process.js';
import { testGuestImages, testGuestVm, type TestGuestImages } from '../../fixtures/test-guest.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CRDS = join(REPO, 'crds/generated/');

let work: string;
let app: string;
let cp: ControlPlane | undefined;
let daemon: DaemonProcess | undefined;
let operator: OperatorProcess | undefined;
const { kubectl, apply, getJson } = kubectlOn(() => cp!);

/** Runs a built program under plain node, in a directory outside the repository (no node_modules to fall back on). */
const runBuilt = (program: string, args: string[]) =>
  run(process.execPath, [join(app, `${program}.mjs`), ...args], {
    cwd: work,
    // Nothing from the test runner's Node.js options (jest's --experimental-vm-modules) or a tsx loader.
    env: { PATH: process.env.PATH!, HOME: work },
    timeout: 30_000,
  });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tdist-'));
  app = join(work, 'app');
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'hack/build-dist.ts'), '--out', app],
    { cwd: REPO, timeout: 120_000 },
  );
  console.log(stdout.trim());
}, 150_000);

afterAll(async () => {
  await operator?.stop();
  await daemon?.stop();
  if (work) {
    await killGuestsIn(join(work, 's'));
    await rm(work, { recursive: true, force: true });
  }
  await cp?.stop();
});

test.each([
  ['operator', /^Usage: tern-operator/],
  ['hypervisor-node', /^Usage: hypervisor-node/],
  ['kubectl-tern', /^Usage: kubectl tern/],
])('the built %s prints its help under plain node', async (program, usage) => {
  const { stdout } = await runBuilt(program, ['--help']);
  expect(stdout).toMatch(usage);
});

test('the built daemon refuses to start without its required flags, with a message and exit code 2', async () => {
  const failure = await runBuilt('hypervisor-node', []).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(failure?.code).toBe(2);
  expect(failure?.stderr).toMatch(/^hypervisor-node: .* is required/);
});

test('the built daemon and operator run a VM, and the built kubectl-tern shows it', async () => {
  let images: TestGuestImages;
  [cp, images] = await Promise.all([startControlPlane({ name: 'dist' }), testGuestImages()]);
  await kubectl('apply', '-f', CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=30s', '--all', 'crd');
  await kubectl('create', 'namespace', 'tern-system');
  const certs = generateDevCerts(join(work, 'pki'), [{ name: 'node-a' }]);
  const stateDir = join(work, 's');
  daemon = await startDaemonProcess(
    testDaemonArgs({
      node: 'node-a',
      certs,
      stateDir,
      imagesRoot: images.root,
      kubeconfig: cp.kubeconfigPath,
      leaseDurationSeconds: 10,
    }),
    { main: join(app, 'hypervisor-node.mjs') },
  );
  operator = await startOperatorProcess(
    [
      ...['--kubeconfig', cp.kubeconfigPath, '--metrics-listen', '127.0.0.1:0'],
      ...['--tls-cert', certs.operator.cert, '--tls-key', certs.operator.key, '--tls-ca', certs.ca.cert],
      ...['--guest-poll-interval-ms', '1000'],
    ],
    join(app, 'operator.mjs'),
  );
  await eventually('node-a Ready', async () => {
    const node = await getJson<HypervisorNode>('hypervisornode', 'node-a');
    return condition(node, 'Ready')?.status === 'True' ? node : undefined;
  });

  await apply(testGuestVm('vm-built', images));
  const vm = await eventually(
    'vm-built Running',
    async () => {
      const current = await getJson<VirtualMachine>('virtualmachine', 'vm-built');
      return current.status?.phase === 'Running' ? current : undefined;
    },
    120_000,
  );
  expect(vm.status?.node).toBe('node-a');
  const verify = await verifyGuest(stateDir, 'vm-built');
  expect(verify.ok).toBe(true);

  const { stdout } = await runBuilt('kubectl-tern', [
    'status',
    'vm-built',
    '--kubeconfig',
    cp.kubeconfigPath,
  ]);
  expect(stdout).toMatch(/Running/);
  expect(stdout).toMatch(/node-a/);
}, 300_000);
