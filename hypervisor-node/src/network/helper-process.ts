import type { ChildProcess } from 'node:child_process';

/** How a helper process ended: its exit code (null when killed or never started), its stderr, a spawn error. */
export interface HelperExit {
  code: number | null;
  stderr: string;
  error?: Error;
}

/**
 * A helper process started ahead of the moment it is needed, waiting on its stdin: finish() hands it its input and
 * waits for it to end, close() ends it unused. Once: either of them, once.
 */
export class WaitingHelper {
  private readonly exited: Promise<HelperExit>;
  private used = false;

  /** `what` names it in the error of a second use. */
  constructor(
    readonly child: ChildProcess,
    private readonly what: string,
  ) {
    let stderr = '';
    this.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A write after the process died (spawn failed, killed) must not throw from the stream.
    this.child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => resolve({ code: null, stderr, error }));
      this.child.once('close', (code) => resolve({ code, stderr }));
    });
  }

  /**
   * Writes `input`, ends stdin and waits at most `ms` for the process to end; one that has not by then is killed,
   * and the answer is undefined.
   */
  async finish(input: string, ms: number): Promise<HelperExit | undefined> {
    if (this.used) throw new Error(`this ${this.what} was used already`);
    this.used = true;
    this.child.stdin?.end(input);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    const done = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (done === undefined) this.child.kill('SIGKILL');
    return done;
  }

  /** Ends the process unused (what it waited for did not come). Idempotent. */
  close(): void {
    if (this.used) return;
    this.used = true;
    this.child.stdin?.end();
  }
}
