// The two-node cluster harness leaves nothing behind: not after a full run with a guest, not when start() fails
// half-way, not when stop() comes while start() is under way. "Nothing" is checked from outside: no process whose
// command line names the cluster's temp dir or the control plane's dir (daemons, QEMUs, operator, etcd,
// kube-apiserver), and neither dir left on disk.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { testGuestVm } from '../fixtures/test-guest.js';
import { twoNodeCluster, type TwoNodeCluster } from './two-node-cluster.js';

/** Live processes whose command line contains `path`: `<pid> <command line>` each. */
async function processesNaming(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(path)) found.push(`${entry} ${cmdline.replaceAll('\0', ' ').trim()}`);
  }
  return found;
}

async function expectNothingLeft(cluster: TwoNodeCluster): Promise<void> {
  const { work } = cluster;
  const { dir } = cluster.controlPlane;
  expect(await processesNaming(`${work}/`)).toEqual([]);
  expect(await processesNaming(`${dir}/`)).toEqual([]);
  expect(existsSync(work)).toBe(false);
  expect(existsSync(dir)).toBe(false);
}

const clusters: TwoNodeCluster[] = [];
const cluster = (options: Parameters<typeof twoNodeCluster>[0]) => {
  const made = twoNodeCluster(options);
  clusters.push(made);
  return made;
};

// A failed assertion leaves no cluster running either.
afterAll(() => Promise.all(clusters.map((made) => made.stop())));

it('runs a guest on a node started later, and stop() (twice) leaves no process or dir behind', async () => {
  const made = cluster({ name: 'harness-full', nodes: ['node-a'], laterNodes: ['node-b'], qemuUser: true });
  await made.start();
  await made.startNode('node-b');
  expect(Object.keys(made.nodes).sort()).toEqual(['node-a', 'node-b']);
  const vm = testGuestVm('hvm', made.images);
  vm.spec.placement = { nodeName: 'node-b' };
  await made.kubectl.apply(vm);
  await made.runningVm('hvm', 'node-b', 120_000);
  // Its QEMU runs under node-b's state dir.
  expect((await processesNaming(`${made.stateDir('node-b')}/`)).length).toBeGreaterThan(0);
  await made.stop();
  await made.stop();
  await expectNothingLeft(made);
}, 240_000);

it('a start() that fails half-way (the operator refuses a flag, after the daemons started) stops what it started', async () => {
  const made = cluster({ name: 'harness-fail', operatorArgs: ['--no-such-flag'] });
  await expect(made.start()).rejects.toThrow(/exited with 2 before it was ready/);
  await expectNothingLeft(made);
  await made.stop();
}, 180_000);

it('stop() while start() is under way ends start() and leaves nothing behind', async () => {
  const made = cluster({ name: 'harness-stop' });
  const starting = made.start();
  let settled = false;
  const failed = starting.then(
    () => undefined,
    (error: unknown) => error,
  );
  void failed.then(() => (settled = true));
  // Once the daemons run (the operator is starting, the HypervisorNodes are not Ready yet).
  while (Object.keys(made.nodes).length < 2 && !settled)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await made.stop();
  expect(await failed).toBeInstanceOf(Error);
  await expectNothingLeft(made);
}, 180_000);
