// The operator process: `tsx operator/src/main.ts --kubeconfig … --tls-cert … --tls-key … --tls-ca …`.
// Exit codes: 0 after SIGTERM/SIGINT, 1 when leadership is lost or the manager fails, 2 on a configuration error.
import { CommanderError } from 'commander';
import { ConfigError, parseConfig, usage } from './config.js';
import { createOperatorLogger } from './runtime/logger.js';
import { startOperator } from './operator.js';

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.helpDisplayed') {
      process.stdout.write(usage());
      return 0;
    }
    if (error instanceof ConfigError || error instanceof CommanderError) {
      process.stderr.write(`tern-operator: ${error.message}\n${usage()}`);
      return 2;
    }
    throw error;
  }
  const logger = createOperatorLogger({ level: config.logLevel, base: { component: 'tern-operator' } });
  const operator = await startOperator(config, logger);
  operator.manager.handleSignals();
  logger.info(
    {
      metricsPort: operator.metricsPort,
      consolePort: operator.consolePort,
      evictionWebhookPort: operator.evictionWebhookPort,
      leaderElection: config.leaderElection !== undefined,
    },
    'tern-operator ready',
  );
  try {
    await operator.done;
    return 0;
  } catch (err) {
    logger.error({ err }, 'operator stopped');
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`tern-operator: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
