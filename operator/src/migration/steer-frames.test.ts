import type { Logger } from 'pino';
import { steerFramesToTarget } from './steer-frames.js';

function recordingLogger(): { logger: Logger; warnings: unknown[][] } {
  const warnings: unknown[][] = [];
  const logger = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Logger;
  return { logger, warnings };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

it('asks the target without waiting, and logs only what did not work', async () => {
  const { logger, warnings } = recordingLogger();
  const asked: string[] = [];
  let answer!: (problems: string[]) => void;
  steerFramesToTarget(
    {
      steerFrames: (id) => {
        asked.push(id);
        return new Promise((resolve) => (answer = resolve));
      },
    },
    'm-1',
    'node-b',
    logger,
  );
  expect(asked).toEqual(['m-1']);
  answer([]);
  await settle();
  expect(warnings).toEqual([]);

  steerFramesToTarget(
    { steerFrames: () => Promise.resolve(['br0: no such device']) },
    'm-2',
    'node-b',
    logger,
  );
  await settle();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]![0]).toEqual({ targetNode: 'node-b', problems: ['br0: no such device'] });
});

it('a failed call (the target daemon down at the pause) is logged, never thrown or left unhandled', async () => {
  const { logger, warnings } = recordingLogger();
  const error = new Error('14 UNAVAILABLE: No connection established');
  expect(() =>
    steerFramesToTarget({ steerFrames: () => Promise.reject(error) }, 'm-3', 'node-b', logger),
  ).not.toThrow();
  await settle();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]![0]).toEqual({ err: error, targetNode: 'node-b' });
});
