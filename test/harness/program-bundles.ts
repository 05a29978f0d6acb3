// The daemon and the operator as test processes run them: one esbuild bundle each under plain node, as the image
// runs them (hack/build-dist.ts, whose options these follow), instead of `node --import tsx` on the TypeScript
// source, which compiles and loads a few hundred modules at every start (a daemon was ready after ~16 s from source
// against ~3 s from a bundle on a loaded 2-core host; most integration files start three or more of them).
//
// The bundles are cached in $TERN_CACHE/test-bundles, one directory per checkout, and rebuilt whenever any file
// they were built from (sources, .proto files, node_modules) changed: each build records the sha256 of its inputs
// (esbuild's metafile), and the first start in a process compares them. TERN_TEST_FROM_SOURCE=1 runs the sources
// through tsx instead (stack traces with source lines).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Program = 'hypervisor-node' | 'operator';

/** Program name -> entry point, as in hack/build-dist.ts. */
const PROGRAMS: Record<Program, string> = {
  operator: 'operator/src/main.ts',
  'hypervisor-node': 'hypervisor-node/src/main.ts',
};

// CommonJS dependencies call require() for Node's built-ins; in an ES module bundle that needs a real require.
const REQUIRE_SHIM =
  "import { createRequire as __ternCreateRequire } from 'node:module';\nconst require = __ternCreateRequire(import.meta.url);";

/** <dir>/inputs.json: repository-relative path -> sha256 of every file the bundles were built from. */
const INPUTS = 'inputs.json';

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** One directory per checkout: two worktrees sharing a cache each run their own sources. */
function cacheDir(): string {
  const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 12);
  return join(process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern'), 'test-bundles', checkout);
}

/** True when every input recorded in `dir` still has the same content (and the bundles are there). */
function upToDate(dir: string): boolean {
  try {
    const inputs = JSON.parse(readFileSync(join(dir, INPUTS), 'utf8')) as Record<string, string>;
    if (Object.keys(PROGRAMS).some((name) => !existsSync(join(dir, `${name}.mjs`)))) return false;
    return Object.entries(inputs).every(
      ([file, hash]) => existsSync(join(ROOT, file)) && sha256(join(ROOT, file)) === hash,
    );
  } catch {
    return false;
  }
}

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return entry.endsWith('.proto') ? [path] : [];
  });
}

/** Builds both bundles into a fresh directory beside `dir`, then moves it into place (a concurrent run keeps its own). */
async function buildInto(dir: string): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const staging = join(parent, `building-${process.pid}-${Date.now()}`);
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: Object.entries(PROGRAMS).map(([name, entry]) => ({ in: entry, out: name })),
      outdir: staging,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20.19',
      splitting: false,
      preserveSymlinks: true,
      banner: { js: REQUIRE_SHIM },
      external: ['bufferutil', 'utf-8-validate'],
      logLevel: 'warning',
      metafile: true,
    });
    // proto/load.ts reads the .proto files beside the module that loads them: the bundle.
    const protoRoot = join(ROOT, 'proto');
    const protos = protoFiles(join(protoRoot, 'tern'));
    for (const file of protos) {
      const target = join(staging, relative(protoRoot, file));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(file, target);
    }
    const inputs = [...Object.keys(result.metafile.inputs), ...protos.map((file) => relative(ROOT, file))];
    const hashes = Object.fromEntries(inputs.sort().map((file) => [file, sha256(join(ROOT, file))]));
    writeFileSync(join(staging, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(staging, INPUTS), JSON.stringify(hashes));
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

let current: Promise<string> | undefined;

/** The directory of up-to-date bundles, built first when needed (once per process). */
function bundles(): Promise<string> {
  current ??= (async () => {
    const dir = join(cacheDir(), 'current');
    if (!upToDate(dir)) await buildInto(dir);
    return dir;
  })();
  // A failed build is tried again by the next start.
  current.catch(() => (current = undefined));
  return current;
}

/**
 * The entry point a test starts `program` from: its up-to-date bundle, or `source` (its main.ts) under
 * TERN_TEST_FROM_SOURCE=1.
 */
export async function programMain(program: Program, source: string): Promise<string> {
  if (process.env.TERN_TEST_FROM_SOURCE === '1') return source;
  return join(await bundles(), `${program}.mjs`);
}
