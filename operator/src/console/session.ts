// One user's console session: authenticated and authorized once, then proxied to the daemon of the node the VM's
// ownership record (status.node) names. When the daemon's stream ends (the guest stopped on that node, the daemon
// restarted, a migration handed the VM over), the record is read again: the session follows the VM to its new node
// and says so, or ends with the reason.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  HypervisorNodes,
  VirtualMachines,
  type HypervisorNode,
  type VirtualMachine,
} from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { isNotFound } from '../../../kube/errors.js';
import type {
  ConsoleInput,
  ConsoleOutput__Output,
  ConsoleRequest__Output,
  ConsoleResponse,
} from '../../../proto/index.js';
import type { DaemonClientPool } from '../daemon/client-pool.js';
import { guestName } from '../daemon/guest-key.js';
import { AuthenticationError, type KubeAuthenticator } from './auth.js';
import { attachNotice, nextConsoleStep } from './follow.js';

/** History a session asks for with `history` set. */
export const HISTORY_BYTES = 16 * 1024;
/** The largest keystroke message. */
export const MAX_INPUT_BYTES = 4096;
/** Output messages the user may leave unread before the session is cut off. */
const MAX_BUFFERED_OUTPUT = 1024;
/** How long a session waits for the VM to be reachable again before it gives up. */
const DEFAULT_REATTACH_TIMEOUT_MS = 60_000;
const RETRY_MS = 500;

export interface ConsoleSessionOptions {
  client: KubeClient;
  authenticator: KubeAuthenticator;
  pool: DaemonClientPool;
  logger: Logger;
  reattachTimeoutMs?: number;
}

type UserCall = grpc.ServerDuplexStream<ConsoleRequest__Output, ConsoleResponse>;
type DaemonStream = grpc.ClientDuplexStream<ConsoleInput, ConsoleOutput__Output>;

class SessionEnd extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** How one attach to a daemon ended. */
type AttachOutcome =
  | { kind: 'detached'; why: string }
  | { kind: 'refused'; code: grpc.status; message: string }
  | { kind: 'user-gone' };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function consoleAttachHandler(
  options: ConsoleSessionOptions,
): grpc.handleBidiStreamingCall<ConsoleRequest__Output, ConsoleResponse> {
  return (call: UserCall) => void new ConsoleSession(call, options).run();
}

class ConsoleSession {
  private daemon?: DaemonStream;
  private userGone = false;
  private over = false;
  private readonly gone: Promise<void>;
  private first: Promise<ConsoleRequest__Output>;

  constructor(
    private readonly call: UserCall,
    private readonly options: ConsoleSessionOptions,
  ) {
    this.gone = new Promise((resolve) => {
      const leave = (): void => {
        this.userGone = true;
        this.daemon?.cancel();
        resolve();
      };
      call.on('cancelled', leave);
      call.on('end', leave);
      call.on('error', leave);
    });
    this.first = new Promise((resolve, reject) => {
      call.once('data', resolve);
      setTimeout(
        () => reject(new SessionEnd(grpc.status.DEADLINE_EXCEEDED, 'no attach request within 10 s')),
        10_000,
      ).unref();
    });
  }

  async run(): Promise<void> {
    try {
      await this.serve();
    } catch (error) {
      const end =
        error instanceof SessionEnd
          ? error
          : error instanceof AuthenticationError
            ? new SessionEnd(grpc.status.UNAUTHENTICATED, error.message)
            : new SessionEnd(grpc.status.INTERNAL, error instanceof Error ? error.message : String(error));
      if (end.code === grpc.status.INTERNAL)
        this.options.logger.error({ err: error }, 'console session failed');
      this.fail(end);
    }
  }

