// The layout's rules, checked on the import graph (run by `npm test` through hack/check-imports.ts):
//   - the programs (operator/, hypervisor-node/, cli/) never import each other;
//   - nothing imports hack/ (thin command-line scripts only);
//   - nothing under a program's src/ imports test/, tests included (its tests there are unit tests; the ones that
//     need the harness live under test/), and no production code anywhere does;
//   - the shared packages stand alone: crds/ and proto/ import only each other, kube/ only crds/, cmdline/,
//     guest/ and pki/ nothing;
//   - no import cycles between folders of production code (every folder counts, nested ones too; a program's
//     composition root is its src/ itself, which its subfolders must therefore never import).
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

export interface SourceFile {
  /** Repository-relative path with forward slashes, e.g. operator/src/main.ts. */
  path: string;
  text: string;
}

export interface Violation {
  rule: string;
  from: string;
  to: string;
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[\s;])import\s*\(?\s*['"`](\.{1,2}\/[^'"`]+)['"`]|\brequire\(\s*['"`](\.{1,2}\/[^'"`]+)['"`]/g;
const COMMENT = /\/\*[\s\S]*?\*\/|(?:^|\s)\/\/[^\n]*/g;
const PROGRAMS = ['operator', 'hypervisor-node', 'cli'];
const CONTRACTS: Record<string, readonly string[]> = {
  crds: ['crds', 'proto'],
  proto: ['proto', 'crds'],
  kube: ['kube', 'crds'],
  cmdline: ['cmdline'],
  pki: ['pki'],
  guest: ['guest'],
  cli: ['cli', 'crds', 'kube', 'proto'],
};

export const CYCLE_RULE = 'no import cycles between folders';

const top = (path: string): string => path.split('/')[0]!;
const isTest = (path: string): boolean =>
  /\.test\.ts$/.test(path) || top(path) === 'test' || top(path) === 'hack';

/** The folder a file belongs to for the cycle rule: its directory, but a shared package is one folder. */
export function folderOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] !== undefined && parts[0] in CONTRACTS && parts[0] !== 'cli') return parts[0];
  return parts.slice(0, -1).join('/') || '.';
}

const underSrc = (path: string): boolean => PROGRAMS.includes(top(path)) && path.split('/')[1] === 'src';

/** The repository-relative .ts files `file` imports (relative specifiers only; packages are not the layout's). */
export function importsOf(file: SourceFile): string[] {
  const found: string[] = [];
  for (const match of file.text.replace(COMMENT, '').matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? match[3]!;
    const target = normalize(join(dirname(file.path), specifier)).replace(/\.js$/, '.ts');
    found.push(target.endsWith('.ts') ? target : `${target}/index.ts`);
  }
  return found;
}

export function checkImports(files: readonly SourceFile[]): Violation[] {
  const violations: Violation[] = [];
  const edges = new Map<string, Set<string>>();
  for (const file of files) {
    for (const to of importsOf(file)) {
      const [a, b] = [top(file.path), top(to)];
      const add = (rule: string) => violations.push({ rule, from: file.path, to });
      if (a !== b && PROGRAMS.includes(a) && PROGRAMS.includes(b))
        add('the programs never import each other');
      if (b === 'hack') add('nothing imports hack/');
      if (b === 'test' && underSrc(file.path)) add("nothing under a program's src/ imports test/");
      if (isTest(file.path)) continue;
      if (b === 'test') add('production code never imports test/');
      const allowed = CONTRACTS[a];
      if (allowed && !allowed.includes(b))
        add(`${a}/ imports only ${allowed.map((f) => `${f}/`).join(', ')}`);
      const [from, into] = [folderOf(file.path), folderOf(to)];
      if (from !== into) {
        if (!edges.has(from)) edges.set(from, new Set());
        edges.get(from)!.add(into);
      }
    }
  }
  for (const cycle of folderCycles(edges)) {
    const [first, ...rest] = cycle;
    violations.push({ rule: CYCLE_RULE, from: first!, to: rest.join(', ') });
  }
  return violations;
}

/** The folders of each strongly connected component of more than one folder (Tarjan's algorithm). */
function folderCycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** The repository's own TypeScript files (generated code excluded: it imports only itself). */
export function readSources(root: string, paths: readonly string[]): SourceFile[] {
  return paths
    .filter((path) => path.endsWith('.ts') && !path.startsWith('proto/generated/'))
    .map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }));
}
