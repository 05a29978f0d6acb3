// Writes the CRD manifests generated from crds/src into crds/generated/ and helm/tern/files/crds/, and the API
// reference pages into docs/reference/.
// `--check` writes nothing: it lists the files that are stale, missing or left over, and exits 1 if any.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_DIR, renderReference } from './reference.js';
import { OUTPUT_DIRS, renderAll } from './render.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface Drift {
  stale: string[];
  missing: string[];
  extra: string[];
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function filesIn(dir: string, extension: string): Promise<string[]> {
  try {
    return (await readdir(join(REPO_ROOT, dir)))
      .filter((f) => f.endsWith(extension))
      .map((f) => `${dir}/${f}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The CRDs and the reference pages, keyed by path relative to the repository root. */
export function generatedFiles(): Map<string, string> {
  return new Map([...renderAll(), ...renderReference()]);
}

/** How the files on disk differ from what the schemas generate (paths relative to the repository root). */
export async function findDrift(files = generatedFiles()): Promise<Drift> {
  const drift: Drift = { stale: [], missing: [], extra: [] };
  for (const [path, text] of files) {
    const onDisk = await readOrUndefined(join(REPO_ROOT, path));
    if (onDisk === undefined) drift.missing.push(path);
    else if (onDisk !== text) drift.stale.push(path);
  }
  const owned = [...OUTPUT_DIRS.map((dir) => [dir, '.yaml'] as const), [REFERENCE_DIR, '.md'] as const];
  for (const [dir, extension] of owned) {
    for (const path of await filesIn(dir, extension)) if (!files.has(path)) drift.extra.push(path);
  }
  return drift;
}

async function main(check: boolean): Promise<number> {
  const files = generatedFiles();
  const drift = await findDrift(files);
  const changed = [...drift.stale, ...drift.missing, ...drift.extra];
  if (check) {
    for (const p of drift.stale) console.error(`stale: ${p}`);
    for (const p of drift.missing) console.error(`missing: ${p}`);
    for (const p of drift.extra) console.error(`not generated (remove it): ${p}`);
    if (changed.length > 0)
      console.error('run `npm run generate` to update the generated CRDs and reference pages');
    return changed.length > 0 ? 1 : 0;
  }
  for (const path of [...drift.stale, ...drift.missing]) {
    await mkdir(dirname(join(REPO_ROOT, path)), { recursive: true });
    await writeFile(join(REPO_ROOT, path), files.get(path) as string);
    console.log(`wrote ${path}`);
  }
  for (const path of drift.extra) {
    await rm(join(REPO_ROOT, path));
    console.log(`removed ${path}`);
  }
  if (changed.length === 0) console.log('generated CRDs and reference pages are up to date');
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const unknown = process.argv.slice(2).filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: tsx crds/generate.ts [--check]  (unknown: ${unknown.join(' ')})`);
    process.exit(2);
  }
  process.exitCode = await main(process.argv.includes('--check'));
}
