import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';

export interface TlsFiles {
  /** PEM certificate chain of this node (server and peer certificate). */
  certFile: string;
  keyFile: string;
  /** PEM CA bundle that client certificates must chain to. Never the public roots. */
  caFile: string;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new Error(`cannot read ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Server credentials that require a client certificate signed by the given CA (mutual TLS). */
export async function loadServerCredentials(files: TlsFiles): Promise<grpc.ServerCredentials> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.certFile, 'TLS certificate'),
    readPem(files.keyFile, 'TLS key'),
    readPem(files.caFile, 'CA bundle'),
  ]);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}
