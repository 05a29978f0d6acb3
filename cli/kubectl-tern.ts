// Entry point of the `kubectl tern` plugin (kubectl runs the `kubectl-tern` executable on the PATH with the
// arguments that follow `tern`).
import { connect } from './kube.js';
import { run } from './program.js';

const exitCode = await run(process.argv.slice(2), {
  connect,
  out: {
    write: (text) => process.stdout.write(text),
    isTTY: process.stdout.isTTY === true,
    get columns() {
      return process.stdout.columns;
    },
  },
  writeErr: (text) => process.stderr.write(text),
});
process.exitCode = exitCode;
