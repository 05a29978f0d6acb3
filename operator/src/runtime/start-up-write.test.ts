import { pino } from 'pino';
import { startUpWrite } from './start-up-write.js';

const logger = pino({ level: 'silent' });

test('a failing write is retried until it succeeds', async () => {
  let calls = 0;
  const write = startUpWrite(
    'publishing',
    async () => {
      calls += 1;
      if (calls < 3) throw new Error('connect ECONNREFUSED');
    },
    logger,
    { baseMs: 1, maxMs: 2 },
  );
  await expect(write.done).resolves.toBe(true);
  expect(calls).toBe(3);
});

test('stopping ends the retries', async () => {
  let calls = 0;
  const write = startUpWrite(
    'publishing',
    async () => {
      calls += 1;
      throw new Error('connect ECONNREFUSED');
    },
    logger,
    { baseMs: 60_000, maxMs: 60_000 },
  );
  await new Promise((resolve) => setImmediate(resolve));
  write.stop();
  await expect(write.done).resolves.toBe(false);
  expect(calls).toBe(1);
});
