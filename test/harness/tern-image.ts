// `npm run image` (hack/image/build.sh) for tests: builds the Tern image into a cache dir (warm when the cache
// already holds the Debian layer) and returns the archive, its reference and digest. Debian replaces versions in
// its archive (point releases, security updates): when the committed lock has gone stale (exit status 3,
// `npm run image` refuses), the build is still made, with a lock refreshed into a temporary file, and a warning
// says that hack/image/packages.lock needs `npm run image:lock`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const IMAGE_BUILD_TIMEOUT_MS = 20 * 60_000;

export interface TernImage {
  /** The OCI archive `ctr images import` loads. */
  archive: string;
  /** The full reference the archive names (docker.io/library/tern:<version> by default). */
  reference: string;
  /** The manifest digest. */
  digest: string;
  /** What the build printed. */
  output: string;
  buildMs: number;
}

/** The cache the image tests share: $TERN_CACHE, else ~/.cache/tern. */
export const imageCache = (): string => process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern');

/** Set once the committed lock was found stale: the later builds of this process use the refreshed copy. */
let refreshedLock: string | undefined;

async function runBuild(cache: string): Promise<string> {
  const { stdout } = await run('bash', [join(REPO, 'hack/image/build.sh')], {
    cwd: REPO,
    timeout: IMAGE_BUILD_TIMEOUT_MS,
    // The default name and tag (the chart's appVersion).
    env: {
      ...process.env,
      TERN_CACHE: cache,
      TERN_IMAGE_TAG: '',
      TERN_IMAGE_REPOSITORY: '',
      ...(refreshedLock === undefined ? {} : { TERN_IMAGE_LOCK: refreshedLock }),
    },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** Runs `npm run image` with the default name and tag into `cache`. */
export async function buildTernImage(cache = imageCache()): Promise<TernImage> {
  const started = Date.now();
  let output: string;
  try {
    output = await runBuild(cache);
  } catch (err) {
    const failure = err as { code?: number; stderr?: string };
    if (failure.code !== 3 || refreshedLock !== undefined) throw err;
    console.warn(
      `hack/image/packages.lock is stale; building with a refreshed lock:\n${failure.stderr ?? ''}`,
    );
    const lock = join(await mkdtemp(join(tmpdir(), 'timage-lock-')), 'packages.lock');
    await run('cp', [join(REPO, 'hack/image/packages.lock'), lock]);
    await run('bash', [join(REPO, 'hack/image/lock.sh')], {
      cwd: REPO,
      timeout: IMAGE_BUILD_TIMEOUT_MS,
      env: { ...process.env, TERN_IMAGE_LOCK: lock },
    });
    refreshedLock = lock;
    output = await runBuild(cache);
  }
  const printed = /^image: (docker\.io\/library\/tern:[^@\s]+)@(sha256:[0-9a-f]{64})$/m.exec(output);
  if (printed === null) throw new Error(`npm run image printed no reference and digest: ${output}`);
  const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string })
    .version;
  return {
    archive: join(cache, 'image', `tern-${version}.oci.tar`),
    reference: printed[1]!,
    digest: printed[2]!,
    output: output.trim(),
    buildMs: Date.now() - started,
  };
}
