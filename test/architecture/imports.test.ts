import { checkImports, folderOf, importsOf, type SourceFile } from './imports.js';

const file = (path: string, ...imports: string[]): SourceFile => ({
  path,
  text: imports.map((specifier, i) => `import { x${i} } from '${specifier}';`).join('\n'),
});

const rulesOf = (files: SourceFile[]) => checkImports(files).map((v) => `${v.rule}: ${v.from} → ${v.to}`);

describe('the layout import rules', () => {
  test('a tree that follows them has no violations', () => {
    expect(
      rulesOf([
        file('operator/src/main.ts', './migration/reconciler.js', '../../kube/index.js'),
        file('operator/src/migration/reconciler.ts', '../../../crds/index.js', '../../../proto/index.js'),
        file('operator/src/migration/reconciler.test.ts', './state.js'),
        file('test/integration/operator/migration.int.test.ts', '../../harness/control-plane.js'),
        file('cli/kube.ts', '../kube/rest-client.js', '../crds/index.js'),
        file('crds/crds.int.test.ts', '../test/harness/control-plane.js'),
        file('kube/client.ts', '../crds/index.js'),
        file('crds/index.ts', './src/names.js'),
        file('crds/src/names.ts'),
        file(
          'test/harness/operator-process.ts',
          '../../operator/src/config.js',
          '../../hypervisor-node/src/config.js',
        ),
        file('hack/cluster.ts', '../test/local-cluster/local-cluster.js'),
      ]),
    ).toEqual([]);
  });

  test.each([
    [
      'operator/src/migration/run.ts',
      '../../../hypervisor-node/src/model/guest.js',
      'the programs never import each other',
    ],
    [
      'hypervisor-node/src/control/x.test.ts',
      '../../../operator/src/runtime/queue.js',
      'the programs never import each other',
    ],
    ['test/e2e/a.e2e.test.ts', '../../hack/cluster.js', 'nothing imports hack/'],
    ['operator/src/config.ts', '../../test/harness/free-port.js', 'production code never imports test/'],
    [
      'operator/src/queue.test.ts',
      '../../test/harness/free-port.js',
      "nothing under a program's src/ imports test/",
    ],
    ['cli/commands.ts', '../operator/src/config.js', 'the programs never import each other'],
    ['operator/src/main.ts', '../../cli/format.js', 'the programs never import each other'],
    ['crds/src/resources.ts', '../../kube/resources.js', 'crds/ imports only'],
    ['kube/client.ts', '../operator/src/config.js', 'kube/ imports only'],
    ['guest/host/agent-client.ts', '../../crds/index.js', 'guest/ imports only'],
  ])('%s importing %s breaks "%s"', (path, specifier, rule) => {
    expect(rulesOf([file(path, specifier)]).join('\n')).toContain(rule);
  });

  test('a cycle between two folders is found, and so is a subfolder importing its composition root', () => {
    const cycle = rulesOf([
      file('hypervisor-node/src/migration/service.ts', '../control/service.js'),
      file('hypervisor-node/src/control/service.ts', '../migration/wire.js'),
    ]);
    expect(cycle).toEqual([
      'no import cycles between folders: hypervisor-node/src/control → hypervisor-node/src/migration',
    ]);
    const root = rulesOf([
      file('hypervisor-node/src/daemon.ts', './control/service.js'),
      file('hypervisor-node/src/control/service.ts', '../metrics.js'),
    ]);
    expect(root).toEqual([
      'no import cycles between folders: hypervisor-node/src → hypervisor-node/src/control',
    ]);
  });

  test('nested folders count on their own', () => {
    expect(
      rulesOf([
        file('hypervisor-node/src/migration/service.ts', './engine/source.js'),
        file('hypervisor-node/src/migration/engine/source.ts', '../wire.js'),
      ]),
    ).toEqual([
      'no import cycles between folders: hypervisor-node/src/migration → hypervisor-node/src/migration/engine',
    ]);
  });

  test('tests may close a loop that production code may not', () => {
    expect(
      rulesOf([
        file('operator/src/migration/state.ts', '../placement/placement.js'),
        file('operator/src/placement/placement.test.ts', '../migration/state.js'),
      ]),
    ).toEqual([]);
  });

  test('reads static, re-exported, type-only and dynamic imports, resolving folders to their index', () => {
    const source: SourceFile = {
      path: 'cli/kube.ts',
      text: [
        "import type { A } from '../crds/index.js';",
        "export * from './format.js';",
        "import {\n  b,\n  c,\n} from '../kube/rest-client.js';",
        "const { d } = await import('../kube/errors.js');",
        "import '../cmdline/index.js';",
        'const { f } = await import(`../kube/objects.js`);',
        "const g = require('../kube/types.js');",
        "// import { h } from '../operator/src/main.js';",
        "/* export { i } from '../hack/cluster.js'; */",
        "import { e } from '../proto';",
        "import pino from 'pino';",
      ].join('\n'),
    };
    expect(importsOf(source)).toEqual([
      'crds/index.ts',
      'cli/format.ts',
      'kube/rest-client.ts',
      'kube/errors.ts',
      'cmdline/index.ts',
      'kube/objects.ts',
      'kube/types.ts',
      'proto/index.ts',
    ]);
    expect(folderOf('operator/src/main.ts')).toBe('operator/src');
    expect(folderOf('operator/src/migration/run.ts')).toBe('operator/src/migration');
    expect(folderOf('hypervisor-node/src/migration/engine/source.ts')).toBe(
      'hypervisor-node/src/migration/engine',
    );
    expect(folderOf('crds/src/names.ts')).toBe('crds');
    expect(folderOf('test/harness/control-plane.ts')).toBe('test/harness');
  });
});
