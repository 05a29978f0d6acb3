// `kubectl tern console VM`: the guest's serial console through the operator's console endpoint (docs/console.md).
// The terminal goes raw when stdin is a TTY (and is restored on every way out); Ctrl+] (0x1d) detaches.
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { KubeClient } from '../kube/client.js';
import { isNotFound } from '../kube/errors.js';
import { ConfigMaps } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import { loadConsoleProto, type ConsoleRequest, type ConsoleResponse__Output } from '../proto/index.js';
import { CliError } from './commands.js';

/** Ctrl+]: the byte that ends a session, as in telnet and virtctl. */
export const ESCAPE_BYTE = 0x1d;
/** Where the operator publishes its console endpoint (docs/console.md). */
export const CONSOLE_CONFIGMAP = 'tern-console';
/** The largest keystroke message the endpoint takes. */
const MAX_INPUT_BYTES = 4096;
/** After stdin ends (piped input), how long output is still shown before the session is closed. */
const EOF_GRACE_MS = 1_000;

export interface ConsoleCredentials {
  cert?: Buffer;
  key?: Buffer;
  /** The `Authorization` header value (`Bearer …`). */
  authorization?: string;
}

export interface ConsoleEndpoint {
  address: string;
  ca: Buffer;
  /** The name the server certificate must carry, when it is not the address's host. */
  serverName?: string;
}

export interface ConsoleTerminal {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: { write(data: Uint8Array | string): unknown };
  stderr: { write(text: string): unknown };
}

export interface ConsoleRequestOptions {
  vmName: string;
  namespace: string;
  history: boolean;
  address?: string;
  caFile?: string;
  serverName?: string;
  endpointNamespace: string;
}

/** The bytes of `chunk` before the escape byte, and whether it was there. */
export function splitAtEscape(chunk: Buffer): { before: Buffer; escaped: boolean } {
  const at = chunk.indexOf(ESCAPE_BYTE);
  return at === -1 ? { before: chunk, escaped: false } : { before: chunk.subarray(0, at), escaped: true };
}

/** `data` cut into messages the endpoint accepts. */
export function inputMessages(data: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let start = 0; start < data.length; start += MAX_INPUT_BYTES)
    parts.push(data.subarray(start, start + MAX_INPUT_BYTES));
  return parts;
}

/** The endpoint from the flags, else from the ConfigMap the operator published. */
export async function findConsoleEndpoint(
  client: KubeClient,
  options: ConsoleRequestOptions,
): Promise<ConsoleEndpoint> {
  let published: Record<string, string> | undefined;
  if (options.address === undefined || options.caFile === undefined) {
    try {
      published = (
        await client.get<KubeObject & { data?: Record<string, string> }>(
          ConfigMaps,
          CONSOLE_CONFIGMAP,
          options.endpointNamespace,
        )
      ).data;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new CliError(
        `no console endpoint: ConfigMap ${options.endpointNamespace}/${CONSOLE_CONFIGMAP} not found (is the operator's console enabled? or pass --console-address and --console-ca)`,
      );
    }
  }
  const address = options.address ?? published?.address;
  const ca = options.caFile !== undefined ? await readFile(options.caFile) : published?.['ca.crt'];
  if (address === undefined || ca === undefined) {
    throw new CliError(
      `ConfigMap ${options.endpointNamespace}/${CONSOLE_CONFIGMAP} lacks "address" or "ca.crt"`,
    );
  }
  return {
    address,
    ca: Buffer.from(ca),
    ...(options.serverName !== undefined ? { serverName: options.serverName } : {}),
  };
}

/** Runs one session; resolves to the exit code. */
export async function runConsole(
  endpoint: ConsoleEndpoint,
  credentials: ConsoleCredentials,
  options: ConsoleRequestOptions,
  terminal: ConsoleTerminal,
): Promise<number> {
  const label = `${options.namespace}/${options.vmName}`;
  const { Console } = loadConsoleProto();
  const client = new Console(
    endpoint.address,
    grpc.credentials.createSsl(endpoint.ca, credentials.key ?? null, credentials.cert ?? null),
    endpoint.serverName !== undefined ? { 'grpc.ssl_target_name_override': endpoint.serverName } : {},
  );
  const metadata = new grpc.Metadata();
  if (credentials.authorization !== undefined) metadata.set('authorization', credentials.authorization);
  const call = client.attach(metadata);
  const { stdin, stdout, stderr } = terminal;
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  // In raw mode a line ends with \r only: Tern's own lines bring the cursor back to the left.
  const line = (text: string): void => void stderr.write(`${raw ? '\r\n' : ''}${text}${raw ? '\r\n' : '\n'}`);
  let connected = false;

  return new Promise<number>((resolve) => {
    let settled = false;
    let eofTimer: NodeJS.Timeout | undefined;
    const restore = (): void => {
      if (raw) stdin.setRawMode!(false);
    };
    const onSignal = (): void => done(130);
    const done = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(eofTimer);
      stdin.off('data', onInput);
      stdin.off('end', onEnd);
      // Paused, a piped stdin would still hold the process open.
      (stdin as { destroy?: () => void }).destroy?.();
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      process.off('exit', restore);
      restore();
      call.cancel();
      client.close();
      resolve(code);
    };
    const onInput = (chunk: Buffer | string): void => {
      const { before, escaped } = splitAtEscape(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      for (const data of inputMessages(before)) call.write({ data } satisfies ConsoleRequest);
      if (escaped) {
        line('');
        done(0);
      }
    };
    const onEnd = (): void => {
      eofTimer = setTimeout(() => done(0), EOF_GRACE_MS);
    };

    call.on('data', (response: ConsoleResponse__Output) => {
      if (response.notice !== '') {
        if (!connected) {
          connected = true;
          line(`Successfully connected to ${label} console. The escape sequence is ^]`);
        } else line(`${raw ? '' : '\n'}[tern] ${response.notice}`); // on a line of its own
      }
      if (response.data.length > 0) stdout.write(response.data);
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (settled) return;
      line(`error: ${error.details || error.message}`);
      done(1);
    });
    call.on('end', () => done(0));

    call.write({ attach: { namespace: options.namespace, name: options.vmName, history: options.history } });
    if (raw) {
      stdin.setRawMode!(true);
      process.once('exit', restore);
    }
    process.once('SIGTERM', onSignal);
    process.once('SIGHUP', onSignal);
    stdin.on('data', onInput);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}
