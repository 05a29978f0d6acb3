import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { MigrationDaemonClient } from '../daemon/migration-client.js';
import type { Migration } from '../../../crds/index.js';
import { MigrationRunner, type MigrationRunnerOptions, type Run } from './run.js';

const quiet = pino({ level: 'silent' });

/** A source daemon whose CancelMigration answers with `answers`, one per call (then succeeds). */
function source(...answers: (grpc.status | 'ok')[]) {
  const calls: string[] = [];
  const client = {
    cancelMigration: async (id: string) => {
      calls.push(id);
      const answer = answers.shift() ?? 'ok';
      if (answer !== 'ok') throw Object.assign(new Error('cancel failed'), { code: answer, details: 'x' });
      return {};
    },
  };
  return { calls, client: client as unknown as MigrationDaemonClient };
}

function run(client?: MigrationDaemonClient): Run {
  return {
    migration: { metadata: { uid: 'u' } } as Migration,
    id: 'u',
    failedRuns: 0,
    stopped: new AbortController().signal,
    done: Promise.resolve(),
    ...(client ? { source: client } : {}),
  };
}

// cancel() uses none of the runner's options.
const runner = new MigrationRunner({} as MigrationRunnerOptions);

describe('MigrationRunner.cancel', () => {
  it('sends the cancel again after a failed call, until the source acknowledges it', async () => {
    const { calls, client } = source(grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED);
    const cancelled = run(client);
    await expect(runner.cancel(cancelled, 'the Migration was deleted', quiet)).rejects.toThrow();
    await expect(runner.cancel(cancelled, 'the Migration was deleted', quiet)).rejects.toThrow();
    await runner.cancel(cancelled, 'the Migration was deleted', quiet);
    expect(calls).toHaveLength(3);
    // Acknowledged: not sent again.
    await runner.cancel(cancelled, 'the Migration was deleted', quiet);
    expect(calls).toHaveLength(3);
    expect(cancelled.cancelled).toBe('the Migration was deleted');
  });

  it('stops sending once the source answers that it is too late', async () => {
    const { calls, client } = source(grpc.status.FAILED_PRECONDITION);
    const cancelled = run(client);
    await runner.cancel(cancelled, 'deleted', quiet);
    await runner.cancel(cancelled, 'deleted', quiet);
    expect(calls).toHaveLength(1);
  });

  it('before StartMigration only flags the run (the run checks the flag)', async () => {
    const cancelled = run();
    await runner.cancel(cancelled, 'deleted', quiet);
    expect(cancelled.cancelled).toBe('deleted');
  });
});
