import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { kubeBinary, startControlPlane, type ControlPlane } from './control-plane.js';
import { eventually } from './eventually.js';

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

// Tighter than jest.config.js's testTimeout (120 s): a warm control plane starts in seconds.
const START_TIMEOUT_MS = 90_000;

/** `check` as a probe for eventually(): true ends the wait. */
const until =
  (check: () => boolean): (() => Promise<true | undefined>) =>
  async () =>
    check() || undefined;

/** Rejects with the child's output once it exits, for racing against a wait for it to print something. */
function failOnExit(exited: Promise<unknown>, what: string, output: () => string): Promise<never> {
  return exited.then((how) =>
    Promise.reject(new Error(`${what} exited early (${String(how)}):\n${output()}`)),
  );
}

/** A node child process running TypeScript through tsx, with its combined output collected. */
function spawnNode(args: string[]): { child: ChildProcess; exited: Promise<unknown>; output: () => string } {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not needed by the child
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  return { child, exited, output: () => output };
}

/** Runs hack/control-plane.ts in a child node process and waits until its control plane is up. */
async function startInChildProcess(): Promise<{
  child: ChildProcess;
  dir: string;
  exited: Promise<unknown>;
}> {
  const { child, exited, output } = spawnNode([join(repoRoot, 'hack', 'control-plane.ts')]);
  try {
    await Promise.race([
      eventually(
        'hack/control-plane.ts prints its kubeconfig',
        until(() => /^kubeconfig: /m.test(output())),
        60_000,
      ),
      failOnExit(exited, 'hack/control-plane.ts', output),
    ]);
    const dir = dirname(/^kubeconfig: (.*)$/m.exec(output())![1]!);
    expect(processesUsing(dir)).toHaveLength(2);
    return { child, dir, exited };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

test(
  'etcd and kube-apiserver die within seconds when the node process that started them is SIGKILLed',
  async () => {
    const { child, dir, exited } = await startInChildProcess();
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await eventually(
      'etcd and kube-apiserver are gone',
      until(() => processesUsing(dir).length === 0),
      5_000,
    );
    console.log(`servers gone ${Date.now() - killedAt} ms after SIGKILL of their parent`);
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(dir)).toBe(true); // nobody was left to remove it; the next start does that (tested below)
    rmSync(dir, { recursive: true });
  },
  START_TIMEOUT_MS,
);

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
    await eventually(
      'etcd and kube-apiserver are gone',
      until(() => processesUsing(dir).length === 0),
      2_000,
    );
    expect(existsSync(dir)).toBe(false);
  },
  START_TIMEOUT_MS,
);

/** Temp dirs of this test process's control planes named `label`, and the processes using any of them. */
function leftoversOf(label: string): { dirs: string[]; pids: number[] } {
  const prefix = `tern-cp-${process.pid}-${label}-`;
  return {
    dirs: readdirSync(tmpdir()).filter((entry) => entry.startsWith(prefix)),
    pids: processesUsing(join(tmpdir(), prefix)),
  };
}

test('a kube-apiserver that fails to start: a clear error, etcd stopped, no dir left', async () => {
  // A cache whose kube-apiserver is the real one with a flag it does not know; etcd and kubectl are the real ones.
  const cache = mkdtempSync(join(tmpdir(), 'tern-bad-cache-'));
  mkdirSync(join(cache, 'bin'));
  symlinkSync(kubeBinary('etcd'), join(cache, 'bin', 'etcd'));
  symlinkSync(kubeBinary('kubectl'), join(cache, 'bin', 'kubectl'));
  const apiserver = join(cache, 'bin', 'kube-apiserver');
  writeFileSync(apiserver, `#!/bin/sh\nexec ${kubeBinary('kube-apiserver')} --no-such-flag "$@"\n`, {
    mode: 0o755,
  });
  const savedCache = process.env.TERN_CACHE;
  process.env.TERN_CACHE = cache;
  try {
    await expect(startControlPlane({ name: 'failing-start' })).rejects.toThrow(
      /^control plane failed to start: kube-apiserver exited \(code 1\) while waiting for kube-apiserver \/readyz\n[^]*unknown flag: --no-such-flag/,
    );
  } finally {
    if (savedCache === undefined) delete process.env.TERN_CACHE;
    else process.env.TERN_CACHE = savedCache;
    rmSync(cache, { recursive: true });
  }
  expect(leftoversOf('failing-start')).toEqual({ dirs: [], pids: [] });
});

test(
  'process.exit(0) in a process that started a control plane stops it and removes its dir',
  async () => {
    const harness = join(repoRoot, 'test', 'harness', 'control-plane.ts');
    const script = [
      `import { startControlPlane } from ${JSON.stringify(harness)};`,
      `const cp = await startControlPlane({ name: 'plain-exit' });`,
      `console.log('dir: ' + cp.dir);`,
      'process.exit(0);',
    ].join('\n');
    const { exited, output } = spawnNode(['--input-type=module', '--eval', script]);
    expect(await exited).toBe(0);
    const dir = /^dir: (.*)$/m.exec(output())?.[1];
    expect(dir).toMatch(/\/tern-cp-\d+-plain-exit-/);
    // The exit handler SIGKILLed both servers just before the process exited; the kernel may take a moment.
    await eventually(
      'etcd and kube-apiserver are gone',
      until(() => processesUsing(dir!).length === 0),
      2_000,
    );
    expect(existsSync(dir!)).toBe(false);
  },
  START_TIMEOUT_MS,
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
  }, START_TIMEOUT_MS);

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
      await eventually(
        'the watch delivers ADDED watched',
        until(() => events.some((e) => e.type === 'ADDED' && e.name === 'watched')),
        10_000,
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
      await eventually(
        'the initial-events-end bookmark',
        until(() => {
          if (closedWith !== undefined)
            throw new Error(`watch ended (${String(closedWith)}): ${JSON.stringify(events)}`);
          return events.some((e) => e.type === 'BOOKMARK' && e.initialEventsEnd);
        }),
        10_000,
      );
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
