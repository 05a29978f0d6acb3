import type { ChildProcess } from 'node:child_process';

/**
 * Waits at most `ms` for a helper process told to finish (`exited` settles when it ended); one that has not by then
 * is killed, and the answer is undefined.
 */
export async function exitWithin<T>(
  child: ChildProcess,
  exited: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  const done = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (done === undefined) child.kill('SIGKILL');
  return done;
}
