// Per-key exponential backoff (client-go's ItemExponentialFailureRateLimiter): base·2^failures, capped.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export class ExponentialBackoff<K = string> {
  private readonly failureCounts = new Map<K, number>();
  private readonly options: BackoffOptions;

  constructor(options: BackoffOptions) {
    this.options = options;
  }

  /** The delay before the next attempt for key; each call counts one more failure. */
  next(key: K): number {
    const failures = this.failureCounts.get(key) ?? 0;
    this.failureCounts.set(key, failures + 1);
    // Math.min before the power would overflow for large failure counts.
    return Math.min(this.options.maxMs, this.options.baseMs * 2 ** Math.min(failures, 52));
  }

  failures(key: K): number {
    return this.failureCounts.get(key) ?? 0;
  }

  forget(key: K): void {
    this.failureCounts.delete(key);
  }
}
