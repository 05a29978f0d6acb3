// A run's Migration status writes while it follows the source: one after the other, in the order they were queued
// (each write carries the Migration its predecessor left). From hold() on, a write that has not started yet waits
// for release(): the guest is paused from the source's outcome until the hand-over resumes it, and nothing but the
// ownership swap and the resume may stand in the way then (docs/architecture.md, "The switchover's critical path").
// A write already under way when hold() comes finishes; it cannot be called back.
export class StatusWriteQueue {
  private tail: Promise<void> = Promise.resolve();
  private held = false;
  private readonly gate: Promise<void>;
  private openGate!: () => void;

  /** `onError`: a failed write is reported there and the queue goes on with the next one. */
  constructor(private readonly onError: (error: unknown) => void) {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  /** Queues `write` behind the writes queued before it. */
  push(write: () => Promise<unknown>): void {
    this.tail = this.tail
      .then(async () => {
        if (this.held) await this.gate;
        await write();
      })
      .catch(this.onError);
  }

  /** Writes that have not started yet wait for release() (once released, the queue is never held again). */
  hold(): void {
    this.held = true;
  }

  /** Lets the held writes go and waits until every queued write has finished. */
  async release(): Promise<void> {
    this.openGate();
    await this.tail;
  }
}
