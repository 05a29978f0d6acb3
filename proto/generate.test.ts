import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGeneratedUpToDate, diffTrees, findProtoFiles } from './generate.js';

describe('proto generation', () => {
  it('proto/generated matches what the generator produces from the .proto files', () => {
    expect(checkGeneratedUpToDate()).toEqual([]);
  });

  it('generates every .proto file under proto/tern, including ones in new directories', () => {
    const root = mkdtempSync(join(tmpdir(), 'tern-protos-'));
    try {
      mkdirSync(join(root, 'tern', 'node', 'v1alpha1'), { recursive: true });
      mkdirSync(join(root, 'tern', 'other', 'v1'), { recursive: true });
      writeFileSync(join(root, 'tern', 'node', 'v1alpha1', 'control.proto'), '');
      writeFileSync(join(root, 'tern', 'other', 'v1', 'new.proto'), '');
      writeFileSync(join(root, 'tern', 'node', 'v1alpha1', 'README.md'), '');
      expect(findProtoFiles(root)).toEqual(['tern/node/v1alpha1/control.proto', 'tern/other/v1/new.proto']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    expect(findProtoFiles()).toEqual([
      'tern/console/v1alpha1/console.proto',
      'tern/node/v1alpha1/control.proto',
      'tern/node/v1alpha1/migration.proto',
    ]);
  });

  it('reports stale, missing and extra files', () => {
    const root = mkdtempSync(join(tmpdir(), 'tern-diff-'));
    try {
      const expected = join(root, 'expected');
      const actual = join(root, 'actual');
      mkdirSync(join(expected, 'sub'), { recursive: true });
      mkdirSync(actual);
      writeFileSync(join(expected, 'same.ts'), 'a');
      writeFileSync(join(actual, 'same.ts'), 'a');
      writeFileSync(join(expected, 'changed.ts'), 'new');
      writeFileSync(join(actual, 'changed.ts'), 'old');
      writeFileSync(join(expected, 'sub', 'new.ts'), 'x');
      writeFileSync(join(actual, 'gone.ts'), 'y');
      expect(diffTrees(expected, actual)).toEqual([
        'stale: changed.ts',
        'missing: sub/new.ts',
        'extra: gone.ts',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