  private async serve(): Promise<void> {
    const { authenticator, logger } = this.options;
    const request = await this.first;
    const attach = request.attach;
    if (attach === null || attach.name === '' || attach.namespace === '') {
      throw new SessionEnd(
        grpc.status.INVALID_ARGUMENT,
        'the first request must name the VM (attach.namespace, attach.name)',
      );
    }
    const label = `${attach.namespace}/${attach.name}`;
    const user = await authenticator.authenticate(
      this.call.metadata.get('authorization')[0]?.toString(),
      this.call.getAuthContext().sslPeerCertificate,
    );
    const access = await authenticator.mayAttach(user, attach.namespace, attach.name);
    if (!access.allowed) {
      logger.info({ user: user.username, vm: label }, 'console refused');
      throw new SessionEnd(
        grpc.status.PERMISSION_DENIED,
        `user "${user.username}" cannot get virtualmachines/console of ${label} (group tern.dev)${access.reason ? `: ${access.reason}` : ''}`,
      );
    }
    const vm = await this.readVm(attach.namespace, attach.name);
    if (vm === undefined) throw new SessionEnd(grpc.status.NOT_FOUND, `VM ${label} not found`);
    const uid = guestName(vm);
    const initial = nextConsoleStep(vm, uid, label);
    if (initial.kind !== 'attach') {
      throw new SessionEnd(
        grpc.status.FAILED_PRECONDITION,
        initial.kind === 'end' ? initial.message : `${initial.why}; it has no console yet`,
      );
    }
    logger.info({ user: user.username, vm: label, node: initial.node }, 'console session');

    this.call.on('data', (input: ConsoleRequest__Output) => {
      if (input.data.length > MAX_INPUT_BYTES) {
        this.fail(
          new SessionEnd(
            grpc.status.INVALID_ARGUMENT,
            `console input above ${MAX_INPUT_BYTES} bytes in one message`,
          ),
        );
        return;
      }
      if (input.data.length > 0 && this.daemon?.writable === true) this.daemon.write({ data: input.data });
    });

    let previous: string | undefined;
    let deadline = Date.now() + (this.options.reattachTimeoutMs ?? DEFAULT_REATTACH_TIMEOUT_MS);
    let lastProblem = '';
    while (!this.userGone && !this.over) {
      const step = nextConsoleStep(await this.readVm(attach.namespace, attach.name), uid, label);
      if (step.kind === 'end') {
        this.finish(step.message);
        return;
      }
      const endpoint = step.kind === 'attach' ? await this.endpointOf(step.node) : undefined;
      if (step.kind === 'wait' || endpoint === undefined) {
        lastProblem = step.kind === 'wait' ? step.why : `node ${step.node} has no endpoint`;
      } else {
        const outcome = await this.attachOnce(
          step.node,
          endpoint,
          uid,
          previous === undefined && attach.history,
          (node) => {
            this.notice(attachNotice(label, node, previous));
            previous = node;
            deadline = Date.now() + (this.options.reattachTimeoutMs ?? DEFAULT_REATTACH_TIMEOUT_MS);
          },
        );
        if (outcome.kind === 'user-gone') return;
        if (outcome.kind === 'refused' && outcome.code === grpc.status.ALREADY_EXISTS) {
          throw new SessionEnd(grpc.status.ALREADY_EXISTS, `VM ${label}: ${outcome.message}`);
        }
        lastProblem = outcome.kind === 'refused' ? `node ${step.node}: ${outcome.message}` : outcome.why;
        logger.info({ vm: label, node: step.node, why: lastProblem }, 'console detached from node');
      }
      if (Date.now() > deadline) {
        throw new SessionEnd(grpc.status.UNAVAILABLE, `VM ${label}: console unreachable (${lastProblem})`);
      }
      await Promise.race([sleep(RETRY_MS), this.gone]);
    }
  }

  /** One daemon session; `attached` is called when the daemon accepted it. */
  private attachOnce(
    node: string,
    endpoint: string,
    uid: string,
    history: boolean,
    attached: (node: string) => void,
  ): Promise<AttachOutcome> {
    return new Promise((resolve) => {
      const daemon = this.options.pool.guestClient(node, endpoint).attachConsole();
      this.daemon = daemon;
      let accepted = false;
      let ended = '';
      daemon.on('data', (output: ConsoleOutput__Output) => {
        if (!accepted) {
          accepted = true;
          attached(node);
        }
        if (output.ended !== '') ended = output.ended;
        if (output.data.length > 0) this.send({ data: output.data });
      });
      daemon.on('error', (error: grpc.ServiceError) => {
        if (this.userGone) resolve({ kind: 'user-gone' });
        else if (!accepted)
          resolve({ kind: 'refused', code: error.code, message: error.details || error.message });
        else resolve({ kind: 'detached', why: `node ${node}: ${error.details || error.message}` });
      });
      daemon.on('end', () => {
        if (this.userGone) resolve({ kind: 'user-gone' });
        else resolve({ kind: 'detached', why: `node ${node}: ${ended || 'the console closed'}` });
      });
      daemon.write({ open: { name: uid, historyBytes: history ? HISTORY_BYTES : 0 } });
    }).finally(() => {
      this.daemon = undefined;
    }) as Promise<AttachOutcome>;
  }

  private async readVm(namespace: string, name: string): Promise<VirtualMachine | undefined> {
    try {
      return await this.options.client.get<VirtualMachine>(VirtualMachines, name, namespace);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async endpointOf(node: string): Promise<string | undefined> {
    try {
      return (await this.options.client.get<HypervisorNode>(HypervisorNodes, node)).status?.endpoint;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private send(response: ConsoleResponse): void {
    if (this.over || this.userGone) return;
    if (this.call.writableLength >= MAX_BUFFERED_OUTPUT) {
      this.fail(new SessionEnd(grpc.status.RESOURCE_EXHAUSTED, 'console client too slow; attach again'));
      return;
    }
    this.call.write(response);
  }

  private notice(text: string): void {
    this.send({ notice: text });
  }

  /** Ends the session normally, with a last notice. */
  private finish(message: string): void {
    if (this.over) return;
    this.notice(message);
    this.over = true;
    this.call.end();
  }

  private fail(end: SessionEnd): void {
    if (this.over || this.userGone) return;
    this.over = true;
    this.daemon?.cancel();
    this.call.emit('error', {
      code: end.code,
      details: end.message,
      message: end.message,
      metadata: new grpc.Metadata(),
    });
  }
}
