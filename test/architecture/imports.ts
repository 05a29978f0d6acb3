// The layout's rules, checked on the import graph (run by `npm test` through hack/check-imports.ts):
//   - the operator and the daemon never import each other;
//   - nothing imports hack/ (thin command-line scripts only);
//   - production code (anything not a test and not under test/ or hack/) never imports test/;
//   - the shared packages stand alone: crds/ and proto/ import only each other, kube/ only crds/, cmdline/ and
//     guest/ nothing;
//   - no import cycles between folders of production code (a folder: the top-level one, or the first folder under
//     operator/src and hypervisor-node/src; a program's composition root is its src/ itself, which subfolders
//     must therefore never import).
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
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[\s;])import\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;
const CONTRACTS: Record<string, readonly string[]> = {
  crds: ['crds', 'proto'],
  proto: ['proto', 'crds'],
  kube: ['kube', 'crds'],
  cmdline: ['cmdline'],
  guest: ['guest'],
};

export const CYCLE_RULE = 'no import cycles between folders';

const top = (path: string): string => path.split('/')[0]!;
const isTest = (path: string): boolean =>
  /\.test\.ts$/.test(path) || top(path) === 'test' || top(path) === 'hack';

/** The folder a file belongs to for the cycle rule. */
export function folderOf(path: string): string {
  const parts = path.split('/');
  if ((parts[0] === 'operator' || parts[0] === 'hypervisor-node') && parts[1] === 'src') {
    return parts.length > 3 ? parts.slice(0, 3).join('/') : parts.slice(0, 2).join('/');
  }
  if (parts[0] === 'test' && parts.length > 2) return parts.slice(0, 2).join('/');
  return parts[0]!;
}

/** The repository-relative .ts files `file` imports (relative specifiers only; packages are not the layout's). */
export function importsOf(file: SourceFile): string[] {
  const found: string[] = [];
  for (const match of file.text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2]!;
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
      if ((a === 'operator' && b === 'hypervisor-node') || (a === 'hypervisor-node' && b === 'operator'))
        add('the operator and the daemon never import each other');
      if (b === 'hack') add('nothing imports hack/');
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
