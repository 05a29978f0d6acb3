// Waiting for a condition in integration and end-to-end tests.
/** Polls `probe` until it returns a value (errors count as not yet); throws with the last error after `ms`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`${what} not within ${ms} ms${last ? `: ${String(last)}` : ''}`);
}
