// Helpers for the chart's integration test: the helm binary that hack/build-k8s.sh builds, ServiceAccount tokens
// as kubeconfigs, and batched SubjectAccessReviews.
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import type { ControlPlane } from '../harness/control-plane.js';

const run = promisify(execFile);

export function helmBinary(): string {
  const path = join(process.env.TERN_CACHE ?? join(homedir(), '.cache', 'tern'), 'bin', 'helm');
  if (!existsSync(path))
    throw new Error(`helm not found at ${path}: run npm run setup (or bash hack/build-k8s.sh) to build it`);
  return path;
}

/** Runs helm; rejects with its output when it exits non-zero. */
export async function helm(...args: string[]): Promise<string> {
  try {
    return (await run(helmBinary(), args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/** Runs kubectl as the control plane's admin; throws with its stderr on a non-zero exit. */
export async function kubectl(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const result = await cp.kubectl(args, { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/**
 * Mints a token for a ServiceAccount (bound to a Pod when `pod` is given, as the kubelet does for a pod's
 * projected token) and writes a kubeconfig that authenticates with it alone. Returns the kubeconfig's path.
 */
export async function tokenKubeconfig(
  cp: ControlPlane,
  path: string,
  serviceAccount: { namespace: string; name: string; pod?: string },
): Promise<string> {
  const bound = serviceAccount.pod
    ? ['--bound-object-kind=Pod', `--bound-object-name=${serviceAccount.pod}`]
    : [];
  const token = (
    await kubectl(cp, [
      'create',
      'token',
      serviceAccount.name,
      `--namespace=${serviceAccount.namespace}`,
      '--duration=1h',
      ...bound,
    ])
  ).trim();
  return kubeconfigWithToken(cp, path, token, serviceAccount.name);
}

/** Writes a kubeconfig at `path` that talks to the control plane's apiserver with `token` only; returns `path`. */
export async function kubeconfigWithToken(
  cp: ControlPlane,
  path: string,
  token: string,
  user: string,
): Promise<string> {
  const admin = parse(await kubectl(cp, ['config', 'view', '--raw', '-o', 'yaml'])) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  };
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tern-test', cluster: admin.clusters[0]!.cluster }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'tern-test', context: { cluster: 'tern-test', user } }],
    'current-context': 'tern-test',
  };
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
  return path;
}

/** One API call, as `kubectl auth can-i` spells it: a verb on group/resource[/subresource] [in namespace] [named]. */
export interface Access {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export const describeAccess = (a: Access): string =>
  `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}` +
  `${a.name ? ` ${a.name}` : ''}${a.namespace ? ` in ${a.namespace}` : ' (cluster-wide)'}`;

/**
 * Asks the apiserver's authorizer (RBAC), with one SubjectAccessReview per call, whether the ServiceAccount may
 * make each call; returns the calls it may make, described.
 */
export async function allowedFor(
  cp: ControlPlane,
  serviceAccount: { namespace: string; name: string },
  accesses: Access[],
): Promise<string[]> {
  const reviews = accesses.map((access) => ({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${serviceAccount.namespace}:${serviceAccount.name}`,
      groups: [
        'system:serviceaccounts',
        `system:serviceaccounts:${serviceAccount.namespace}`,
        'system:authenticated',
      ],
      resourceAttributes: access,
    },
  }));
  const input = reviews.map((review) => JSON.stringify(review)).join('\n---\n');
  // One line per review, in input order (kubectl prints each created object on its own).
  const answers = (
    await kubectl(cp, ['create', '-f', '-', '-o', 'jsonpath={.status.allowed}{"\\n"}'], input)
  ).split('\n');
  answers.pop();
  if (answers.length !== accesses.length || answers.some((a) => a !== 'true' && a !== 'false'))
    throw new Error(`${accesses.length} SubjectAccessReviews sent, answers: ${JSON.stringify(answers)}`);
  return accesses.filter((_, i) => answers[i] === 'true').map(describeAccess);
}
