// `npm run cluster -- up` on a local cluster that is partly down (network namespaces, as root): the operator and
// one daemon die while a guest runs; `up` keeps what runs (etcd, kube-apiserver, the other daemon), starts the
// operator and the daemon again, says what it found and what it started, and returns once every node is Ready. The
// restarted daemon re-attaches to the guest: the same QEMU process runs it. A dead control plane is started again
// with its recorded command lines. A cluster whose network namespace is gone cannot be healed: `up` refuses and
// says why.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { HypervisorNode } from '../../crds/index.js';
import { ip } from '../local-cluster/netns.js';
import { isAlive } from '../local-cluster/processes.js';
import { readState } from '../local-cluster/cluster-state.js';
import { e2eClusterForFile, eventually, runningVm, smallVm } from './e2e-cluster.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const cluster = e2eClusterForFile();

/** `npm run cluster -- ARGS` on this file's cluster, as a user runs it; stdout, stderr and the exit status. */
async function clusterCommand(...args: string[]): Promise<{ code: number; out: string }> {
  const { dir, name } = cluster.state;
  const result = await run(
    process.execPath,
    ['--import', 'tsx', 'hack/cluster.ts', ...args, '--dir', dir, '--name', name],
    { cwd: REPO, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 240_000 },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof error.code === 'number' ? error.code : 1,
      out: `${error.stdout ?? ''}${error.stderr ?? ''}`,
    }),
  );
  return result;
}

const readiness = async (node: string): Promise<string | undefined> =>
  (await cluster.getJson<HypervisorNode>('hypervisornode', node)).status?.conditions?.find(
    (condition) => condition.type === 'Ready',
  )?.status;

async function kill(pid: number): Promise<void> {
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  await eventually(`pid ${pid} gone`, async () => (isAlive(pid) ? undefined : true), 10_000);
}

test('up starts the dead operator and daemon, keeps the rest, and the guest keeps its QEMU', async () => {
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(await smallVm('heal01', 100)));
  const vm = await runningVm(cluster, 'heal01');
  const node = vm.status!.node!;
  const pids = await cluster.qemuPids('heal01');
  expect(pids[node]).toHaveLength(1);

  // Crashes: nothing but the processes dies, the state file still records them.
  const before = readState(cluster.state.dir)!;
  const kept = [
    ...before.controlPlane!.processes.map((p) => p.pid),
    ...before.nodes.filter((n) => n.name !== node).map((n) => n.daemon!.pid),
  ];
  await kill(before.operator!.pid);
  await kill(before.nodes.find((n) => n.name === node)!.daemon!.pid);
  expect((await clusterCommand('status')).code).not.toBe(0);

  const up = await clusterCommand('up');
  expect(up.out).toContain(`daemon ${node} DOWN`);
  expect(up.out).toMatch(/found: etcd running \(pid \d+\), kube-apiserver running/);
  expect(up.out).toMatch(/operator DOWN/);
  expect(up.out).toMatch(new RegExp(`started: daemon ${node} \\(pid \\d+\\), operator \\(pid \\d+\\)`));
  expect(up.code).toBe(0);

  // What ran was kept; every node is Ready once `up` returns; the guest runs in the same QEMU, with its memory.
  const after = readState(cluster.state.dir)!;
  expect([
    ...after.controlPlane!.processes.map((p) => p.pid),
    ...after.nodes.filter((n) => n.name !== node).map((n) => n.daemon!.pid),
  ]).toEqual(kept);
  for (const { name } of after.nodes) expect(await readiness(name)).toBe('True');
  const status = await clusterCommand('status');
  expect(status.out).not.toContain('DOWN');
  expect(status.code).toBe(0);
  expect(await cluster.qemuPids('heal01')).toEqual(pids);
  expect((await runningVm(cluster, 'heal01', node)).status!.epoch).toBe(vm.status!.epoch);
  expect((await cluster.verify(node, 'heal01')).ok).toBe(true);

  // A cluster that runs in full: up says so and starts nothing.
  expect((await clusterCommand('up')).out).toContain('is up already');
}, 420_000);

test('up starts a dead etcd and kube-apiserver again with their recorded command lines; the data stays', async () => {
  const before = readState(cluster.state.dir)!;
  for (const server of before.controlPlane!.processes) await kill(server.pid);
  const up = await clusterCommand('up');
  expect(up.out).toMatch(/found: etcd DOWN, kube-apiserver DOWN, daemon node-a running/);
  expect(up.out).toMatch(/started: etcd \(pid \d+\), kube-apiserver \(pid \d+\)\n/);
  expect(up.code).toBe(0);
  // The same apiserver address (in the kubeconfig and the certificates), and etcd's data: the VM is still there.
  expect(readState(cluster.state.dir)!.apiServer).toBe(before.apiServer);
  expect((await cluster.getVm('heal01')).status?.phase).toBe('Running');
  expect((await clusterCommand('status')).code).toBe(0);
}, 180_000);

test('up refuses, saying which part, when a node network namespace is gone', async () => {
  const state = readState(cluster.state.dir)!;
  const lost = state.nodes[1]!;
  await kill(state.operator!.pid);
  await ip(['netns', 'del', lost.netns!]);
  const up = await clusterCommand('up');
  expect(up.code).not.toBe(0);
  expect(up.out).toContain(`cannot be healed: its network namespace(s) ${lost.netns} are gone`);
  expect(up.out).toContain('npm run cluster -- down');
  // Nothing was started.
  expect(readState(cluster.state.dir)!.operator!.pid).toBe(state.operator!.pid);
}, 120_000);
