// What keeps a deposed operator from acting on this node (docs/architecture.md "The hand-over rule"): the highest
// fencing token seen on any operator call, and per guest the highest ownership epoch seen on a hand-over call.
// Both only rise, and are kept in <state>/.fencing.json, so that a daemon restart does not forget them. A rise is
// on disk before the call that brought it goes on: a daemon that crashed right after it cannot come back lower.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FENCING_REFUSED_METADATA, UNFENCED_TOKEN } from '../../../proto/index.js';
import { RpcError } from './errors.js';

export const FENCING_FILE = '.fencing.json';

interface FencingFile {
  token: number;
  /** Highest ownership epoch seen per guest (by its name on this node). */
  epochs: Record<string, number>;
}

/** A call refused because it acts on an older view than this node has seen: PERMISSION_DENIED, with the token. */
export function fencingRefusal(message: string, highestToken: number): RpcError {
  const metadata = new grpc.Metadata();
  metadata.set(FENCING_REFUSED_METADATA, String(highestToken));
  return new RpcError(grpc.status.PERMISSION_DENIED, message, metadata);
}

export class FencingStore {
  /** Writes of the state, one after the other. */
  private writing: Promise<void> = Promise.resolve();
  /** The state as last written to disk. */
  private durable: FencingFile;
  /** Guest-changing calls admitted and not yet answered, with their tokens. */
  private readonly changesUnderWay = new Set<{ token: number; done: Promise<void> }>();

  private constructor(
    private readonly file: string,
    private readonly state: FencingFile,
  ) {
    this.durable = structuredClone(state);
  }

  /** The store of a state dir; a file that is there but unreadable is an error (forgetting it would be unsafe). */
  static async open(stateRoot: string): Promise<FencingStore> {
    const file = path.join(stateRoot, FENCING_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return new FencingStore(file, { token: 0, epochs: {} });
    }
    const parsed = parseFencingFile(text);
    if (!parsed) {
      throw new Error(
        `${file} is not a fencing record: remove it only if no operator older than the current one can still ` +
          'reach this daemon',
      );
    }
    return new FencingStore(file, parsed);
  }

  /** The highest token seen. */
  get highestToken(): number {
    return this.state.token;
  }

  /** The highest ownership epoch seen for `guest` (0: none). */
  highestEpoch(guest: string): number {
    return this.state.epochs[guest] ?? 0;
  }

  /**
   * Runs `call` (one operator call carrying `token`) under the fencing rules: a token higher than any seen is
   * recorded, on disk before the call goes on; a guest-changing call with a lower token is refused (a read never
   * is). A call with a token above that of guest-changing calls still under way (admitted before a newer leader
   * called) waits for them first: once this node has answered a leader, no older leader's change runs here any
   * more, and what those changes did is what the leader sees.
   */
  async run<T>(token: number, changesGuest: boolean, call: () => Promise<T> | T): Promise<T> {
    const highest = this.state.token;
    if (token < highest && changesGuest) {
      const message =
        token === UNFENCED_TOKEN
          ? `the operator's fencing token ${token} (no leader election, or no token sent) is older than ` +
            `${highest} seen on this node: an elected leader has called it, so only an elected leader may`
          : `the operator's fencing token ${token} is older than ${highest} seen on this node: a newer leader runs`;
      throw fencingRefusal(message, highest);
    }
    if (token > highest) this.state.token = token;
    let finished = (): void => undefined;
    const change = changesGuest
      ? { token, done: new Promise<void>((resolve) => (finished = resolve)) }
      : undefined;
    if (change) this.changesUnderWay.add(change);
    try {
      await this.persistUnlessDurable();
      const older = [...this.changesUnderWay].filter((other) => other.token < token);
      await Promise.all(older.map((other) => other.done));
      return await call();
    } finally {
      if (change) this.changesUnderWay.delete(change);
      finished();
    }
  }

  /**
   * Admits a hand-over call that shows the guest's ownership record at `epoch` (0: not sent, nothing checked):
   * records it when it is the highest yet for the guest, refuses a lower one.
   */
  async admitEpoch(guest: string, epoch: number): Promise<void> {
    await this.raiseEpoch(guest, epoch);
  }

  /**
   * admitEpoch in two parts: the check and the rise happen now (a refusal is thrown at once, before anything else
   * of the call runs), and the promise settles once the rise is on disk. ResumeTarget writes its resume mark
   * meanwhile and runs the guest only once both are durable (docs/architecture.md, "The switchover's critical
   * path").
   */
  raiseEpoch(guest: string, epoch: number): Promise<void> {
    if (epoch === 0) return Promise.resolve();
    const highest = this.highestEpoch(guest);
    if (epoch < highest) {
      throw fencingRefusal(
        `the ownership epoch ${epoch} of guest ${guest} is older than ${highest} seen on this node: the record ` +
          'moved since the caller read it',
        this.state.token,
      );
    }
    this.state.epochs[guest] = epoch;
    return this.persistUnlessDurable();
  }

  /**
   * Forgets a guest that left this node: a later guest of that name (the VM recreated, the guest back) starts its
   * own count; a hand-over call of a migration that ended here is refused by the migration's stage anyway.
   */
  async forgetGuest(guest: string): Promise<void> {
    if (!(guest in this.state.epochs)) return;
    delete this.state.epochs[guest];
    await this.persistUnlessDurable();
  }

  /** Daemon start: forgets the epochs of guests that are not on this node any more. */
  async keepGuests(guests: readonly string[]): Promise<void> {
    const kept = new Set(guests);
    for (const guest of Object.keys(this.state.epochs)) if (!kept.has(guest)) delete this.state.epochs[guest];
    await this.persistUnlessDurable();
  }

  /** Waits for the state to be on disk; writes it when what is there differs (also after a failed write). */
  private async persistUnlessDurable(): Promise<void> {
    for (;;) {
      await this.writing;
      if (sameState(this.state, this.durable)) return;
      // A rejected write stays the one this call sees; the next call writes again.
      this.writing = this.writing
        .then(() => this.write())
        .catch((error: unknown) => {
          this.writing = Promise.resolve();
          throw error;
        });
    }
  }

  /** Written aside, flushed, and renamed over: a crash leaves the old record or the new one. */
  private async write(): Promise<void> {
    const snapshot = structuredClone(this.state);
    const aside = `${this.file}.tmp`;
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const handle = await open(aside, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(snapshot));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(aside, this.file);
    this.durable = snapshot;
  }
}

function sameState(a: FencingFile, b: FencingFile): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function parseFencingFile(text: string): FencingFile | undefined {
  try {
    const value = JSON.parse(text) as Partial<FencingFile>;
    const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (!isCount(value.token) || typeof value.epochs !== 'object' || value.epochs === null) return undefined;
    if (!Object.values(value.epochs).every(isCount)) return undefined;
    return { token: value.token, epochs: { ...value.epochs } };
  } catch {
    return undefined;
  }
}
