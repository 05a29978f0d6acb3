// The daemon and the operator as test processes run them: one esbuild bundle each under plain node, as the image
// runs them (hack/build-dist.ts, whose options these follow), instead of `node --import tsx` on the TypeScript
// source, which compiles and loads a few hundred modules at every start (a daemon start until ready took 5-6 s of CPU
// from source against about 1 s from a bundle; most integration files start three or more daemons and operators).
//
// The bundles are cached in $TERN_CACHE/test-bundles, one directory per checkout, and rebuilt whenever any file
// they were built from (sources, .proto files, node_modules) changed: each build records the sha256 of its inputs
// (esbuild's metafile), and the first start in a process compares them. TERN_TEST_FROM_SOURCE=1 runs the sources
// through tsx instead (stack traces with source lines).
import { build as esbuild } from 'esbuild';
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
  utimesSync,
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

/** <build>/inputs.json: repository-relative path -> sha256 of every file the bundles were built from. */
const INPUTS = 'inputs.json';
/** <cache>/current: the name of the latest build's directory. */
const CURRENT = 'current';

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** One cache per checkout: two worktrees sharing a TERN_CACHE each run their own sources. */
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

/** A build another process may still run from is kept this long after its last use once a newer one replaced it. */
const KEEP_REPLACED_MS = 24 * 3600_000;

/**
 * Builds both bundles into a directory named by the hash of their inputs, points `<cache>/current` at it (a
 * rename: a concurrent reader sees the old build or the new one), and removes builds replaced long ago. A build of
 * the same inputs by a concurrent run is the same directory; nothing that may be running is removed.
 */
async function build(cache: string): Promise<string> {
  mkdirSync(cache, { recursive: true });
  const staging = join(cache, `building-${process.pid}-${Date.now()}`);
  try {
    const result = await esbuild({
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
    // Besides what esbuild read: the .proto files, and what decides how it compiles (this file, tsconfig.json).
    const inputs = [
      ...Object.keys(result.metafile.inputs),
      ...protos.map((file) => relative(ROOT, file)),
      'test/harness/program-bundles.ts',
      'tsconfig.json',
    ];
    const hashes = JSON.stringify(
      Object.fromEntries(inputs.sort().map((file) => [file, sha256(join(ROOT, file))])),
    );
    writeFileSync(join(staging, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(staging, INPUTS), hashes);
    const name = createHash('sha256').update(hashes).digest('hex').slice(0, 16);
    const dir = join(cache, name);
    try {
      renameSync(staging, dir);
    } catch (error) {
      // The same build, installed by a concurrent run meanwhile (renames are atomic: it is complete).
      if (!existsSync(join(dir, INPUTS))) throw error;
    }
    const pointer = join(cache, `current-${process.pid}`);
    writeFileSync(pointer, name);
    renameSync(pointer, join(cache, CURRENT));
    for (const entry of readdirSync(cache)) {
      const path = join(cache, entry);
      if (entry !== name && entry !== CURRENT && Date.now() - statSync(path).mtimeMs > KEEP_REPLACED_MS)
        rmSync(path, { recursive: true, force: true });
    }
    return dir;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

let current: Promise<string> | undefined;

/** The directory of up-to-date bundles, built first when needed (once per process). */
function bundles(): Promise<string> {
  current ??= (async () => {
    const cache = cacheDir();
    const name = existsSync(join(cache, CURRENT)) ? readFileSync(join(cache, CURRENT), 'utf8').trim() : '';
    if (name === '' || !upToDate(join(cache, name))) return build(cache);
    // Its time is its last use: the pruning of replaced builds spares it for a day.
    const now = new Date();
    utimesSync(join(cache, name), now, now);
    return join(cache, name);
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
