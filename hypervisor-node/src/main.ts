// The hypervisor-node daemon: `npx tsx hypervisor-node/src/main.ts --help` lists the flags.
// SIGTERM/SIGINT stop the servers and detach from the guests; the QEMU processes keep running and the next
// daemon start re-attaches to them.
import { ConfigError, HelpRequested, parseConfig, type DaemonConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './logger.js';

async function main(): Promise<void> {
  let config: DaemonConfig;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.message);
      process.exit(0);
    }
    if (!(error instanceof ConfigError)) throw error;
    console.error(`hypervisor-node: ${error.message} (see --help)`);
    process.exit(2);
  }
  const logger = createLogger(config.nodeName, config.logLevel);
  let daemon;
  try {
    daemon = await startDaemon(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'hypervisor-node failed to start');
    process.exit(1);
  }
  const { grpcPort, metricsPort } = daemon;
  logger.info({ grpcPort, metricsPort, listen: config.listen.host }, 'hypervisor-node ready');

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down; guests keep running');
    daemon.stop().then(
      () => {
        logger.info('hypervisor-node stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

void main();
