// `npm run cluster -- up|down|status`: the local Tern cluster (see local-cluster.ts). `up` returns once the
// cluster is ready and leaves it running; on a cluster that is partly down it starts what is down and keeps what
// runs. `down` removes it, also after an `up` that failed halfway.
import { resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CLUSTER_NAME, defaultClusterDir, readState } from '../test/local-cluster/cluster-state.js';
import {
  clusterStatus,
  downCluster,
  healCluster,
  openCluster,
  upCluster,
} from '../test/local-cluster/local-cluster.js';
import { usageHint } from '../test/local-cluster/usage.js';

interface Common {
  dir: string;
  name: string;
}

const program = new Command('cluster').description('The local Tern cluster');
const withCommon = (command: Command): Command =>
  command
    .option('--dir <dir>', 'cluster dir (state, kubeconfig, logs)', defaultClusterDir())
    .option(
      '--name <name>',
      'short cluster name the namespaces and links are named after',
      DEFAULT_CLUSTER_NAME,
    );

withCommon(
  program
    .command('up')
    .description('bring the cluster up (or start what of it is down) and leave it running'),
)
  .option('--nodes <names>', 'comma-separated hypervisor node names', 'node-a,node-b')
  .option('--loopback', 'no network namespaces, even as root')
  .action(async (opts: Common & { nodes: string; loopback?: boolean }, command: Command) => {
    const dir = resolve(opts.dir);
    const running = openCluster(dir);
    if (running !== undefined) {
      console.log(`The cluster ${running.state.name} is up already (${running.state.mode} mode). Try:\n`);
      console.log(usageHint(running.state));
      return;
    }
    const log = (line: string) => console.log(`cluster: ${line}`);
    if (readState(dir) !== undefined) {
      // Recorded, but not all of it runs: start what is down, keep what runs.
      const healed = await healCluster(dir, {
        // The recorded nodes, unless others were asked for (then healing is refused).
        nodes:
          command.getOptionValueSource('nodes') === 'cli' ? opts.nodes.split(',').filter(Boolean) : undefined,
        loopback: opts.loopback,
        log,
      });
      console.log(`\nThe cluster ${healed.state.name} is up again (${healed.state.mode} mode). Try:\n`);
      console.log(usageHint(healed.state));
      return;
    }
    const cluster = await upCluster({
      dir,
      name: opts.name,
      nodes: opts.nodes.split(',').filter(Boolean),
      loopback: opts.loopback,
      log,
    });
    console.log(`\nThe cluster ${cluster.state.name} is up (${cluster.state.mode} mode). Try:\n`);
    console.log(usageHint(cluster.state));
  });

withCommon(
  program.command('down').description('remove every process, namespace, link and file of the cluster'),
).action(async (opts: Common) => {
  const removed = await downCluster(resolve(opts.dir), opts.name);
  console.log(
    removed.length === 0 ? 'nothing to remove' : removed.map((what) => `removed ${what}`).join('\n'),
  );
});

withCommon(program.command('status').description('each component of the cluster')).action(
  async (opts: Common) => {
    const dir = resolve(opts.dir);
    const rows = await clusterStatus(dir);
    if (rows === undefined) {
      console.log(`no cluster in ${dir}`);
      process.exitCode = 1;
      return;
    }
    const state = readState(dir)!;
    console.log(`cluster ${state.name} (${state.mode} mode) in ${dir}, kubeconfig ${state.kubeconfig}`);
    for (const row of rows) {
      console.log(
        `  ${row.component.padEnd(16)} ${(row.running ? 'running' : 'DOWN').padEnd(8)} ${row.detail}`,
      );
    }
    if (rows.some((row) => !row.running)) process.exitCode = 1;
  },
);

await program.parseAsync().catch((error: unknown) => {
  console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
