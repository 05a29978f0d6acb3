import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { MigrationState__Output } from '../../../proto/index.js';
import { cancelOnSource } from './sequence.js';

const quiet = pino({ level: 'silent' });
const grpcError = (code: grpc.status, details: string) =>
  Object.assign(new Error(details), { code, details });
const answering = (answer: () => Promise<MigrationState__Output>) => ({ cancelMigration: answer });

describe('cancelOnSource', () => {
  it('is done once the source acknowledged the cancel', async () => {
    const source = answering(async () => ({}) as MigrationState__Output);
    expect(await cancelOnSource(source, 'm', 'deleted', quiet)).toBe('cancelled');
  });

  it("is done when the source answers that it is too late (the daemon's FAILED_PRECONDITION)", async () => {
    const source = answering(() =>
      Promise.reject(grpcError(grpc.status.FAILED_PRECONDITION, 'too late to cancel: it completed')),
    );
    expect(await cancelOnSource(source, 'm', 'deleted', quiet)).toBe('too late');
  });

  it('throws any other failure, so that the cancel is sent again', async () => {
    for (const code of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.NOT_FOUND]) {
      const source = answering(() => Promise.reject(grpcError(code, 'QEMU did not answer')));
      await expect(cancelOnSource(source, 'm', 'deleted', quiet)).rejects.toMatchObject({ code });
    }
  });
});
