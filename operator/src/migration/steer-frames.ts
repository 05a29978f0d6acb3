import type { Logger } from 'pino';
import type { MigrationDaemonClient } from '../daemon/migration-client.js';

/**
 * The source paused the guest for the switchover: asks the target's daemon to have the network send the guest's
 * frames to its node (SteerFrames), where the incoming QEMU keeps them until it runs the guest, instead of to the
 * paused source, where they die with its QEMU (docs/architecture.md "Frames during the switchover"). Off the
 * switchover's path: never awaited; what fails is logged, and costs at most a client's retransmission.
 */
export function steerFramesToTarget(
  target: Pick<MigrationDaemonClient, 'steerFrames'>,
  id: string,
  targetNode: string,
  logger: Logger,
): void {
  target.steerFrames(id).then(
    (problems) => {
      if (problems.length > 0)
        logger.warn({ targetNode, problems }, "the guest's frames could not all be steered to the target");
    },
    (err: unknown) =>
      logger.warn({ err, targetNode }, "the target's daemon did not steer the guest's frames (SteerFrames)"),
  );
}
