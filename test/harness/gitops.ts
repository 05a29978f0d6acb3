// What GitOps tools make of Tern's objects (docs/gitops.md): the kstatus of an object as the real library computes
// it (sigs.k8s.io/cli-utils, the checker hack/build-k8s.sh builds), and its Argo CD health as the health.lua
// under argocd/ says in a real Lua 5.1 interpreter. The fixtures in test/fixtures/gitops/ are objects taken from
// real runs (test/integration/gitops/kstatus.int.test.ts writes them with TERN_UPDATE_FIXTURES=1).
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { kubeBinary } from './control-plane.js';

export interface KstatusResult {
  name: string;
  status: 'InProgress' | 'Current' | 'Failed' | 'Terminating' | 'NotFound' | 'Unknown';
  message: string;
}

export interface ArgoHealth {
  status: 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended' | 'Missing' | 'Unknown';
  message: string;
}

/** An object as GitOps tools read it: kind, metadata, spec and status. */
export interface ObjectJson {
  kind: string;
  metadata: { name?: string; [key: string]: unknown };
  [key: string]: unknown;
}

const FIXTURES = fileURLToPath(new URL('../fixtures/gitops/', import.meta.url));
const HEALTH_CHECKS = fileURLToPath(
  new URL('../../argocd/resource_customizations/tern.dev/', import.meta.url),
);

/** The fixture objects (by name) and what each must be (fixtures/gitops/expected.json). */
export interface FixtureExpectation {
  kstatus: KstatusResult['status'];
  argo: ArgoHealth['status'];
  /** A piece the kstatus message (and the Argo message) must contain. */
  says?: string;
}

export async function fixtureExpectations(): Promise<Record<string, FixtureExpectation>> {
  return JSON.parse(await readFile(`${FIXTURES}expected.json`, 'utf8')) as Record<string, FixtureExpectation>;
}

export async function readFixture(name: string): Promise<ObjectJson> {
  return JSON.parse(await readFile(`${FIXTURES}${name}.json`, 'utf8')) as ObjectJson;
}

/** Stores an object from a run as a fixture, without managedFields and kubectl's last-applied copy (bookkeeping). */
export async function writeFixture(name: string, object: ObjectJson): Promise<void> {
  const metadata = { ...object.metadata };
  delete metadata.managedFields;
  const annotations = { ...(metadata.annotations as Record<string, string> | undefined) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  else delete metadata.annotations;
  const path = `${FIXTURES}${name}.json`;
  // As the repository's prettier check wants it.
  const text = await format(JSON.stringify({ ...object, metadata }, null, 2), {
    ...(await resolveConfig(path)),
    filepath: path,
  });
  await writeFile(path, text);
}

function run(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${command} exited ${code}: ${stderr.trim()}`)),
    );
    child.stdin.end(input);
  });
}

/** kstatus of each object, in order. */
export async function kstatusOf(objects: readonly ObjectJson[]): Promise<KstatusResult[]> {
  const output = await run(kubeBinary('kstatus'), [], JSON.stringify(objects));
  return output
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as KstatusResult);
}

/** A JSON value as a Lua table constructor (what Argo CD hands a health.lua as `obj`). */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  const fields = Object.entries(value as Record<string, unknown>).map(
    ([key, field]) => `[${JSON.stringify(key)}] = ${luaLiteral(field)}`,
  );
  return `{${fields.join(', ')}}`;
}

/** The Argo CD health of `object`, from argocd/resource_customizations/tern.dev/<Kind>/health.lua in lua5.1. */
export async function argoHealthOf(object: ObjectJson): Promise<ArgoHealth> {
  const script = [
    `obj = ${luaLiteral(object)}`,
    `local hs = assert(loadfile(${JSON.stringify(`${HEALTH_CHECKS}${object.kind}/health.lua`)}))()`,
    'io.write(hs.status, "\\n", hs.message or "", "\\n")',
  ].join('\n');
  const [status, message] = (await run('lua5.1', ['-'], script)).split('\n');
  return { status: status as ArgoHealth['status'], message: message ?? '' };
}
