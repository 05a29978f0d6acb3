// `npm run build`: the production build. One esbuild bundle per program (operator, hypervisor-node daemon,
// kubectl-tern), each a single ES module with its npm dependencies inside, run by plain `node` (no tsx, no
// TypeScript, no node_modules at run time). The gRPC .proto files, which @grpc/proto-loader reads at run time next
// to the module that loads them (proto/load.ts), are copied beside the bundles.
//
//   npx tsx hack/build-dist.ts [--out DIR]     (default: dist/app)
//
// The output depends only on the sources and the locked dependencies (no timestamps, no absolute paths), so the
// image built from it is reproducible.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Program name -> entry point. The bundle is <out>/<name>.mjs. */
const PROGRAMS = {
  operator: 'operator/src/main.ts',
  'hypervisor-node': 'hypervisor-node/src/main.ts',
  'kubectl-tern': 'cli/kubectl-tern.ts',
} as const;

// CommonJS dependencies call require() for Node's built-ins; in an ES module bundle that needs a real require.
const REQUIRE_SHIM =
  "import { createRequire as __ternCreateRequire } from 'node:module';\nconst require = __ternCreateRequire(import.meta.url);";

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return entry.endsWith('.proto') ? [path] : [];
  });
}

/**
 * Rewrites a source map's sources from paths relative to the output directory (which hold the path of the output
 * on this machine) to paths relative to the repository, e.g. operator/src/main.ts: what a stack trace shows.
 */
function relativeSources(mapFile: string, out: string): void {
  const map = JSON.parse(readFileSync(mapFile, 'utf8')) as { sources: string[] };
  map.sources = map.sources.map((source) => relative(root, resolve(out, source)));
  writeFileSync(mapFile, JSON.stringify(map));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'dist/app') } } });
  const out = values.out!;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(PROGRAMS).map(([name, entry]) => ({ in: entry, out: name })),
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.19',
    // Shared modules stay in each bundle: three self-contained files, no chunk names to keep stable.
    splitting: false,
    sourcemap: 'linked',
    // node_modules may be a symlink (a git worktree sharing another checkout's): paths in the bundles' comments
    // and source maps stay inside this checkout, so the output does not depend on where the modules really are.
    preserveSymlinks: true,
    banner: { js: REQUIRE_SHIM },
    // Optional native speed-ups of the `ws` package (used by @kubernetes/client-node for exec/attach): absent, `ws`
    // falls back to JavaScript.
    external: ['bufferutil', 'utf-8-validate'],
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.map')))
    relativeSources(join(root, file), out);
  const protoRoot = join(root, 'proto');
  for (const file of protoFiles(join(protoRoot, 'tern'))) {
    const target = join(out, relative(protoRoot, file));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(file, target);
  }
  // The bundles are ES modules by their .mjs name; this marks the directory too, for anything added later.
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module', private: true }, null, 2)}\n`);
  const sizes = Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith('.mjs'))
    .map(([file, output]) => `${basename(file)} ${(output.bytes / 1024 / 1024).toFixed(1)} MiB`);
  console.log(`build: ${out}: ${sizes.join(', ')} (${Date.now() - started} ms)`);
}

await main();
