// `kubectl tern` as users run it: the real kubectl finds the plugin (a symlink named kubectl-tern on the PATH,
// pointing at cli/bin/kubectl-tern) and runs it against a real kube-apiserver with the CRDs installed. No
// operator runs: where a test needs a Migration to advance, the test writes its status through the status
// subresource, as the operator would.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { HypervisorNode, Migration, MigrationStatus, TernList, VirtualMachine } from '../crds/index.js';
import { API_VERSION, KIND_DEFINITIONS, crdName } from '../crds/index.js';
import type { TernKind } from '../crds/index.js';
import { kubeBinary, startControlPlane } from '../test/harness/control-plane.js';
import type { ControlPlane } from '../test/harness/control-plane.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CRD_DIR = join(REPO_ROOT, 'crds', 'generated');
const LAUNCHER = join(REPO_ROOT, 'cli', 'bin', 'kubectl-tern');

let cp: ControlPlane;
let pluginDir: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kubectl tern <args>` through the real kubectl, with only the plugin dir added to PATH. */
/** Quotes one word for sh. */
const shellWord = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

function tern(
  args: string[],
  env: Record<string, string> = {},
  options: { tty?: boolean } = {},
): { result: Promise<Result>; stdout: () => string } {
  const argv = [kubeBinary('kubectl'), 'tern', ...args];
  // script(1) runs the command on a pseudo-terminal, as in an interactive shell (-e passes its exit code on).
  const [command, ...commandArgs] = options.tty
    ? ['script', '-qefc', argv.map(shellWord).join(' '), '/dev/null']
    : argv;
  const child = spawn(command!, commandArgs, {
    env: {
      ...process.env,
      PATH: `${pluginDir}:${process.env.PATH ?? ''}`,
      KUBECONFIG: cp.kubeconfigPath,
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<Result>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
  return { result, stdout: () => stdout };
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? undefined : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T;
}

const migrationsOf = async (vmName: string, namespace = 'default'): Promise<Migration[]> =>
  (await getJson<TernList<Migration>>(['migrations', '-n', namespace])).items.filter(
    (m) => m.spec.vmName === vmName,
  );

async function writeMigrationStatus(name: string, status: MigrationStatus): Promise<void> {
  await kubectl([
    'patch',
    'migration',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

async function setVmNode(vmName: string, node: string): Promise<void> {
  await kubectl([
    'patch',
    'virtualmachine',
    vmName,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { phase: 'Running', node } }),
  ]);
}

/** Polls `check` every 100 ms for up to 20 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function vmManifest(name: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: API_VERSION,
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { kernel: { path: '/var/lib/tern/images/vmlinuz' } },
    },
  });
}

beforeAll(async () => {
  cp = await startControlPlane({ name: 'kubectl-tern' });
  await kubectl(['apply', '-f', CRD_DIR]);
  await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd',
    ...KIND_DEFINITIONS.map((d) => crdName(d.kind as TernKind)),
  ]);
  await kubectl(['create', 'namespace', 'team-a']);
  for (const [name, namespace] of [
    ['vm01', 'default'],
    ['vm02', 'default'],
    ['vm03', 'default'],
    ['vm04', 'default'],
    ['vm-a', 'team-a'],
  ] as const) {
    await kubectl(['apply', '-f', '-'], vmManifest(name, namespace));
  }
  for (const node of ['node-a', 'node-b', 'node-c', 'node-d']) {
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: API_VERSION, kind: 'HypervisorNode', metadata: { name: node } }),
    );
  }
  pluginDir = mkdtempSync(join(tmpdir(), 'tern-plugin-path-'));
  // A symlink, as `npm link` / `npm install -g` would create: the launcher must find the repo through it.
  symlinkSync(LAUNCHER, join(pluginDir, 'kubectl-tern'));
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  if (pluginDir) rmSync(pluginDir, { recursive: true, force: true });
});

// `migrate --wait` against the real operator is exercised by the demo's end-to-end test (test/e2e/demo.e2e.test.ts);
// its rendering of every phase is unit-tested in reporter.test.ts.
describe('kubectl tern (real kubectl, real apiserver)', () => {
  it('is found by kubectl as a plugin and prints help for every command', async () => {
    const top = await tern(['--help']).result;
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Usage: kubectl tern [options] [command]');
    for (const command of ['migrate', 'cancel', 'status', 'drain', 'uncordon']) {
      const r = await tern([command, '--help']).result;
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: kubectl tern ${command} [options]`);
    }
  });

  it('migrate creates the Migration the flags describe', async () => {
    const r = await tern([
      'migrate',
      'vm01',
      '--to',
      'node-b',
      '--bandwidth',
      '1Gi',
      '--max-downtime',
      '500ms',
    ]).result;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const name = /^migration\.tern\.dev\/(vm01-[a-z0-9]{5}) created: moving vm01 to node-b\n$/.exec(
      r.stdout,
    )?.[1];
    expect(name).toBeDefined();
    const [migration, ...others] = await migrationsOf('vm01');
    expect(others).toHaveLength(0);
    expect(migration?.metadata.name).toBe(name);
    expect(migration?.metadata.generateName).toBe('vm01-');
    expect(migration?.metadata.namespace).toBe('default');
    expect(migration?.spec).toEqual({
      vmName: 'vm01',
      targetNode: 'node-b',
      overrides: { bandwidth: '1Gi', maxDowntimeMs: 500 },
    });
  });

  it('rejects a bad --max-downtime before talking to the API', async () => {
    const before = (await migrationsOf('vm02')).length;
    // An unreadable kubeconfig proves that no connection was even attempted.
    const r = await tern([
      'migrate',
      'vm02',
      '--max-downtime',
      '90s',
      '--kubeconfig',
      '/nonexistent/kubeconfig',
    ]).result;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: invalid --max-downtime "90s": expected milliseconds between 1 and 60000, e.g. 300, 300ms or 1.5s\n',
    );
    expect(r.stdout).toBe('');
    expect(await migrationsOf('vm02')).toHaveLength(before);
  });

  it("surfaces the apiserver's rejection verbatim", async () => {
    const r = await tern(['migrate', 'nosuchvm']).result;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('Error from server (NotFound): virtualmachines.tern.dev "nosuchvm" not found\n');
  });

  it('honours --context and takes the namespace from that context', async () => {
    const config = parse(readFileSync(cp.kubeconfigPath, 'utf8')) as {
      clusters: { name: string; cluster: { server: string } }[];
      contexts: { name: string; context: Record<string, string> }[];
      'current-context': string;
    };
    const good = config.contexts[0]!;
    config.clusters.push({ name: 'unreachable', cluster: { server: 'https://127.0.0.1:1' } });
    config.contexts.push(
      { name: 'team-a', context: { ...good.context, namespace: 'team-a' } },
      { name: 'broken', context: { cluster: 'unreachable', user: good.context.user! } },
    );
    config['current-context'] = 'broken';
    const path = join(pluginDir, 'two-contexts.kubeconfig');
    writeFileSync(path, stringify(config), { mode: 0o600 });

    const viaContext = await tern(['status', 'vm-a', '--context', 'team-a'], { KUBECONFIG: path }).result;
    expect(viaContext.stderr).toBe('');
    expect(viaContext.stdout).toContain('VirtualMachine team-a/vm-a');
    const viaCurrent = await tern(['status', 'vm-a'], { KUBECONFIG: path }).result;
    expect(viaCurrent.code).toBe(1);
    expect(viaCurrent.stderr).toMatch(
      /^error: Unable to connect to the server: .*ECONNREFUSED 127\.0\.0\.1:1/,
    );
    const unknown = await tern(['status', 'vm-a', '--kubeconfig', path, '--context', 'nope']).result;
    expect(unknown.stderr).toBe('error: context "nope" does not exist in the kubeconfig\n');
    const missing = await tern(['status', 'vm-a', '--kubeconfig', '/nonexistent/kubeconfig']).result;
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: cannot load kubeconfig \/nonexistent\/kubeconfig: ENOENT/);
  });

  it('drain sets and uncordon clears the HypervisorNode spec fields', async () => {
    const drained = await tern(['drain', 'node-a', '--no-wait']).result;
    expect(drained.code).toBe(0);
    expect(drained.stdout).toMatch(/^hypervisornode\.tern\.dev\/node-a drained: unschedulable/);
    expect((await getJson<HypervisorNode>(['hypervisornode', 'node-a'])).spec).toEqual({
      unschedulable: true,
      drain: true,
    });
    expect((await getJson<HypervisorNode>(['hypervisornode', 'node-b'])).spec).toBeUndefined();

    const uncordoned = await tern(['uncordon', 'node-a']).result;
    expect(uncordoned.code).toBe(0);
    expect(uncordoned.stdout).toBe('hypervisornode.tern.dev/node-a uncordoned\n');
    const spec = (await getJson<HypervisorNode>(['hypervisornode', 'node-a'])).spec ?? {};
    expect(spec.unschedulable).toBeUndefined();
    expect(spec.drain).toBeUndefined();

    const missing = await tern(['drain', 'node-z']).result;
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      'Error from server (NotFound): hypervisornodes.tern.dev "node-z" not found\n',
    );
  });

  it("drain waits until the node is empty and shows each VM's move", async () => {
    await setVmNode('vm04', 'node-c');
    const drain = tern(['drain', 'node-c', '--timeout', '2m']);
    // What the operator's evacuation would do, written by the test: an evacuation Migration, its phases, and
    // the VM's record moving to the target.
    await until(
      async () => (await getJson<HypervisorNode>(['hypervisornode', 'node-c'])).spec?.drain === true,
    );
    expect(drain.stdout()).toBe('hypervisornode.tern.dev/node-c cordoned\n');
    const created = JSON.parse(
      await kubectl(
        ['create', '-o', 'json', '-f', '-'],
        JSON.stringify({
          apiVersion: API_VERSION,
          kind: 'Migration',
          metadata: {
            generateName: 'vm04-evac-',
            namespace: 'default',
            labels: { 'tern.dev/evacuation-of': 'node-c' },
          },
          spec: { vmName: 'vm04' },
        }),
      ),
    ) as Migration;
    const name = created.metadata.name!;
    await until(async () => drain.stdout().includes(`Pending (migration default/${name})`));
    await writeMigrationStatus(name, { phase: 'Copying', sourceNode: 'node-c', targetNode: 'node-b' });
    await until(async () => drain.stdout().includes('Copying'));
    const start = Date.parse(created.metadata.creationTimestamp!);
    await writeMigrationStatus(name, {
      phase: 'Succeeded',
      phaseTimings: [
        { phase: 'Copying', startedAt: new Date(start).toISOString(), durationMs: 1500 },
        { phase: 'Succeeded', startedAt: new Date(start + 1600).toISOString() },
      ],
      downtime: { qemuMs: 35 },
    });
    await until(async () => drain.stdout().includes('moved'));
    await setVmNode('vm04', 'node-b');
    const r = await drain.result;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'hypervisornode.tern.dev/node-c cordoned',
        `default/vm04: node-c → ?: Pending (migration default/${name})`,
        `default/vm04: node-c → node-b: Copying (migration default/${name})`,
        'default/vm04 moved: node-c → node-b in 1.60 s (downtime 35 ms)',
        'hypervisornode.tern.dev/node-c drained (1 VM moved)',
        '',
      ].join('\n'),
    );
  }, 60_000);

  it('drain --timeout exits non-zero and names what is still on the node', async () => {
    await setVmNode('vm02', 'node-d');
    const r = await tern(['drain', 'node-d', '--timeout', '2s']).result;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('hypervisornode.tern.dev/node-d cordoned\n');
    expect(r.stderr).toBe(
      'error: timed out after 2.00 s waiting for node-d to drain; still on the node: default/vm02 (not moving) ' +
        '(the node stays cordoned and the operator keeps moving its VMs)\n',
    );
    expect((await getJson<HypervisorNode>(['hypervisornode', 'node-d'])).spec).toEqual({
      unschedulable: true,
      drain: true,
    });
  }, 30_000);

  it('status prints the VM status fields and its last and active migration', async () => {
    const vmStatus: VirtualMachine['status'] = {
      phase: 'Running',
      node: 'node-a',
      epoch: 3,
      guestAddress: '10.0.0.7',
      lastMigration: {
        name: 'vm03-old01',
        sourceNode: 'node-b',
        targetNode: 'node-a',
        result: 'Succeeded',
        downtimeMs: 42,
        finishedAt: '2026-11-29T09:00:00Z',
      },
    };
    await kubectl([
      'patch',
      'virtualmachine',
      'vm03',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: vmStatus }),
    ]);
    const idle = await tern(['status', 'vm03']).result;
    expect(idle.stderr).toBe('');
    expect(idle.stdout).toBe(
      [
        'VirtualMachine default/vm03',
        '  Phase:            Running',
        '  Node:             node-a',
        '  Epoch:            3',
        '  Address:          10.0.0.7',
        '  Active migration: <none>',
        '  Last migration:   vm03-old01 Succeeded (node-b → node-a, downtime 42 ms, finished 2026-11-29T09:00:00Z)',
        '',
      ].join('\n'),
    );

    await tern(['migrate', 'vm03', '--to', 'node-b']).result;
    const [active] = await migrationsOf('vm03');
    await writeMigrationStatus(active!.metadata.name!, {
      phase: 'Copying',
      sourceNode: 'node-a',
      targetNode: 'node-b',
      progress: { round: 2, percent: 40 },
    });
    const moving = await tern(['status', 'vm03']).result;
    expect(moving.stdout).toContain(
      `  Active migration: ${active!.metadata.name} (node-a → node-b) Copying: round 2 40%\n`,
    );

    // Finished: the last migration's Quiescing report comes from its Migration (the CRD takes the report).
    await writeMigrationStatus(active!.metadata.name!, {
      phase: 'Succeeded',
      quiesce: {
        durationMs: 23,
        disks: [
          {
            name: 'data',
            storage: 'local',
            writes: 120,
            flushes: 118,
            writesAfterPause: 0,
            flushesAfterPause: 0,
            otherAfterPause: 0,
            mirrorCompleted: true,
            flushed: true,
          },
        ],
      },
    });
    await kubectl([
      'patch',
      'virtualmachine',
      'vm03',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: { lastMigration: { ...vmStatus.lastMigration, name: active!.metadata.name } },
      }),
    ]);
    const finished = await tern(['status', 'vm03']).result;
    expect(finished.stdout).toContain(
      '  Last quiesce:     23 ms, 1 of 1 disk flushed, no I/O after the pause (data local, mirror completed)\n',
    );
  });

  it('cancel deletes the active Migration and keeps finished ones as records', async () => {
    const [active] = await migrationsOf('vm01');
    const finished = JSON.parse(
      await kubectl(
        ['create', '-o', 'json', '-f', '-'],
        JSON.stringify({
          apiVersion: API_VERSION,
          kind: 'Migration',
          metadata: { generateName: 'vm01-', namespace: 'default' },
          spec: { vmName: 'vm01' },
        }),
      ),
    ) as Migration;
    await writeMigrationStatus(finished.metadata.name!, { phase: 'Succeeded' });

    const r = await tern(['cancel', 'vm01']).result;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`migration.tern.dev/${active!.metadata.name} deleted (cancelled)\n`);
    expect((await migrationsOf('vm01')).map((m) => m.metadata.name)).toEqual([finished.metadata.name]);

    const again = await tern(['cancel', 'vm01']).result;
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('error: no active migration of vm01 in namespace default\n');
  });
});
