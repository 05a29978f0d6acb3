// `helm upgrade` from a chart that shipped its CRDs in crds/ (0.1.0) to this one, whose CRDs are templates
// (docs/install.md "Upgrade"), on a real kube-apiserver: Helm created the old CRDs without marking them as the
// release's, so the upgrade refuses to take them over; after the documented labels and annotations it applies the
// new CRDs, the VirtualMachines stay, and `helm uninstall` keeps CRDs and VMs. The old chart is this one laid out as
// 0.1.0 was: the CRDs in crds/, no templates/crds.yaml, and its VirtualMachine CRD without a printer column the new
// one has, so that the upgrade's CRD change shows.
import { cp as copy, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { helm, kubectl } from './chart-tools.js';

const CHART = fileURLToPath(new URL('../../helm/tern', import.meta.url));
const NS = 'tern-system';
const CRDS = ['virtualmachines', 'migrations', 'migrationpolicies', 'hypervisornodes'];
/** The printer column the old chart's VirtualMachine CRD lacks. */
const NEW_COLUMN = 'Memory';

let cp: ControlPlane;
let scratch: string;

interface Crd {
  metadata: { annotations?: Record<string, string> };
  spec: { versions: { additionalPrinterColumns?: { name: string }[] }[] };
}

/** This chart as 0.1.0 laid it out: CRDs in crds/ (installed once by Helm, never upgraded), no crds template. */
async function oldLayoutChart(dir: string): Promise<string> {
  const chart = join(dir, 'tern-0.1.0');
  await copy(CHART, chart, { recursive: true });
  await rm(join(chart, 'templates', 'crds.yaml'));
  await rename(join(chart, 'files', 'crds'), join(chart, 'crds'));
  for (const file of await readdir(join(chart, 'crds'))) {
    const path = join(chart, 'crds', file);
    const crd = parse(await readFile(path, 'utf8')) as Crd;
    delete crd.metadata.annotations; // 0.1.0's CRDs had no resource policy
    for (const version of crd.spec.versions)
      version.additionalPrinterColumns = version.additionalPrinterColumns?.filter(
        (c) => c.name !== NEW_COLUMN,
      );
    await writeFile(path, stringify(crd));
  }
  const chartYaml = join(chart, 'Chart.yaml');
  await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace(/^version: .*$/m, 'version: 0.1.0'));
  return chart;
}

const helmOn = (...args: string[]) => helm(...args, '--namespace', NS, '--kubeconfig', cp.kubeconfigPath);
const getCrd = async (plural: string) =>
  JSON.parse(await kubectl(cp, ['get', 'crd', `${plural}.tern.dev`, '-o', 'json'])) as Crd;
const columns = (crd: Crd) => crd.spec.versions[0]!.additionalPrinterColumns?.map((c) => c.name) ?? [];

beforeAll(async () => {
  cp = await startControlPlane({ name: 'crd-takeover' });
  scratch = await mkdtemp(join(tmpdir(), 'tern-crd-takeover-'));
  // What the chart's pods mount (nothing runs them here: no kubelet); install stops without them.
  await kubectl(cp, ['create', 'namespace', NS]);
  for (const secret of ['tern-operator-tls', 'tern-ca'])
    await kubectl(cp, ['-n', NS, 'create', 'secret', 'generic', secret, '--from-literal=tls.crt=unused']);
  await kubectl(cp, ['-n', NS, 'create', 'configmap', 'tern-ca', '--from-literal=ca.crt=unused']);
}, 120_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  await cp?.stop();
});

test('an install of the chart with CRDs in crds/ is upgraded after the documented takeover; CRDs and VMs stay', async () => {
  await helmOn('install', 'tern', await oldLayoutChart(scratch));
  expect(columns(await getCrd('virtualmachines'))).not.toContain(NEW_COLUMN);
  const vm = {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'kept', namespace: 'default' },
    spec: {
      running: true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { kernel: { path: '/var/lib/tern-images/shared/vmlinux' } },
    },
  };
  await kubectl(cp, ['apply', '-f', '-'], JSON.stringify(vm));

  // Helm did not create the CRDs as the release's objects: it refuses to adopt them, and changes nothing.
  await expect(helmOn('upgrade', 'tern', CHART)).rejects.toThrow(
    /CustomResourceDefinition "\w+\.tern\.dev" in namespace "" exists and cannot be imported into the current release: invalid ownership metadata/,
  );
  expect(columns(await getCrd('virtualmachines'))).not.toContain(NEW_COLUMN);

  // docs/install.md "Upgrade", "From a chart that shipped CRDs in crds/".
  for (const crd of CRDS) {
    await kubectl(cp, [
      'label',
      'crd',
      `${crd}.tern.dev`,
      'app.kubernetes.io/managed-by=Helm',
      '--overwrite',
    ]);
    await kubectl(cp, [
      ...['annotate', 'crd', `${crd}.tern.dev`, 'meta.helm.sh/release-name=tern'],
      ...['meta.helm.sh/release-namespace=tern-system', 'helm.sh/resource-policy=keep', '--overwrite'],
    ]);
  }
  await helmOn('upgrade', 'tern', CHART);
  const upgraded = await getCrd('virtualmachines');
  expect(columns(upgraded)).toContain(NEW_COLUMN);
  expect(upgraded.metadata.annotations).toMatchObject({ 'meta.helm.sh/release-name': 'tern' });
  // The release's CRDs carry the keep policy themselves, whatever the takeover annotated.
  const manifest = await helmOn('get', 'manifest', 'tern');
  for (const crd of CRDS)
    expect(manifest).toContain(
      `name: ${crd}.tern.dev\n  labels:\n    app.kubernetes.io/part-of: tern\n  annotations:\n    helm.sh/resource-policy: keep\n`,
    );
  expect(await kubectl(cp, ['get', 'virtualmachine', 'kept', '-o', 'name'])).toBe(
    'virtualmachine.tern.dev/kept\n',
  );

  // From now on the CRDs are the release's, and kept by helm uninstall with the VMs.
  await helmOn('uninstall', 'tern');
  for (const crd of CRDS) await getCrd(crd);
  expect(await kubectl(cp, ['get', 'virtualmachine', 'kept', '-o', 'name'])).toBe(
    'virtualmachine.tern.dev/kept\n',
  );
}, 120_000);
