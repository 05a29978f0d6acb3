import { parse } from 'yaml';
import { API_GROUP, KIND_DEFINITIONS, crdName } from './index.js';
import type { TernKind } from './index.js';
import { findDrift, generatedFiles } from './generate.js';
import { structuralViolations } from './openapi.js';
import type { JsonSchema } from './openapi.js';
import {
  CHART_DIR,
  OUTPUT_DIRS,
  PLAIN_DIR,
  customResourceDefinition,
  objectSchema,
  renderAll,
} from './render.js';

type Crd = {
  metadata: { name: string };
  spec: {
    scope: string;
    names: { kind: string; shortNames: string[]; categories: string[] };
    versions: { name: string; subresources: unknown; additionalPrinterColumns: { name: string }[] }[];
  };
};

const crds = new Map(
  KIND_DEFINITIONS.map((def) => [def.kind, customResourceDefinition(def) as unknown as Crd]),
);

describe('generated CRD files', () => {
  it('are up to date with crds/src (run `npm run generate` if this fails)', async () => {
    expect(await findDrift()).toEqual({ stale: [], missing: [], extra: [] });
  });

  it('drift detection names stale, missing and left-over files', async () => {
    const files = generatedFiles();
    const [first, second] = [...files.keys()] as [string, string];
    files.set(first, `${files.get(first)}# changed\n`);
    files.delete(second);
    files.set('crds/generated/tern.dev_new.yaml', 'x');
    files.delete('docs/reference/migration.md');
    expect(await findDrift(files)).toEqual({
      stale: [first],
      missing: ['crds/generated/tern.dev_new.yaml'],
      extra: [second, 'docs/reference/migration.md'],
    });
  });

  it("go to every output directory, the chart's copy kept by helm uninstall and otherwise the same", () => {
    const files = renderAll();
    expect(files.size).toBe(KIND_DEFINITIONS.length * OUTPUT_DIRS.length);
    for (const def of KIND_DEFINITIONS) {
      const [plain, chart] = [PLAIN_DIR, CHART_DIR].map(
        (dir) =>
          parse(files.get(`${dir}/${API_GROUP}_${def.plural}.yaml`)!) as {
            metadata: { annotations?: Record<string, string> };
          },
      );
      expect(chart!.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      expect(plain!.metadata.annotations).toBeUndefined();
      delete chart!.metadata.annotations;
      expect(chart).toEqual(plain);
    }
  });
});

describe('CRDs', () => {
  it.each(KIND_DEFINITIONS.map((d) => [d.kind, d] as const))('%s has a structural schema', (_kind, def) => {
    expect(structuralViolations(objectSchema(def))).toEqual([]);
  });

  it.each([...crds.entries()])('%s has a status subresource and the tern category', (kind, crd) => {
    expect(crd.metadata.name).toBe(crdName(kind as TernKind));
    expect(crd.spec.versions).toHaveLength(1);
    expect(crd.spec.versions[0]?.subresources).toEqual({ status: {} });
    expect(crd.spec.names.categories).toEqual(['tern']);
  });

  it('scopes VirtualMachine and Migration to namespaces and the others to the cluster', () => {
    const scopes = Object.fromEntries([...crds].map(([kind, crd]) => [kind, crd.spec.scope]));
    expect(scopes).toEqual({
      VirtualMachine: 'Namespaced',
      Migration: 'Namespaced',
      MigrationPolicy: 'Cluster',
      HypervisorNode: 'Cluster',
    });
  });

  it('use no short name that KubeVirt uses', () => {
    const kubevirt = [
      'vm',
      'vms',
      'vmi',
      'vmis',
      'vmim',
      'vmims',
      'vmpool',
      'vmpools',
      'vmsnapshot',
      'vmexport',
    ];
    const ours = [...crds.values()].flatMap((crd) => crd.spec.names.shortNames);
    expect(ours.filter((n) => kubevirt.includes(n))).toEqual([]);
    expect(new Set(ours).size).toBe(ours.length);
  });

  it('print the columns kubectl get shows', () => {
    const columns = (kind: string) =>
      crds.get(kind)?.spec.versions[0]?.additionalPrinterColumns.map((c) => c.name) ?? [];
    // Exact names and order: the order is what `kubectl get` prints, and a new column is a deliberate change.
    expect(columns('VirtualMachine')).toEqual(['Phase', 'Node', 'CPUs', 'Memory', 'Age', 'Address', 'Epoch']);
    expect(columns('Migration')).toEqual([
      'VM',
      'Phase',
      'Source',
      'Target',
      'Progress',
      'Downtime-ms',
      'Age',
      'Quiesce-ms',
      'Reason',
    ]);
    expect(columns('HypervisorNode')).toEqual([
      'Ready',
      'Accelerator',
      'VMs',
      'Allocatable-Memory',
      'Unschedulable',
      'Age',
      'Endpoint',
      'QEMU',
    ]);
    expect(columns('MigrationPolicy')).toEqual([
      'Priority',
      'Bandwidth',
      'Max-Downtime-ms',
      'Post-Copy',
      'Age',
    ]);
  });

  it('make the Migration spec immutable with CEL', () => {
    const spec = (objectSchema(KIND_DEFINITIONS[1]!).properties as Record<string, JsonSchema>).spec;
    expect(spec?.['x-kubernetes-validations']).toContainEqual(
      expect.objectContaining({ rule: 'self == oldSelf' }),
    );
  });
});
