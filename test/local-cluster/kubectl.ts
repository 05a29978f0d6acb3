// kubectl (the cached binary) against a cluster's kubeconfig.
import { execFile } from 'node:child_process';
import { kubeBinary } from '../harness/control-plane.js';

export function runKubectl(
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      kubeBinary('kubectl'),
      [`--kubeconfig=${kubeconfig}`, ...args],
      { maxBuffer: 64 * 2 ** 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
      },
    );
    // kubectl may exit before it reads its input (a `get` never does): the write then fails with EPIPE, and the
    // exit status and stderr above are what count.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}
