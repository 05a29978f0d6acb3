// `kubectl tern drain` waiting: the lines for each VM's move and the verdicts, on scripted snapshots of the node,
// the VMs and the Migrations (the real apiserver is exercised in kubectl-tern.int.test.ts).
import type { HypervisorNode, Migration, MigrationStatus, VirtualMachine } from '../crds/index.js';
import type { KubeClient } from '../kube/client.js';
import type { KubeObject, ObjectList, ResourceType } from '../kube/types.js';
import { EVACUATION_NODE_LABEL } from '../crds/index.js';
import { DrainReporter } from './drain.js';
import type { DrainSnapshot } from './drain.js';
import { run } from './program.js';

const at = (ms: number) => new Date(Date.UTC(2026, 11, 6, 10, 0, 0, ms)).toISOString();

function node(
  generation: number,
  evacuation?: NonNullable<HypervisorNode['status']>['evacuation'],
): HypervisorNode {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'HypervisorNode',
    metadata: { name: 'node-a', generation },
    spec: { unschedulable: true, drain: true },
    status: { observedGeneration: generation, ...(evacuation && { evacuation }) },
  };
}

function vm(name: string, onNode: string, evictionStrategy?: 'LiveMigrate' | 'None'): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { disk: 'root' },
      ...(evictionStrategy && { evictionStrategy }),
    },
    status: { phase: 'Running', node: onNode },
  };
}

function evacuation(name: string, vmName: string, createdMs: number, status?: MigrationStatus): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      name,
      namespace: 'default',
      creationTimestamp: at(createdMs),
      labels: { [EVACUATION_NODE_LABEL]: 'node-a' },
    },
    spec: { vmName },
    ...(status && { status }),
  };
}

const copying: MigrationStatus = { phase: 'Copying', sourceNode: 'node-a', targetNode: 'node-b' };
const succeeded: MigrationStatus = {
  phase: 'Succeeded',
  sourceNode: 'node-a',
  targetNode: 'node-b',
  phaseTimings: [
    { phase: 'Pending', startedAt: at(1000), durationMs: 100 },
    { phase: 'Copying', startedAt: at(1100), durationMs: 2000 },
    { phase: 'Succeeded', startedAt: at(3310) },
  ],
  downtime: { qemuMs: 41 },
};
const EVACUATING = { phase: 'Evacuating' as const, startedAt: at(900), total: 2, remaining: 2 };

function play(snapshots: DrainSnapshot[], drainGeneration = 2) {
  const lines: string[] = [];
  const reporter = new DrainReporter('node-a', (l) => lines.push(l), drainGeneration);
  const verdicts = snapshots.map((s) => reporter.update(s));
  return { lines, verdicts, reporter };
}

