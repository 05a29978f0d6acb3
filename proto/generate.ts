// Generates TypeScript types for the .proto files into proto/generated/ with proto-loader-gen-types (pure JS, no
// protoc). Usage: `npx tsx proto/generate.ts` writes them; `npx tsx proto/generate.ts --check` exits 1 when the
// committed files differ from what the generator produces now.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protoGenTypesFlags } from './options.js';

const protoDir = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(protoDir, '..');
export const generatedDir = join(protoDir, 'generated');

/**
 * Every .proto file under proto/tern, relative to the proto/ directory (the include root), sorted: a new file is
 * generated, and checked by `--check`, without being listed anywhere.
 */
export function findProtoFiles(dir = protoDir): string[] {
  return readdirSync(join(dir, 'tern'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.proto'))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/** Runs the generator into outDir. The working directory is the repo root: it appears in the output's comments. */
export function generateProtoTypes(outDir: string): void {
  const bin = createRequire(import.meta.url).resolve(
    '@grpc/proto-loader/build/bin/proto-loader-gen-types.js',
  );
  execFileSync(
    process.execPath,
    [
      bin,
      ...protoGenTypesFlags,
      `--outDir=${outDir}`,
      `--includeDirs=${relative(repoRoot, protoDir)}`,
      '--',
      ...findProtoFiles(),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Differences between the expected tree and the actual one, as human-readable lines; empty when identical. */
export function diffTrees(expectedDir: string, actualDir: string): string[] {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const differences: string[] = [];
  for (const file of expected) {
    if (!actual.has(file)) differences.push(`missing: ${file}`);
    else if (!readFileSync(join(expectedDir, file)).equals(readFileSync(join(actualDir, file))))
      differences.push(`stale: ${file}`);
    actual.delete(file);
  }
  for (const file of actual) differences.push(`extra: ${file}`);
  return differences;
}

/** Generates into a temporary directory and compares it with proto/generated/. */
export function checkGeneratedUpToDate(): string[] {
  const scratch = mkdtempSync(join(tmpdir(), 'tern-proto-'));
  try {
    generateProtoTypes(scratch);
    return diffTrees(scratch, generatedDir);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function main(): void {
  if (process.argv.includes('--check')) {
    const differences = checkGeneratedUpToDate();
    if (differences.length > 0) {
      console.error(
        `proto/generated is out of date; run npx tsx proto/generate.ts\n  ${differences.join('\n  ')}`,
      );
      process.exit(1);
    }
    console.log('proto/generated is up to date');
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'tern-proto-'));
  try {
    generateProtoTypes(scratch);
    rmSync(generatedDir, { recursive: true, force: true });
    cpSync(scratch, generatedDir, { recursive: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`wrote ${generatedDir}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
