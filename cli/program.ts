// The command line of `kubectl tern`: parsing, input validation (before any API call), and turning errors into
// kubectl-style messages and exit codes. The I/O and the cluster connection are injected so tests can run it
// in-process.
import { Command, CommanderError } from 'commander';
import { KubeApiError } from '../kube/errors.js';
import type { CommandContext } from './commands.js';
import { CliError, cancel, drain, migrate, status, uncordon } from './commands.js';
import { findConsoleEndpoint, runConsole, type ConsoleTerminal } from './console.js';
import type { Connect, ConnectionOptions } from './kube.js';
import type { ReporterOutput } from './reporter.js';
import {
  InputError,
  parseBandwidth,
  parseDowntimeMs,
  parseTimeoutMs,
  validateLabelName,
  validateNodeName,
} from './validate.js';

export interface ProgramIO {
  connect: Connect;
  out: ReporterOutput;
  writeErr(text: string): void;
  /** Delay between two reads of a followed Migration; 250 ms keeps the plugin at 4 requests/s. */
  pollIntervalMs?: number;
  /** The terminal of `console` (default: the process's stdin, stdout and stderr). */
  terminal?: ConsoleTerminal;
}

const DEFAULT_POLL_MS = 250;

interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

function withConnectionFlags(command: Command, namespaced: boolean): Command {
  command
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use (default: the current context)');
  if (namespaced) {
    command.option('-n, --namespace <namespace>', "namespace of the VM (default: the context's namespace)");
  }
  return command;
}

function connectionOptions(flags: ConnectionFlags): ConnectionOptions {
  const options: ConnectionOptions = {};
  if (flags.kubeconfig !== undefined) options.kubeconfig = flags.kubeconfig;
  if (flags.context !== undefined) options.context = flags.context;
  if (flags.namespace !== undefined) options.namespace = validateLabelName('namespace', flags.namespace);
  return options;
}

