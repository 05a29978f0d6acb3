// Writes the chart's generated files: helm/tern/values.schema.json (from helm/values-schema.ts) and the Grafana
// dashboard helm/tern/dashboards/tern.json (from helm/dashboard.ts). `--check` writes nothing: it lists the files
// that are stale or missing and exits 1 if any (hack/test.sh runs it).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dashboard } from './dashboard.js';
import { valuesSchema } from './values-schema.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every generated file, keyed by its path relative to the repository root. */
export function renderChartFiles(): Map<string, string> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return new Map([
    ['helm/tern/values.schema.json', json(valuesSchema)],
    ['helm/tern/dashboards/tern.json', json(dashboard())],
  ]);
}

async function onDisk(path: string): Promise<string | undefined> {
  try {
    return await readFile(join(REPO_ROOT, path), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function main(check: boolean): Promise<number> {
  let changed = 0;
  for (const [path, text] of renderChartFiles()) {
    const current = await onDisk(path);
    if (current === text) continue;
    changed++;
    if (check) {
      console.error(`${current === undefined ? 'missing' : 'stale'}: ${path}`);
    } else {
      await mkdir(dirname(join(REPO_ROOT, path)), { recursive: true });
      await writeFile(join(REPO_ROOT, path), text);
      console.log(`wrote ${path}`);
    }
  }
  if (check && changed > 0)
    console.error('run `npx tsx helm/generate.ts` to update the generated chart files');
  if (!check && changed === 0) console.log('generated chart files are up to date');
  return check && changed > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const unknown = process.argv.slice(2).filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: tsx helm/generate.ts [--check]  (unknown: ${unknown.join(' ')})`);
    process.exit(2);
  }
  process.exitCode = await main(process.argv.includes('--check'));
}
