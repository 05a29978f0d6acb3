import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGeneratedUpToDate, diffTrees } from './generate.js';

describe('proto generation', () => {
  it('proto/generated matches what the generator produces from the .proto files', () => {
    expect(checkGeneratedUpToDate()).toEqual([]);
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
