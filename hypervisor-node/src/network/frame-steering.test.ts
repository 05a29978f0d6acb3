import { spawn } from 'node:child_process';
import { BridgeBatch } from './fdb.js';
import { FrameSender, FrameSteerer, rarpFrame } from './frame-steering.js';

it("builds QEMU's announce frame: a broadcast RARP request from and for the MAC, padded to 60 bytes", () => {
  const frame = rarpFrame('52:54:00:AB:cd:01');
  expect(frame).toHaveLength(60);
  expect(frame.subarray(0, 14).toString('hex')).toBe('ffffffffffff525400abcd018035');
  // htype 1, ptype IPv4, hlen 6, plen 4, op 3; sender and target the MAC with IP 0.0.0.0.
  expect(frame.subarray(14, 42).toString('hex')).toBe(
    '00010800060400035254' + '00abcd01' + '00000000' + '525400abcd01' + '00000000',
  );
  expect(frame.subarray(42).every((byte) => byte === 0)).toBe(true);
  expect(() => rarpFrame('52:54:00:ab:cd')).toThrow(/not a MAC/);
});

/** A stand-in for the perl sender: prints "ready", then, on a line from stdin, runs `onGo` (sh). */
function fakeSender(onGo: string, args: string[][] = []) {
  return (perlArgs: string[]) => {
    args.push(perlArgs);
    return spawn('sh', ['-c', `echo ready; read line || exit 0; ${onGo}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  };
}

it('a FrameSender gets the interface and the frames in hex, and sends only when told', async () => {
  const args: string[][] = [];
  const sender = new FrameSender('br0', [rarpFrame('52:54:00:00:00:01')], fakeSender('exit 0', args));
  await expect(sender.ready).resolves.toBe(true);
  expect(args[0]!.slice(2)).toEqual(['br0', rarpFrame('52:54:00:00:00:01').toString('hex')]);
  await expect(sender.send()).resolves.toEqual([]);
  await expect(sender.send()).rejects.toThrow(/used already/);
});

it('a FrameSender reports the failure its program printed, and one that cannot run', async () => {
  const failing = new FrameSender(
    'br0',
    [],
    fakeSender('echo "no interface br0: No such device" >&2; exit 2'),
  );
  expect(await failing.send()).toEqual(['the frame sender failed: no interface br0: No such device']);
  const missing = new FrameSender('br0', [], () =>
    spawn('/nonexistent/perl', [], { stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  await expect(missing.ready).resolves.toBe(false);
  expect((await missing.send())[0]).toMatch(/perl could not run/);
});

it('a FrameSteerer moves the bridge entries to the taps first, then announces once per bridge', async () => {
  const order: string[] = [];
  let input = '';
  const batch = new BridgeBatch(() => {
    const child = spawn('sh', ['-c', 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (input += chunk.toString()));
    child.once('close', () => order.push('entries'));
    return child;
  });
  const senders: { bridge: string; frames: number }[] = [];
  const steerer = new FrameSteerer(
    [
      { ifname: 'tt0', mac: '52:54:00:AA:00:01', bridge: 'br0' },
      { ifname: 'tt1', mac: '52:54:00:aa:00:02', bridge: 'br0' },
      { ifname: 'tt2', mac: '52:54:00:aa:00:03' },
    ],
    {
      batch,
      sender: (bridge, frames) => {
        senders.push({ bridge, frames: frames.length });
        return new FrameSender(bridge, frames, fakeSender(`echo sent >&2`));
      },
    },
  );
  const problems = await steerer.steer();
  order.push('sent');
  expect(input).toBe(
    'fdb replace 52:54:00:aa:00:01 dev tt0 master dynamic\n' +
      'fdb replace 52:54:00:aa:00:02 dev tt1 master dynamic\n' +
      'fdb replace 52:54:00:aa:00:03 dev tt2 master dynamic\n',
  );
  expect(order).toEqual(['entries', 'sent']);
  expect(senders).toEqual([{ bridge: 'br0', frames: 2 }]);
  // The tap without a known bridge got its entry, but no announce.
  expect(problems).toEqual(['tt2: its bridge is not known (a tap of an older daemon): not announced']);
});