describe('DrainReporter', () => {
  it("shows each VM's move, from → to, each phase once, then its result, and ends when the node is empty", () => {
    const { lines, verdicts } = play([
      { node: node(2), vms: [vm('vm01', 'node-a'), vm('vm02', 'node-a')], migrations: [] },
      {
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-a'), vm('vm02', 'node-a')],
        migrations: [
          evacuation('vm01-evac-aaaaa', 'vm01', 1000),
          evacuation('vm02-evac-bbbbb', 'vm02', 1001),
        ],
      },
      {
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-a'), vm('vm02', 'node-a')],
        migrations: [
          evacuation('vm01-evac-aaaaa', 'vm01', 1000, copying),
          evacuation('vm02-evac-bbbbb', 'vm02', 1001, { phase: 'Scheduling', sourceNode: 'node-a' }),
        ],
      },
      {
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-b'), vm('vm02', 'node-a')],
        migrations: [
          evacuation('vm01-evac-aaaaa', 'vm01', 1000, succeeded),
          evacuation('vm02-evac-bbbbb', 'vm02', 1001, {
            phase: 'Failed',
            sourceNode: 'node-a',
            targetNode: 'node-c',
            failureReason: 'TargetNotReady',
            message: 'node-c is not Ready',
          }),
        ],
      },
      {
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-b'), vm('vm02', 'node-b')],
        migrations: [
          evacuation('vm01-evac-aaaaa', 'vm01', 1000, succeeded),
          evacuation('vm02-evac-bbbbb', 'vm02', 1001, { phase: 'Failed', sourceNode: 'node-a' }),
          // The operator's next attempt began and ended between two reads: still shown.
          evacuation('vm02-evac-ccccc', 'vm02', 4000, succeeded),
        ],
      },
    ]);
    expect(lines).toEqual([
      'default/vm01: node-a → ?: Pending (migration default/vm01-evac-aaaaa)',
      'default/vm02: node-a → ?: Pending (migration default/vm02-evac-bbbbb)',
      'default/vm01: node-a → node-b: Copying (migration default/vm01-evac-aaaaa)',
      'default/vm02: node-a → ?: Scheduling (migration default/vm02-evac-bbbbb)',
      'default/vm01 moved: node-a → node-b in 2.31 s (downtime 41 ms)',
      'default/vm02 not moved: migration Failed (TargetNotReady): node-c is not Ready',
      'default/vm02 moved: node-a → node-b in 2.31 s (downtime 41 ms)',
    ]);
    expect(verdicts).toEqual([undefined, undefined, undefined, undefined, { kind: 'drained', moved: 2 }]);
  });

  it("waits for a Migration's result after the hand-over has already moved the VM's record", () => {
    const handedOver: DrainSnapshot = {
      node: node(2, EVACUATING),
      vms: [vm('vm01', 'node-b')],
      migrations: [evacuation('vm01-evac-aaaaa', 'vm01', 1000, { ...copying, phase: 'Freezing' })],
    };
    const { lines, verdicts } = play([
      handedOver,
      { ...handedOver, migrations: [evacuation('vm01-evac-aaaaa', 'vm01', 1000, succeeded)] },
    ]);
    expect(lines).toEqual([
      'default/vm01: node-a → node-b: Freezing (migration default/vm01-evac-aaaaa)',
      'default/vm01 moved: node-a → node-b in 2.31 s (downtime 41 ms)',
    ]);
    expect(verdicts).toEqual([undefined, { kind: 'drained', moved: 1 }]);
  });

  it('leaves out Migrations that finished before this drain, and other nodes', () => {
    const old = evacuation('vm01-evac-old00', 'vm01', 10, succeeded);
    const elsewhere: Migration = {
      ...evacuation('vm09-xxxxx', 'vm09', 1000, { ...copying, sourceNode: 'node-c' }),
      metadata: { name: 'vm09-xxxxx', namespace: 'default', creationTimestamp: at(1000) },
    };
    const { lines, verdicts } = play([
      {
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-a'), vm('vm09', 'node-c')],
        migrations: [old, elsewhere],
      },
    ]);
    expect(lines).toEqual([]);
    expect(verdicts).toEqual([undefined]);
  });

  it('reports a blocked evacuation only once the operator has seen this drain', () => {
    const blocked = {
      ...EVACUATING,
      phase: 'Blocked' as const,
      message: 'evictionStrategy None: default/vm03',
    };
    const snapshot = (generation: number): DrainSnapshot => ({
      node: node(generation, blocked),
      vms: [vm('vm03', 'node-a', 'None')],
      migrations: [],
    });
    const { verdicts, reporter } = play([snapshot(1), snapshot(2)]);
    expect(verdicts).toEqual([
      undefined,
      { kind: 'blocked', message: 'evictionStrategy None: default/vm03' },
    ]);
    expect(reporter.remaining(snapshot(2))).toBe('default/vm03 (evictionStrategy None)');
  });

  it('names what is left on the node and why', () => {
    const { reporter } = play([]);
    expect(
      reporter.remaining({
        node: node(2, EVACUATING),
        vms: [vm('vm01', 'node-a'), vm('vm02', 'node-a'), vm('vm03', 'node-b')],
        migrations: [evacuation('vm01-evac-aaaaa', 'vm01', 1000, copying)],
      }),
    ).toBe('default/vm01 (migration default/vm01-evac-aaaaa: Copying), default/vm02 (not moving)');
  });
});

