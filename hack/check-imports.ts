// `npm run check:imports`: the layout's import rules (test/architecture/imports.ts) on the working tree; prints
// each violation and exits non-zero when there is one.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkImports, CYCLE_RULE, readSources } from '../test/architecture/imports.js';

const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const paths = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
  cwd: root,
  encoding: 'utf8',
})
  .split('\n')
  .filter((path) => path !== '' && existsSync(join(root, path)));
const violations = checkImports(readSources(root, paths));
for (const v of violations) {
  const what = v.rule === CYCLE_RULE ? `${v.from}, ${v.to} import each other` : `${v.from} imports ${v.to}`;
  console.log(`import rule "${v.rule}": ${what}`);
}
console.log(violations.length === 0 ? 'import rules: ok' : `import rules: ${violations.length} violations`);
process.exitCode = violations.length === 0 ? 0 : 1;
