// A hypervisor-node daemon that dies with guests running, on the local cluster (network namespaces): the guests'
// QEMU processes keep running without it, the operator reports the VMs Unknown while the node's Lease is stale and
// starts them nowhere else, and the restarted daemon re-attaches: the same QEMUs are reported Running again.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HypervisorNode } from '../../crds/index.js';
import { eventually, runningVm, smallVm, e2eClusterForFile, startVmsOnNodeA } from './e2e-cluster.js';
import { guestDirOfVm } from '../harness/guest-lookup.js';

const cluster = e2eClusterForFile();

const VMS = ['keep-1', 'keep-2'];

const nodeReady = async (name: string) => {
  const node = await cluster.getJson<HypervisorNode>('hypervisornode', name);
  return node.status?.conditions?.find((condition) => condition.type === 'Ready')?.status;
};

async function qemuPid(vm: string): Promise<number> {
  const dir = await guestDirOfVm(cluster.node('node-a').stateDir, vm);
  return Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
}

test('guests survive a killed daemon and are reported Running again after its restart', async () => {
  // All on node-a; node-b takes new VMs again afterwards: nothing but the operator's restraint keeps the VMs from
  // being started there.
  const started = await startVmsOnNodeA(cluster, await Promise.all(VMS.map((name) => smallVm(name, 200))));
  const epochs = new Map(started.map((vm) => [vm.metadata.name!, vm.status!.epoch!]));
  const pids = new Map(await Promise.all(VMS.map(async (name) => [name, await qemuPid(name)] as const)));

  await cluster.stopDaemon('node-a', 'SIGKILL');
  await eventually(
    'node-a not Ready',
    async () => ((await nodeReady('node-a')) !== 'True' ? true : undefined),
    60_000,
  );
  for (const name of VMS) {
    await eventually(`${name} Unknown`, async () =>
      (await cluster.getVm(name)).status?.phase === 'Unknown' ? true : undefined,
    );
    // Still the same QEMU, and no second one on node-b.
    expect(await cluster.qemuPids(name)).toEqual({ 'node-a': [pids.get(name)], 'node-b': [] });
  }

  await cluster.startDaemon('node-a');
  await eventually(
    'node-a Ready',
    async () => ((await nodeReady('node-a')) === 'True' ? true : undefined),
    60_000,
  );
  for (const name of VMS) {
    const vm = await runningVm(cluster, name);
    expect(vm.status).toMatchObject({ node: 'node-a', epoch: epochs.get(name) });
    expect(await qemuPid(name)).toBe(pids.get(name));
    expect(await cluster.qemuPids(name)).toEqual({ 'node-a': [pids.get(name)], 'node-b': [] });
    const verify = await cluster.verify('node-a', name);
    expect(verify.detail).toMatch(/^OK /);
    expect(verify.ok).toBe(true);
  }
}, 420_000);