/** A client whose successive reads of the node return the next snapshot (the lists follow the same one). */
function scriptedCluster(snapshots: DrainSnapshot[]) {
  let index = -1;
  const patches: unknown[] = [];
  const current = () => snapshots[Math.max(0, Math.min(index, snapshots.length - 1))]!;
  const unexpected = () => Promise.reject(new Error('not used by drain'));
  const client: KubeClient = {
    async get<T extends KubeObject>(): Promise<T> {
      index++;
      return current().node as unknown as T;
    },
    async list<T extends KubeObject>(type: ResourceType): Promise<ObjectList<T>> {
      const items = type.kind === 'Migration' ? current().migrations : current().vms;
      return { items: [...items] as unknown as T[], resourceVersion: String(index) };
    },
    async patch<T extends KubeObject>(_type: ResourceType, _name: string, _ns: unknown, patch: unknown) {
      patches.push(patch);
      return node(2) as unknown as T;
    },
    create: unexpected,
    watch: () => {
      throw new Error('not used by drain');
    },
    replace: unexpected,
    replaceStatus: unexpected,
    delete: unexpected,
  };
  return { connect: async () => ({ client, namespace: 'default', close: () => {} }), patches };
}

async function invoke(argv: string[], snapshots: DrainSnapshot[]) {
  let out = '';
  let err = '';
  const cluster = scriptedCluster(snapshots);
  const code = await run(argv, {
    connect: cluster.connect,
    out: { write: (t) => (out += t), isTTY: false },
    writeErr: (t) => (err += t),
    pollIntervalMs: 1,
  });
  return { code, out, err, patches: cluster.patches };
}

describe('kubectl tern drain', () => {
  const moving: DrainSnapshot = {
    node: node(2, EVACUATING),
    vms: [vm('vm01', 'node-a')],
    migrations: [evacuation('vm01-evac-aaaaa', 'vm01', 1000, copying)],
  };
  const done: DrainSnapshot = {
    node: node(2, { ...EVACUATING, phase: 'Evacuated', remaining: 0 }),
    vms: [vm('vm01', 'node-b')],
    migrations: [evacuation('vm01-evac-aaaaa', 'vm01', 1000, succeeded)],
  };

  it('waits until the node is empty and exits 0', async () => {
    const r = await invoke(['drain', 'node-a'], [moving, moving, done]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      'hypervisornode.tern.dev/node-a cordoned',
      'default/vm01: node-a → node-b: Copying (migration default/vm01-evac-aaaaa)',
      'default/vm01 moved: node-a → node-b in 2.31 s (downtime 41 ms)',
      'hypervisornode.tern.dev/node-a drained (1 VM moved)',
      '',
    ]);
    expect(r.patches).toEqual([{ type: 'merge', body: { spec: { unschedulable: true, drain: true } } }]);
  });

  it('--timeout: exits 1 and names what is still on the node', async () => {
    const r = await invoke(['drain', 'node-a', '--timeout', '0.05s'], [moving]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'error: timed out after 50 ms waiting for node-a to drain; still on the node: ' +
        'default/vm01 (migration default/vm01-evac-aaaaa: Copying) ' +
        '(the node stays cordoned and the operator keeps moving its VMs)\n',
    );
    expect(r.out).toContain('default/vm01: node-a → node-b: Copying');
  });

  it('exits 1 at once when the operator reports the evacuation blocked', async () => {
    const blocked: DrainSnapshot = {
      node: node(2, { ...EVACUATING, phase: 'Blocked', message: 'evictionStrategy None: default/vm03' }),
      vms: [vm('vm03', 'node-a', 'None')],
      migrations: [],
    };
    const r = await invoke(['drain', 'node-a'], [blocked]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^error: cannot drain node-a: evictionStrategy None: default\/vm03; still on the node: default\/vm03 \(evictionStrategy None\)/,
    );
  });

  it('--no-wait returns once the node is marked', async () => {
    const r = await invoke(['drain', 'node-a', '--no-wait'], [moving]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^hypervisornode\.tern\.dev\/node-a drained: unschedulable/);
    expect(r.out.split('\n')).toHaveLength(2);
  });

  it.each(['5', '-1s', '1d', 'm', ''])('rejects --timeout %j before any API call', async (value) => {
    const r = await invoke(['drain', 'node-a', '--timeout', value], [moving]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: invalid --timeout/);
    expect(r.patches).toHaveLength(0);
  });
});
