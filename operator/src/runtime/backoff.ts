// Per-key exponential backoff (client-go's ItemExponentialFailureRateLimiter): base·2^failures, capped.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export class ExponentialBackoff<K = string> {
  readonly #failures = new Map<K, number>();
  readonly #options: BackoffOptions;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** The delay before the next attempt for key; each call counts one more failure. */
  next(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // Math.min before the power would overflow for large failure counts.
    return Math.min(this.#options.maxMs, this.#options.baseMs * 2 ** Math.min(failures, 52));
  }

  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }
}
