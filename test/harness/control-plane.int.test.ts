import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './control-plane.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Live processes whose command line mentions dir: etcd and kube-apiserver take all their files from it. */
function processesUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false; // exited while we looked
      }
    })
    .map(Number);
}

async function eventually(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Explicit timeouts: jest ignores testTimeout inside a `projects` entry, so the default 5 s would apply.

/** Runs hack/control-plane.ts in a child node process and waits until its control plane is up. */
async function startInChildProcess(): Promise<{
  child: ChildProcess;
  dir: string;
  exited: Promise<unknown>;
}> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not needed by the child
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'hack', 'control-plane.ts')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  try {
    await eventually('hack/control-plane.ts prints its kubeconfig', 60_000, () => {
      if (child.exitCode !== null) throw new Error(`hack/control-plane.ts exited early:\n${output}`);
      return /^kubeconfig: /m.test(output);
    });
    const dir = dirname(/^kubeconfig: (.*)$/m.exec(output)![1]!);
    expect(processesUsing(dir)).toHaveLength(2);
    return { child, dir, exited };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

test('etcd and kube-apiserver die within seconds when the node process that started them is SIGKILLed', async () => {
  const { child, dir, exited } = await startInChildProcess();
  child.kill('SIGKILL');
  const killedAt = Date.now();
  await eventually('etcd and kube-apiserver are gone', 5_000, () => processesUsing(dir).length === 0);
  console.log(`servers gone ${Date.now() - killedAt} ms after SIGKILL of their parent`);
  expect(await exited).toBe('SIGKILL');
  expect(existsSync(dir)).toBe(true); // nobody was left to remove it; the next start does that (tested below)
  rmSync(dir, { recursive: true });
}, 90_000);

// SIGINT is handled by hack/control-plane.ts itself (it exits 0); SIGTERM by the harness alone, which then
// re-raises it so that the process still dies of it.
test.each([
  ['SIGINT', 0],
  ['SIGTERM', 'SIGTERM'],
] as const)(
  '%s to the node process stops the control plane and removes its dir',
  async (signal, exit) => {
    const { child, dir, exited } = await startInChildProcess();
    child.kill(signal);
    expect(await exited).toBe(exit);
    // The harness sent SIGKILL just before the process exited; the kernel may take a moment to deliver it.
    await eventually('etcd and kube-apiserver are gone', 2_000, () => processesUsing(dir).length === 0);
    expect(existsSync(dir)).toBe(false);
  },
  90_000,
);

describe('a running control plane', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let abandonedDir: string;

  beforeAll(async () => {
    // What a SIGKILLed test process leaves behind: a control-plane dir named after a pid that no longer exists.
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    abandonedDir = mkdtempSync(join(tmpdir(), `tern-cp-${gone.pid}-abandoned-`));
    cp = await startControlPlane({ name: 'harness-test' });
    console.log(`control plane started in ${cp.startupMs} ms`);
    kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
  }, 90_000);

  afterAll(async () => {
    await cp?.stop();
  });

  test('starting removed the dir of a process that is gone', () => {
    expect(existsSync(abandonedDir)).toBe(false);
  });

  test('kubectl and the server are v1.37', async () => {
    const res = await cp.kubectl(['version', '-o', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const version = JSON.parse(res.stdout) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.37\.\d+$/);
    expect(version.clientVersion.gitVersion).toBe(version.serverVersion.gitVersion);
  });

  test('authorizes with RBAC: the admin may do anything, an unbound user nothing', async () => {
    expect((await cp.kubectl(['auth', 'can-i', '*', '*'])).stdout.trim()).toBe('yes');
    const denied = await cp.kubectl(['get', 'configmaps', '--as=nobody']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Forbidden');
  });

  test('kubectl apply reads its input from stdin', async () => {
    const manifest = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-stdin}\ndata: {a: "1"}\n';
    expect(await cp.kubectl(['apply', '-f', '-'], { input: manifest })).toMatchObject({ code: 0 });
    const got = await cp.kubectl(['get', 'configmap', 'from-stdin', '-o', 'jsonpath={.data.a}']);
    expect(got.stdout).toBe('1');
  });

  test('a ConfigMap can be created, read and watched through @kubernetes/client-node', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const events: { type: string; name: string }[] = [];
    const watching = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      {},
      (type, obj: { metadata: { name: string } }) => events.push({ type, name: obj.metadata.name }),
      () => undefined,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'watched' }, data: { key: 'value' } },
      });
      const read = await core.readNamespacedConfigMap({ namespace: 'default', name: 'watched' });
      expect(read.data).toEqual({ key: 'value' });
      await eventually('the watch delivers ADDED watched', 10_000, () =>
        events.some((e) => e.type === 'ADDED' && e.name === 'watched'),
      );
    } finally {
      watching.abort();
    }
  });

  // A streaming list (sendInitialEvents) needs etcd's RequestWatchProgress; kube-apiserver fails these watches
  // when etcd is too old (e.g. Debian's 3.4.23), which is why the harness builds etcd 3.6.
  test('a consistent watch (sendInitialEvents) delivers the initial events and the end bookmark', async () => {
    expect(await cp.kubectl(['create', 'configmap', 'listed-initially'])).toMatchObject({ code: 0 });
    const events: { type: string; name: string; initialEventsEnd: boolean }[] = [];
    let closedWith: unknown;
    const watching = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: true },
      (type, obj: { metadata: { name?: string; annotations?: Record<string, string> } }) =>
        events.push({
          type,
          name: obj.metadata.name ?? '',
          initialEventsEnd: obj.metadata.annotations?.['k8s.io/initial-events-end'] === 'true',
        }),
      (err) => (closedWith = err ?? 'closed'),
    );
    try {
      await eventually('the initial-events-end bookmark', 10_000, () => {
        if (closedWith !== undefined)
          throw new Error(`watch ended (${String(closedWith)}): ${JSON.stringify(events)}`);
        return events.some((e) => e.type === 'BOOKMARK' && e.initialEventsEnd);
      });
      expect(events.filter((e) => e.type === 'ADDED').map((e) => e.name)).toContain('listed-initially');
    } finally {
      watching.abort();
    }
  });

  test('stop() leaves no process behind and removes the dir', async () => {
    expect(processesUsing(cp.dir)).toHaveLength(2);
    await cp.stop();
    expect(processesUsing(cp.dir)).toEqual([]);
    expect(existsSync(cp.dir)).toBe(false);
    await cp.stop(); // idempotent
  });
});
