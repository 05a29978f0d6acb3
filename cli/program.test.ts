// The command line in-process: help, validation before any API call, error wording, and --wait following a
// Migration through a scripted client (the real apiserver is exercised in kubectl-tern.int.test.ts).
import type { Migration, MigrationStatus, VirtualMachine } from '../crds/index.js';
import { KubeApiError, NotFoundError } from '../kube/errors.js';
import type { KubeClient } from '../kube/client.js';
import type { KubeObject, ResourceType } from '../kube/types.js';
import type { Connect } from './kube.js';
import { errorMessage, run } from './program.js';

interface Captured {
  code: number;
  out: string;
  err: string;
}

async function invoke(argv: string[], connect: Connect): Promise<Captured> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    connect,
    out: { write: (t) => (out += t), isTTY: false },
    writeErr: (t) => (err += t),
    pollIntervalMs: 1,
  });
  return { code, out, err };
}

const noCluster: Connect = () => Promise.reject(new Error('the command must not connect to the cluster'));

describe('help', () => {
  it.each(['migrate', 'cancel', 'status', 'drain', 'uncordon'])('kubectl tern %s --help', async (command) => {
    const r = await invoke([command, '--help'], noCluster);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Usage: kubectl tern ${command} \\[options\\] <(vm|node)>`));
    expect(r.out).toContain('--kubeconfig <path>');
    expect(r.out).toContain('--context <name>');
    expect(r.err).toBe('');
  });

  it('lists every command', async () => {
    const r = await invoke(['--help'], noCluster);
    expect(r.code).toBe(0);
    for (const command of ['migrate', 'cancel', 'status', 'drain', 'uncordon'])
      expect(r.out).toContain(command);
  });
});

describe('input validation, before any API call', () => {
  it.each([
    [['migrate', 'vm01', '--max-downtime', '0'], 'error: invalid --max-downtime "0"'],
    [['migrate', 'vm01', '--max-downtime', '2m'], 'error: invalid --max-downtime "2m"'],
    [['migrate', 'vm01', '--bandwidth', '1GB'], 'error: invalid --bandwidth "1GB"'],
    [['migrate', 'VM01'], 'error: invalid VM name "VM01"'],
    [['migrate', 'vm01', '--to', 'node_b'], 'error: invalid node name "node_b"'],
    [['migrate', 'vm01', '-n', 'Prod'], 'error: invalid namespace "Prod"'],
    [['cancel', 'vm.01'], 'error: invalid VM name "vm.01"'],
    [['status', 'vm-'], 'error: invalid VM name "vm-"'],
    [['drain', 'Node-A'], 'error: invalid node name "Node-A"'],
    [['uncordon', 'node a'], 'error: invalid node name "node a"'],
  ])('%j', async (argv, message) => {
    const r = await invoke(argv, noCluster);
    expect(r.code).toBe(1);
    expect(r.err.startsWith(message)).toBe(true);
    expect(r.out).toBe('');
  });

  it('rejects unknown commands and options through commander', async () => {
    expect((await invoke(['evacuate', 'node-a'], noCluster)).err).toContain(
      "error: unknown command 'evacuate'",
    );
    const r = await invoke(['migrate', 'vm01', '--downtime', '5'], noCluster);
    expect(r.code).toBe(1);
    expect(r.err).toContain("error: unknown option '--downtime'");
  });
});

describe('errorMessage', () => {
  it("prints the apiserver's rejection verbatim with its reason, as kubectl does", () => {
    const rejection = new KubeApiError(
      422,
      'Invalid',
      'Migration.tern.dev "x" is invalid: spec.vmName: Invalid',
    );
    expect(errorMessage(rejection)).toBe(
      'Error from server (Invalid): Migration.tern.dev "x" is invalid: spec.vmName: Invalid',
    );
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect(errorMessage(refused)).toBe(
      'error: Unable to connect to the server: connect ECONNREFUSED 127.0.0.1:6443',
    );
  });
});

/** A client that serves one VM and replays Migration snapshots to successive reads. */
function scriptedCluster(statuses: (MigrationStatus | 'deleted')[]): {
  connect: Connect;
  created: Migration[];
} {
  const created: Migration[] = [];
  const vm: VirtualMachine = {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm01', namespace: 'default' },
    spec: { running: true, cpu: { cores: 1 }, memory: '256Mi', boot: { disk: 'root' } },
  };
  let reads = 0;
  const unexpected = () => Promise.reject(new Error('not used by migrate'));
  const client: KubeClient = {
    async get<T extends KubeObject>(type: ResourceType, name: string): Promise<T> {
      if (type.kind === 'VirtualMachine') {
        if (name !== 'vm01')
          throw new NotFoundError(404, 'NotFound', `virtualmachines.tern.dev "${name}" not found`);
        return vm as unknown as T;
      }
      const next = statuses[Math.min(reads++, statuses.length - 1)];
      if (next === 'deleted') throw new NotFoundError(404, 'NotFound', 'gone');
      return { ...created[0], status: next } as unknown as T;
    },
    async create<T extends KubeObject>(_type: ResourceType, object: T): Promise<T> {
      const migration = { ...(object as unknown as Migration) };
      migration.metadata = { ...migration.metadata, name: 'vm01-abcde' };
      created.push(migration);
      return migration as unknown as T;
    },
    list: unexpected,
    watch: () => {
      throw new Error('not used by migrate');
    },
    replace: unexpected,
    replaceStatus: unexpected,
    patch: unexpected,
    delete: unexpected,
  };
  return { connect: async () => ({ client, namespace: 'default', close: () => {} }), created };
}

describe('migrate', () => {
  it('creates the Migration from the flags and returns without --wait', async () => {
    const cluster = scriptedCluster([]);
    const r = await invoke(
      ['migrate', 'vm01', '--to', 'node-b', '--bandwidth', '1Gi', '--max-downtime', '1.5s'],
      cluster.connect,
    );
    expect(r).toEqual({
      code: 0,
      out: 'migration.tern.dev/vm01-abcde created: moving vm01 to node-b\n',
      err: '',
    });
    expect(cluster.created).toHaveLength(1);
    expect(cluster.created[0]?.metadata).toEqual({
      name: 'vm01-abcde',
      generateName: 'vm01-',
      namespace: 'default',
    });
    expect(cluster.created[0]?.spec).toEqual({
      vmName: 'vm01',
      targetNode: 'node-b',
      overrides: { bandwidth: '1Gi', maxDowntimeMs: 1500 },
    });
  });

  it('surfaces a missing VM as the apiserver reports it and creates nothing', async () => {
    const cluster = scriptedCluster([]);
    const r = await invoke(['migrate', 'vm02'], cluster.connect);
    expect(r.code).toBe(1);
    expect(r.err).toBe('Error from server (NotFound): virtualmachines.tern.dev "vm02" not found\n');
    expect(cluster.created).toHaveLength(0);
  });

  const t = (ms: number) => new Date(Date.UTC(2026, 10, 29, 10, 0, 0, ms)).toISOString();

  it('--wait follows the phases and ends with "Guest migrated successfully."', async () => {
    const cluster = scriptedCluster([
      { phase: 'Scheduling', phaseTimings: [{ phase: 'Scheduling', startedAt: t(0) }] },
      {
        phase: 'Succeeded',
        sourceNode: 'node-a',
        targetNode: 'node-b',
        phaseTimings: [
          { phase: 'Scheduling', startedAt: t(0), durationMs: 20 },
          { phase: 'Copying', startedAt: t(20), durationMs: 900 },
          { phase: 'Succeeded', startedAt: t(960) },
        ],
        downtime: { qemuMs: 40 },
      },
    ]);
    const r = await invoke(['migrate', 'vm01', '--wait'], cluster.connect);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      'migration.tern.dev/vm01-abcde created: moving vm01',
      'Pending…',
      'Scheduling…',
      'Scheduling phase completed in 20 ms.',
      'Copying phase completed in 900 ms.',
      'Guest migrated successfully.',
      '  vm01: node-a → node-b (migration default/vm01-abcde)',
      '  Downtime: 40 ms (QEMU)',
      '  Total time: 960 ms',
      '',
    ]);
  });

  it('--wait exits non-zero with the failure reason', async () => {
    const cluster = scriptedCluster([
      {
        phase: 'Failed',
        sourceNode: 'node-a',
        failureReason: 'TargetNotReady',
        message: 'node-b is not Ready',
      },
    ]);
    const r = await invoke(['migrate', 'vm01', '--to', 'node-b', '--wait'], cluster.connect);
    expect(r.code).toBe(1);
    expect(r.out).toContain('Migration failed (TargetNotReady): node-b is not Ready\n');
  });

  it('--wait exits non-zero when the Migration is deleted under it', async () => {
    const cluster = scriptedCluster([{ phase: 'Copying' }, 'deleted']);
    const r = await invoke(['migrate', 'vm01', '--wait'], cluster.connect);
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: migration default/vm01-abcde was deleted before it finished (cancelled)\n');
  });
});
