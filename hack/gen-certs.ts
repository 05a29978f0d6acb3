// Development PKI for the control and migration channels (test/harness/certificates.ts):
//
//   npx tsx hack/gen-certs.ts --out .cache/certs --node node-a=10.0.0.2 --node node-b
import { resolve } from 'node:path';
import { Command } from 'commander';
import { generateDevCerts, type NodeCertRequest } from '../test/harness/certificates.js';

function parseNodeArg(value: string, previous: NodeCertRequest[]): NodeCertRequest[] {
  const [name = '', ips] = value.split('=', 2);
  return [...previous, { name, ips: ips ? ips.split(',') : [] }];
}

const options = new Command()
  .description('Generate a development CA, the operator client certificate and node certificates')
  .requiredOption('--out <dir>', 'output directory')
  .option('--node <name[=ip,ip]>', 'a node certificate (repeatable)', parseNodeArg, [] as NodeCertRequest[])
  .parse()
  .opts<{ out: string; node: NodeCertRequest[] }>();
console.log(JSON.stringify(generateDevCerts(resolve(options.out), options.node), null, 2));
