// A kubelet cluster whose process is SIGKILLed leaves containers, shims, mounts, cgroups and namespaces behind
// (only the processes it spawned die with it); the next startKubeletCluster removes all of it. Needs root.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { kubeBinary } from '../harness/control-plane.js';
import {
  BUSYBOX_IMAGE,
  kubeletClusterLeftovers,
  startKubeletCluster,
  type KubeletCluster,
} from '../harness/kubelet-cluster.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const UP_TIMEOUT_MS = 120_000;

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Starts `npm run kubelet-cluster`'s program in a child and resolves with its id and kubeconfig once it is up. */
function startChildCluster(child: ChildProcess): Promise<{ id: string; kubeconfig: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no cluster after ${UP_TIMEOUT_MS} ms:\n${out}`)),
      UP_TIMEOUT_MS,
    );
    const onData = (d: Buffer): void => {
      out += d.toString();
      const id = /kubelet cluster (tk\d+[a-z]) up/.exec(out)?.[1];
      const kubeconfig = /kubeconfig: (\S+)/.exec(out)?.[1];
      if (id && kubeconfig) {
        clearTimeout(timer);
        resolve({ id, kubeconfig });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`cluster process exited (${code}):\n${out}`)));
  });
}

describe('an abandoned kubelet cluster', () => {
  let next: KubeletCluster | undefined;
  let child: ChildProcess | undefined;

  afterAll(async () => {
    child?.kill('SIGKILL');
    await next?.stop();
  }, 120_000);

  it('is removed by the next start', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'hack/kubelet-cluster.ts'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const { id, kubeconfig } = await startChildCluster(child);

    // A container that runs until it is killed, so that its shim and processes are there to be left behind.
    const kubectl = (args: string[]) => run(kubeBinary('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args]);
    const created = await kubectl([
      'run',
      'sleeper',
      `--image=${BUSYBOX_IMAGE}`,
      '--image-pull-policy=Never',
      '--restart=Never',
      '--overrides={"spec":{"nodeName":"node-a"}}',
      '--command',
      '--',
      'sleep',
      '3600',
    ]);
    expect(created.code).toBe(0);
    const running = await kubectl([
      'wait',
      '--for=jsonpath={.status.phase}=Running',
      'pod/sleeper',
      '--timeout=90s',
    ]);
    expect(running).toEqual({ code: 0, out: expect.stringContaining('condition met') });

    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const left = await kubeletClusterLeftovers(id);
    expect(left).toEqual(expect.arrayContaining([`/tmp/${id}`, `${id}-node-a`, `${id}-br`]));
    expect(left).toEqual(
      expect.arrayContaining([expect.stringMatching(/^pid \d+: .*containerd-shim-runc-v2$/)]),
    );

    next = await startKubeletCluster();
    expect(await kubeletClusterLeftovers(id)).toEqual([]);
  }, 300_000);
});