/** Runs one invocation; resolves to the process exit code. */
export async function run(argv: readonly string[], io: ProgramIO): Promise<number> {
  let exitCode = 0;

  async function withCluster(flags: ConnectionFlags, body: (ctx: CommandContext) => Promise<number>) {
    const connection = await io.connect(connectionOptions(flags));
    try {
      exitCode = await body({
        client: connection.client,
        namespace: connection.namespace,
        out: io.out,
        pollIntervalMs: io.pollIntervalMs ?? DEFAULT_POLL_MS,
      });
    } finally {
      connection.close();
    }
  }

  const program = new Command('kubectl tern')
    .description('Live-migrate Tern virtual machines and drain hypervisor nodes.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.writeErr(s) })
    .showHelpAfterError('(add --help for usage)')
    .helpCommand(true);

  withConnectionFlags(
    program
      .command('migrate')
      .description('Live-migrate a running VM to another hypervisor node (creates a Migration).')
      .argument('<vm>', 'name of the VirtualMachine')
      .option('--to <node>', 'target HypervisorNode (default: the operator picks one)')
      .option('--bandwidth <bytes-per-second>', 'bandwidth cap, e.g. 1Gi, 500M, or "unlimited"')
      .option('--max-downtime <ms>', 'largest acceptable freeze, in ms ("300", "300ms", "1.5s")')
      .option('--wait', 'follow the migration until it ends; exit non-zero unless it succeeded')
      .addHelpText(
        'after',
        '\nExamples:\n  kubectl tern migrate vm01 --to node-b --wait\n' +
          '  kubectl tern migrate vm01 --bandwidth 1Gi --max-downtime 200ms -n prod',
      ),
    true,
  ).action(
    async (
      vm: string,
      flags: ConnectionFlags & { to?: string; bandwidth?: string; maxDowntime?: string; wait?: boolean },
    ) => {
      const request = {
        vmName: validateLabelName('VM name', vm),
        wait: flags.wait === true,
        ...(flags.to !== undefined && { targetNode: validateNodeName(flags.to) }),
        ...(flags.bandwidth !== undefined && { bandwidth: parseBandwidth(flags.bandwidth) }),
        ...(flags.maxDowntime !== undefined && { maxDowntimeMs: parseDowntimeMs(flags.maxDowntime) }),
      };
      await withCluster(flags, (ctx) => migrate(ctx, request));
    },
  );

  withConnectionFlags(
    program
      .command('cancel')
      .description("Cancel a VM's active migration (deletes the Migration); the VM stays on its node.")
      .argument('<vm>', 'name of the VirtualMachine'),
    true,
  ).action(async (vm: string, flags: ConnectionFlags) => {
    const vmName = validateLabelName('VM name', vm);
    await withCluster(flags, (ctx) => cancel(ctx, vmName));
  });

  withConnectionFlags(
    program
      .command('status')
      .description("Show a VM's phase, node and ownership epoch, and its active and last migration.")
      .argument('<vm>', 'name of the VirtualMachine'),
    true,
  ).action(async (vm: string, flags: ConnectionFlags) => {
    const vmName = validateLabelName('VM name', vm);
    await withCluster(flags, (ctx) => status(ctx, vmName));
  });

  withConnectionFlags(
    program
      .command('drain')
      .description(
        'Cordon a hypervisor node, have the operator migrate its VMs away, and wait until none is left.',
      )
      .argument('<node>', 'name of the HypervisorNode')
      .option('--timeout <duration>', 'give up waiting after this long, e.g. 90s, 5m (default: 0, no limit)')
      .option('--no-wait', 'return once the node is marked, without waiting for its VMs to move')
      .addHelpText(
        'after',
        "\nEach VM's move is shown (VM, from → to, its Migration's phase, then the result). Exit 0 once no VM\n" +
          'is left on the node; 1 on --timeout or when a VM cannot be moved (the node stays cordoned).',
      ),
    false,
  ).action(async (node: string, flags: ConnectionFlags & { timeout?: string; wait: boolean }) => {
    const request = {
      nodeName: validateNodeName(node),
      wait: flags.wait,
      timeoutMs: flags.timeout === undefined ? 0 : parseTimeoutMs(flags.timeout),
    };
    await withCluster(flags, (ctx) => drain(ctx, request));
  });

  withConnectionFlags(
    program
      .command('uncordon')
      .description('Make a drained or cordoned hypervisor node schedulable again.')
      .argument('<node>', 'name of the HypervisorNode'),
    false,
  ).action(async (node: string, flags: ConnectionFlags) => {
    const nodeName = validateNodeName(node);
    await withCluster(flags, (ctx) => uncordon(ctx, nodeName));
  });

  withConnectionFlags(
    program
      .command('console')
      .description("Attach to a VM's serial console (Ctrl+] detaches).")
      .argument('<vm>', 'name of the VirtualMachine')
      .option('--history', 'first print what the console wrote before (its last 16 KiB)')
      .option(
        '--console-address <host:port>',
        "the operator's console endpoint (default: from ConfigMap tern-console)",
      )
      .option(
        '--console-ca <file>',
        "CA of the endpoint's certificate (default: from ConfigMap tern-console)",
      )
      .option(
        '--console-server-name <name>',
        "name in the endpoint's certificate, when the address differs (port-forward)",
      )
      .option('--console-namespace <ns>', 'namespace of ConfigMap tern-console', 'tern-system')
      .addHelpText(
        'after',
        '\nThe session follows the VM across live migrations (a line says so) and ends when the VM stops or is\n' +
          'deleted. Needs RBAC: get on virtualmachines/console (group tern.dev) in the namespace; see docs/console.md.\n' +
          'Examples:\n  kubectl tern console vm01\n  kubectl tern console vm01 --history -n prod\n' +
          '  kubectl tern console vm01 --console-address 127.0.0.1:9443 --console-server-name tern-console.tern-system.svc',
      ),
    true,
  ).action(
    async (
      vm: string,
      flags: ConnectionFlags & {
        history?: boolean;
        consoleAddress?: string;
        consoleCa?: string;
        consoleServerName?: string;
        consoleNamespace: string;
      },
    ) => {
      const vmName = validateLabelName('VM name', vm);
      const endpointNamespace = validateLabelName('console namespace', flags.consoleNamespace);
      const connection = await io.connect(connectionOptions(flags));
      try {
        const options = {
          vmName,
          namespace: connection.namespace,
          history: flags.history === true,
          endpointNamespace,
          ...(flags.consoleAddress !== undefined && { address: flags.consoleAddress }),
          ...(flags.consoleCa !== undefined && { caFile: flags.consoleCa }),
          ...(flags.consoleServerName !== undefined && { serverName: flags.consoleServerName }),
        };
        const endpoint = await findConsoleEndpoint(connection.client, options);
        const credentials = (await connection.credentials?.()) ?? {};
        exitCode = await runConsole(endpoint, credentials, options, io.terminal ?? processTerminal());
      } finally {
        connection.close();
      }
    },
  );

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    // Commander has printed its own message (or the help) already.
    if (err instanceof CommanderError) return err.exitCode;
    io.writeErr(`${errorMessage(err)}\n`);
    return 1;
  }
}

function processTerminal(): ConsoleTerminal {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

/** kubectl's wording: the apiserver's rejection verbatim, with its reason. */
export function errorMessage(err: unknown): string {
  if (err instanceof KubeApiError && err.statusCode > 0) {
    return `Error from server (${err.reason || err.statusCode}): ${err.message}`;
  }
  if (err instanceof InputError || err instanceof CliError || err instanceof KubeApiError) {
    return `error: ${err.message}`;
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|HOSTUNREACH|NOTFOUND|TIMEDOUT)$/.test(code)) {
    return `error: Unable to connect to the server: ${(err as Error).message}`;
  }
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}
