// The AttachConsole call (control.proto): one bidirectional stream per console session, over the console hub.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ConsoleInput__Output, ConsoleOutput } from '../../../proto/index.js';
import type { OperatorCalls } from '../rpc/calls.js';
import { serviceError } from '../rpc/errors.js';
import { readHistory } from './history.js';
import { ConsoleBusyError, type ConsoleHub } from './hub.js';

/** The largest keystroke message a session may send. */
export const MAX_INPUT_BYTES = 4096;
/** Output messages a session may leave unread before it is cut off (the hub never waits for a viewer). */
const MAX_BUFFERED_OUTPUT = 1024;
/** How long the first request (which guest) may take. */
const OPEN_TIMEOUT_MS = 10_000;

type ConsoleCall = grpc.ServerDuplexStream<ConsoleInput__Output, ConsoleOutput>;

export function attachConsoleHandler(
  hub: ConsoleHub,
  pathOfLog: (name: string) => string,
  calls: OperatorCalls,
  logger: Logger,
): grpc.handleBidiStreamingCall<ConsoleInput__Output, ConsoleOutput> {
  return (call: ConsoleCall) => {
    if (!calls.admitStream('AttachConsole', call as unknown as grpc.ServerWritableStream<unknown, unknown>))
      return;
    let attached: { write(data: Buffer): void; detach(): void } | undefined;
    let over = false;
    const fail = (code: grpc.status, message: string): void => {
      if (over) return;
      over = true;
      attached?.detach();
      call.emit('error', serviceError(code, message));
    };
    const finish = (): void => {
      over = true;
      attached?.detach();
    };
    const openTimer = setTimeout(
      () => fail(grpc.status.DEADLINE_EXCEEDED, 'no open request within 10 s'),
      OPEN_TIMEOUT_MS,
    );
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('end', () => {
      if (!over) {
        finish();
        call.end();
      }
    });

    call.on('data', (request: ConsoleInput__Output) => {
      if (over) return;
      if (attached !== undefined) {
        if (request.data.length > MAX_INPUT_BYTES) {
          fail(grpc.status.INVALID_ARGUMENT, `console input above ${MAX_INPUT_BYTES} bytes in one message`);
          return;
        }
        if (request.data.length > 0) attached.write(request.data);
        return;
      }
      clearTimeout(openTimer);
      const open = request.open;
      if (open === null || open.name === '') {
        fail(grpc.status.INVALID_ARGUMENT, 'the first request must name the guest (open.name)');
        return;
      }
      // Live output is held back until the history has been sent, so that it follows the history in order.
      let held: Buffer[] | undefined = [];
      const send = (data: Buffer): void => {
        if (over) return;
        if (call.writableLength >= MAX_BUFFERED_OUTPUT) {
          fail(grpc.status.RESOURCE_EXHAUSTED, 'console client too slow; attach again');
          return;
        }
        call.write({ data });
      };
      try {
        attached = hub.attach(open.name, {
          output: (data) => (held !== undefined ? held.push(data) : send(data)),
          end: (why) => {
            if (over) return;
            over = true;
            call.write({ ended: why });
            call.end();
          },
        });
      } catch (error) {
        const busy = error instanceof ConsoleBusyError;
        fail(busy ? grpc.status.ALREADY_EXISTS : grpc.status.NOT_FOUND, (error as Error).message);
        return;
      }
      logger.info({ guest: open.name, historyBytes: open.historyBytes }, 'console attached');
      // An empty first message says the session is attached (the caller may tell its user).
      call.write({});
      call.on('close', () => logger.info({ guest: open.name }, 'console detached'));
      readHistory(pathOfLog(open.name), open.historyBytes)
        .catch((error: unknown) => {
          logger.warn({ guest: open.name, err: error }, 'could not read the console history');
          return Buffer.alloc(0);
        })
        .then((history) => {
          const pending = held ?? [];
          held = undefined;
          if (history.length > 0) send(history);
          for (const data of pending) send(data);
        })
        .catch(() => undefined);
    });
  };
}
