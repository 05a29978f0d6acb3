import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FENCING_REFUSED_METADATA } from '../../../proto/index.js';
import { RpcError } from './errors.js';
import { FENCING_FILE, FencingStore } from './fencing.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'fencing-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The refusal `promise` rejects with (fails the test when it resolves). */
async function refusal(promise: Promise<unknown>): Promise<RpcError> {
  const error = await promise.then(
    () => undefined,
    (rejected: unknown) => rejected,
  );
  expect(error).toBeInstanceOf(RpcError);
  return error as RpcError;
}

/** A call carrying `token` with nothing to run. */
const admit = (store: FencingStore, token: number, changesGuest: boolean) =>
  store.run(token, changesGuest, () => undefined);

describe('FencingStore', () => {
  it('starts at token 0 without a file, and admits any token', async () => {
    const store = await FencingStore.open(dir);
    expect(store.highestToken).toBe(0);
    await admit(store, 0, true);
    await admit(store, 3, true);
    expect(store.highestToken).toBe(3);
  });

  it('refuses a guest-changing call with an older token, with PERMISSION_DENIED and the highest token', async () => {
    const store = await FencingStore.open(dir);
    await admit(store, 5, false);
    await admit(store, 5, true); // the same leader again
    const error = await refusal(admit(store, 4, true));
    expect(error.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error.message).toBe(
      "the operator's fencing token 4 is older than 5 seen on this node: a newer leader runs",
    );
    expect(error.metadata?.get(FENCING_REFUSED_METADATA)).toEqual(['5']);
    expect(store.highestToken).toBe(5);
  });

  it('says so when the refused token is the one of an operator without leader election', async () => {
    const store = await FencingStore.open(dir);
    await admit(store, 2, true);
    const error = await refusal(admit(store, 0, true));
    expect(error.message).toMatch(/token 0 \(no leader election, or no token sent\) is older than 2/);
  });

  it('never refuses a read, and a read with a higher token raises the bar for guest-changing calls', async () => {
    const store = await FencingStore.open(dir);
    await admit(store, 7, false);
    await admit(store, 1, false);
    expect(store.highestToken).toBe(7);
    await refusal(admit(store, 6, true));
  });

  it('keeps the highest token and the epochs across a reopen (a daemon restart)', async () => {
    const first = await FencingStore.open(dir);
    await admit(first, 9, false);
    await first.admitEpoch('vm-a', 4);
    const second = await FencingStore.open(dir);
    expect(second.highestToken).toBe(9);
    expect(second.highestEpoch('vm-a')).toBe(4);
    await refusal(admit(second, 8, true));
    // Written aside and renamed over: no temporary file is left.
    expect(await readdir(dir)).toEqual([FENCING_FILE]);
  });

  it('has a rise on disk before the call that brought it goes on, also for calls that arrive together', async () => {
    const store = await FencingStore.open(dir);
    await Promise.all([admit(store, 2, true), admit(store, 3, true), admit(store, 3, false)]);
    expect(JSON.parse(await readFile(path.join(dir, FENCING_FILE), 'utf8'))).toEqual({
      token: 3,
      epochs: {},
    });
    // The older of two concurrent calls is refused once the newer one was seen.
    const [newer, older] = await Promise.allSettled([admit(store, 5, true), admit(store, 4, true)]);
    expect(newer.status).toBe('fulfilled');
    expect(older.status).toBe('rejected');
  });

  it("answers a newer leader only once the older leader's changes under way have finished", async () => {
    const store = await FencingStore.open(dir);
    const events: string[] = [];
    let finishOld = (): void => undefined;
    const old = store.run(
      1,
      true,
      () => new Promise<void>((resolve) => (finishOld = () => resolve(void events.push('old change done')))),
    );
    const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
    await tick(); // the old leader's change was admitted and is under way
    const read = store.run(2, false, () => events.push('new leader read'));
    const sameTermChange = store.run(1, true, () => events.push('old leader change'));
    await tick();
    expect(events).toEqual([]);
    finishOld();
    await Promise.all([old, read]);
    expect(events).toEqual(['old change done', 'new leader read']);
    // Admitted after the newer token arrived: refused, although the same term's first change ran.
    await refusal(sameTermChange);
    // Changes of the same term do not wait for each other.
    let finishCurrent = (): void => undefined;
    const current = store.run(2, true, () => new Promise<void>((resolve) => (finishCurrent = resolve)));
    await tick();
    await store.run(2, true, () => events.push('second change of term 2'));
    finishCurrent();
    await current;
  });

  it('refuses to open a file that is not a fencing record, rather than forget the token', async () => {
    await writeFile(path.join(dir, FENCING_FILE), '{"token":"x"}');
    await expect(FencingStore.open(dir)).rejects.toThrow(/is not a fencing record/);
  });

  it('refuses a hand-over with an older ownership epoch of the guest; 0 (not sent) is not checked', async () => {
    const store = await FencingStore.open(dir);
    await admit(store, 3, true);
    await store.admitEpoch('vm-a', 5);
    await store.admitEpoch('vm-a', 5);
    await store.admitEpoch('vm-b', 1); // another guest has its own count
    await store.admitEpoch('vm-a', 0);
    const error = await refusal(store.admitEpoch('vm-a', 4));
    expect(error.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error.message).toBe(
      'the ownership epoch 4 of guest vm-a is older than 5 seen on this node: the record moved since the caller ' +
        'read it',
    );
    expect(error.metadata?.get(FENCING_REFUSED_METADATA)).toEqual(['3']);
    await store.admitEpoch('vm-a', 6);
    expect(store.highestEpoch('vm-a')).toBe(6);
  });

  it('raiseEpoch refuses an older epoch at once, before the caller goes on; the rise is on disk when it settles', async () => {
    const store = await FencingStore.open(dir);
    await store.admitEpoch('vm-a', 5);
    // Thrown, not a rejected promise: ResumeTarget writes its resume mark only after this returned.
    expect(() => store.raiseEpoch('vm-a', 4)).toThrow(RpcError);
    const rise = store.raiseEpoch('vm-a', 6);
    // Raised in memory at once: a later older call is refused even before the rise is on disk.
    expect(store.highestEpoch('vm-a')).toBe(6);
    await rise;
    expect((await FencingStore.open(dir)).highestEpoch('vm-a')).toBe(6);
  });

  it('forgets the epochs of guests that left the node', async () => {
    const store = await FencingStore.open(dir);
    await store.admitEpoch('gone', 3);
    await store.admitEpoch('kept', 2);
    await store.admitEpoch('deleted', 7);
    await store.forgetGuest('deleted');
    await store.keepGuests(['kept']);
    const reopened = await FencingStore.open(dir);
    expect(reopened.highestEpoch('gone')).toBe(0);
    expect(reopened.highestEpoch('deleted')).toBe(0);
    expect(reopened.highestEpoch('kept')).toBe(2);
    await reopened.admitEpoch('deleted', 1); // a VM of that name recreated starts at 1
  });

  it('fails the call when the rise cannot be written, and writes it with the next call', async () => {
    const store = await FencingStore.open(path.join(dir, 'state'));
    // A file where the state dir should be: the write fails.
    await writeFile(path.join(dir, 'state'), '');
    await expect(admit(store, 4, true)).rejects.toThrow();
    // The bar stays raised in memory: an older token is still refused.
    await refusal(admit(store, 3, true));
    await rm(path.join(dir, 'state'));
    await admit(store, 4, true);
    expect((await FencingStore.open(path.join(dir, 'state'))).highestToken).toBe(4);
  });
});
