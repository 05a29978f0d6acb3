import type { Socket } from 'node:net';
import { spliceChannel } from './channel.js';
import { pattern, readAll, socketDir, socketPair } from './test-sockets.js';

describe('spliceChannel', () => {
  const dir = socketDir();
  let n = 0;
  // qemu = the QEMU stand-in, far = the peer daemon's end of the link; the tunnel holds the other two ends.
  const setup = async (limit?: number, graceMs?: number) => {
    const [qemu, qemuSide] = await socketPair(dir.path(`q${n}`));
    const [linkSide, far] = await socketPair(dir.path(`l${n++}`));
    const channel = spliceChannel(0, qemuSide, linkSide, 'source', limit, graceMs);
    return { qemu, far, channel, qemuSide, linkSide };
  };

  afterAll(() => dir.remove());

  it('carries both directions at once and forwards each end as a half-close', async () => {
    const { qemu, far, channel } = await setup();
    const out = pattern(4 << 20, 1);
    const back = pattern(2 << 20, 2);
    const received = readAll(far);
    const returned = readAll(qemu);
    qemu.end(out);
    far.end(back);
    expect((await received).equals(out)).toBe(true);
    expect((await returned).equals(back)).toBe(true);
    const result = await channel.done;
    expect(result.error).toBeUndefined();
    expect(result.stats).toMatchObject({
      index: 0,
      toTarget: { bytes: out.length },
      toSource: { bytes: back.length },
    });
  });

  it('keeps the return path open after QEMU finished sending', async () => {
    const { qemu, far, channel } = await setup();
    const returned = readAll(qemu);
    qemu.end(Buffer.from('last page'));
    expect((await readAll(far)).toString()).toBe('last page');
    far.end(Buffer.from('SHUT'));
    expect((await returned).toString()).toBe('SHUT');
    expect((await channel.done).error).toBeUndefined();
  });

  it('stalls a writer whose reader is slow, with at most the bound (plus one read) held by the tunnel', async () => {
    const limit = 256 << 10;
    const total = 32 << 20;
    const { qemu, far, channel } = await setup(limit);
    far.pause();
    const data = pattern(total, 3);
    let accepted = 0;
    const writer = (async () => {
      for (let off = 0; off < total; off += 64 << 10) {
        const chunk = data.subarray(off, off + (64 << 10));
        if (!qemu.write(chunk, () => (accepted += chunk.length)))
          await new Promise((r) => qemu.once('drain', r));
      }
      qemu.end();
    })();
    await waitForStall(() => accepted);
    // What left the writer sits in the tunnel or in the kernel buffers of the two socket pairs (a few 100 KiB).
    expect(accepted).toBeLessThan(4 << 20);
    expect(channel.stats.toTarget.maxInFlight).toBeGreaterThanOrEqual(limit);
    expect(channel.stats.toTarget.maxInFlight).toBeLessThanOrEqual(limit + (64 << 10));
    const received = readAll(far);
    far.resume();
    await writer;
    expect((await received).equals(data)).toBe(true);
    far.end();
    await channel.done;
    expect(channel.stats.toTarget.maxInFlight).toBeLessThanOrEqual(limit + (64 << 10));
  });

  it('destroys both sides when the link breaks, and reports why', async () => {
    const { qemu, far, channel, qemuSide } = await setup();
    const qemuGot = readAll(qemu);
    far.destroy();
    // QEMU keeps sending into a tunnel whose peer is gone: the write fails and the whole channel goes.
    const sender = setInterval(() => qemu.write(pattern(64 << 10, 4)), 5);
    const result = await channel.done;
    clearInterval(sender);
    await qemuGot;
    expect(qemuSide.destroyed).toBe(true);
    expect(result.error?.message).toMatch(/^channel 0 link: /);
  });

  it('destroys a channel left half-open longer than the grace period', async () => {
    const { qemu, far, channel } = await setup(undefined, 200);
    const farGot = readAll(far);
    qemu.end('done'); // ...but the far side never closes its direction
    expect((await farGot).toString()).toBe('done');
    const result = await channel.done;
    expect(result.error?.message).toMatch(/ended; channel did not close in time/);
  });

  it('destroys both sides on abort', async () => {
    const { qemu, far, channel, qemuSide, linkSide } = await setup();
    const ends = Promise.all([readAll(qemu), readAll(far)]);
    channel.abort(new Error('migration cancelled'));
    await ends;
    expect((qemuSide as Socket).destroyed && (linkSide as Socket).destroyed).toBe(true);
    expect((await channel.done).error?.message).toBe('migration cancelled');
  });
});

/** Resolves once `progress()` has not moved for 300 ms. */
async function waitForStall(progress: () => number): Promise<void> {
  let last = -1;
  while (progress() !== last) {
    last = progress();
    await new Promise((r) => setTimeout(r, 300));
  }
}
