// Shared settings of the property-based (fuzz) tests. CI runs every property with a fixed seed and a small number of
// cases; `npm run test:fuzz` runs the same properties with many more (TERN_FUZZ_RUNS=5000), and a failure found
// with another seed is replayed with TERN_FUZZ_SEED=<seed>. Each property prints one line
// `fuzz <name>: <N> cases, seed <S>`, so a run reports how many cases ran.
import fc, { type IAsyncProperty, type IProperty, type Parameters, type RunDetails } from 'fast-check';

/** The seed when TERN_FUZZ_SEED is not set: CI is reproducible. */
export const DEFAULT_FUZZ_SEED = 20261206;
/** Cases per property when TERN_FUZZ_RUNS is not set: each unit property runs in seconds. */
export const DEFAULT_FUZZ_RUNS = 200;

function envInteger(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return value;
}

export function fuzzSeed(): number {
  return envInteger('TERN_FUZZ_SEED') ?? DEFAULT_FUZZ_SEED;
}

export interface FuzzBudget {
  /** Cases in CI (TERN_FUZZ_RUNS unset); DEFAULT_FUZZ_RUNS unless the property is slow. */
  runs?: number;
  /**
   * Share of TERN_FUZZ_RUNS this property runs when it is set (default 1): a property whose cases are slow
   * (a real daemon, QEMU boots) takes fewer of the on-demand cases.
   */
  weight?: number;
}

/** How many cases a property runs: TERN_FUZZ_RUNS × weight when set, else the property's CI budget. */
export function fuzzRuns(budget: FuzzBudget = {}): number {
  const requested = envInteger('TERN_FUZZ_RUNS');
  if (requested !== undefined) return Math.max(1, Math.ceil(requested * (budget.weight ?? 1)));
  return budget.runs ?? DEFAULT_FUZZ_RUNS;
}

/**
 * Checks `property` with the shared seed and budget, prints `fuzz <name>: <N> cases, seed <S>`, and fails with
 * fast-check's report (the shrunk counterexample and how to replay it) when a case fails.
 */
export async function checkProperty<Ts>(
  name: string,
  property: IProperty<Ts> | IAsyncProperty<Ts>,
  budget: FuzzBudget & { examples?: Ts[]; timeoutMs?: number } = {},
): Promise<RunDetails<Ts>> {
  const seed = fuzzSeed();
  const parameters: Parameters<Ts> = { seed, numRuns: fuzzRuns(budget) };
  if (budget.examples !== undefined) parameters.examples = budget.examples;
  // A case that hangs fails (and shrinks) like any other instead of stalling the run.
  if (budget.timeoutMs !== undefined) parameters.timeout = budget.timeoutMs;
  const details = await fc.check(property, parameters);
  process.stdout.write(`fuzz ${name}: ${details.numRuns} cases, seed ${details.seed}\n`);
  if (details.failed) {
    const cause =
      details.errorInstance instanceof Error ? details.errorInstance.stack : String(details.errorInstance);
    throw new Error(`fuzz ${name} failed:\n${fc.defaultReportMessage(details)}\nError: ${cause}`);
  }
  return details;
}
