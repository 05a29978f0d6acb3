// A control API client with the operator's (or any) certificate, for integration tests.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadControlProto, type GuestControlClient } from '../../proto/index.js';

export interface ClientCertificate {
  ca: string;
  cert?: string;
  key?: string;
}

/**
 * `serverName` is the name the daemon's certificate is checked against, as the operator does with the node name;
 * without it, the address's host (Node.js warns when that is an IP address).
 */
export function controlClient(
  address: string,
  files: ClientCertificate,
  serverName?: string,
): GuestControlClient {
  const credentials = grpc.credentials.createSsl(
    readFileSync(files.ca),
    files.key ? readFileSync(files.key) : null,
    files.cert ? readFileSync(files.cert) : null,
  );
  const options = serverName === undefined ? {} : { 'grpc.ssl_target_name_override': serverName };
  return new (loadControlProto().GuestControl)(address, credentials, options);
}

/** Promise form of a unary call: `await unary((done) => client.listGuests({}, done))`. */
export { unary } from '../../proto/index.js';
