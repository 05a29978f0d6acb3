// The switchover bench's pure parts: the run schedule, the client's gap, tcpdump's lines and the fate of the
// segments a client sent while the guest was frozen.
import { frozenSegments, parseFrame, type CapturedFrame } from './network.js';
import { clientGap, firstAfter, interleave, percentile } from './stats.js';

const GUEST = '52:54:00:5b:00:01';
const HOST = 'fe:11:22:33:44:55';

it('interleaves the direct runs evenly', () => {
  expect(interleave(3, 1)).toEqual(['tern', 'tern', 'tern', 'direct']);
  expect(interleave(30, 10).filter((m) => m === 'direct')).toHaveLength(10);
  expect(interleave(30, 10).slice(0, 8).join(' ')).toBe('tern tern tern direct tern tern tern direct');
  expect(interleave(2, 1)).toEqual(['tern', 'tern', 'direct']);
  expect(interleave(0, 2)).toEqual(['direct', 'direct']);
});

it('nearest-rank percentiles', () => {
  expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
  expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
  expect(percentile([1, 2, 3], 0.99)).toBe(3);
  expect(percentile([], 0.5)).toBeNaN();
});

it("the client's gap is the interval across the switchover; the first reply is the first after the resume", () => {
  const acks = [100, 110, 120, 500, 510];
  expect(clientGap(acks, 200, 300)).toBe(380);
  expect(clientGap([100, 110], 200, 300)).toBeUndefined();
  expect(firstAfter([acks, [130, 490]], 300)).toBe(490);
});

it('parses tcpdump -e -S lines about the guest', () => {
  const ack = `1765060000.250000 ${GUEST} > ${HOST}, ethertype IPv4 (0x0800), length 66: 10.231.7.100.7000 > 10.231.7.1.45678: Flags [.], ack 1010, win 509, options [nop,nop,TS val 1 ecr 2], length 0`;
  expect(parseFrame(ack, [GUEST], 7000)).toEqual({
    guestMac: GUEST,
    frame: {
      atMs: 1765060000250,
      from: 'guest',
      kind: 'tcp-ack',
      clientPort: 45678,
      ack: 1010,
      tsVal: 1,
      tsEcr: 2,
    },
  });
  const data = `1765060000.100000 ${HOST} > ${GUEST}, ethertype IPv4 (0x0800), length 76: 10.231.7.1.45678 > 10.231.7.100.7000: Flags [P.], seq 1000:1010, ack 77, win 502, options [nop,nop,TS val 1 ecr 2], length 10`;
  expect(parseFrame(data, [GUEST], 7000)?.frame).toEqual({
    atMs: 1765060000100,
    from: 'client',
    kind: 'tcp-data',
    clientPort: 45678,
    seqStart: 1000,
    seqEnd: 1010,
    ack: 77,
    tsVal: 1,
    tsEcr: 2,
  });
  const bare = data.replace(', options [nop,nop,TS val 1 ecr 2]', '');
  expect(parseFrame(bare, [GUEST], 7000)?.frame).toEqual({
    atMs: 1765060000100,
    from: 'client',
    kind: 'tcp-data',
    clientPort: 45678,
    seqStart: 1000,
    seqEnd: 1010,
    ack: 77,
  });
  const rarp = `1765060000.500000 ${GUEST} > ff:ff:ff:ff:ff:ff, ethertype Reverse ARP (0x8035), length 60: Reverse Request who-is ${GUEST} tell ${GUEST}, length 46`;
  expect(parseFrame(rarp, [GUEST], 7000)?.frame).toEqual({
    atMs: 1765060000500,
    from: 'guest',
    kind: 'other',
    rarp: true,
  });
  expect(parseFrame(data.replace(GUEST, 'aa:bb:cc:dd:ee:ff'), [GUEST], 7000)).toBeUndefined();
});

it('tells the segments sent while frozen that reached the guest from those lost, by the timestamp echoed', () => {
  const client = (
    atMs: number,
    port: number,
    seqEnd: number,
    tsVal: number,
    seqStart = seqEnd - 10,
  ): CapturedFrame => ({
    atMs,
    from: 'client',
    kind: 'tcp-data',
    clientPort: port,
    seqStart,
    seqEnd,
    tsVal,
  });
  const guestAck = (atMs: number, port: number, ack: number, tsEcr?: number): CapturedFrame => ({
    atMs,
    from: 'guest',
    kind: 'tcp-ack',
    clientPort: port,
    ack,
    ...(tsEcr === undefined ? {} : { tsEcr }),
  });
  const frames = [
    client(90, 1, 10, 1), // before the pause: not counted
    client(110, 1, 20, 2), // frozen, acknowledged after the resume, never sent again: delivered
    client(120, 2, 30, 3), // frozen, sent again by a timeout; the guest echoes the first copy: delivered
    client(125, 4, 50, 4), // frozen, never acknowledged
    client(130, 3, 40, 5), // frozen, sent again by a timeout; the guest echoes the second copy: lost
    client(140, 5, 60, 6), // frozen, sent again; acknowledged with the next segment, sent before the copy: delivered
    client(150, 5, 70, 7), // frozen, acknowledged with it
    guestAck(205, 1, 20, 2),
    client(330, 2, 30, 8),
    guestAck(335, 2, 30, 3),
    client(345, 5, 60, 9),
    guestAck(350, 5, 70, 7),
    client(380, 3, 40, 10),
    guestAck(390, 3, 40, 10),
    client(160, 6, 80, 11), // frozen, sent again within one bigger segment with the next: both lost
    client(170, 6, 90, 12),
    client(400, 6, 90, 13, 70),
    guestAck(410, 6, 90, 13),
  ];
  expect(frozenSegments(frames, 100, 200)).toEqual({
    sent: 8,
    delivered: 4,
    lost: 3,
    unacknowledged: 1,
    resentAfterTimeout: 5,
  });
  // Without timestamps: acknowledged before being sent again, or only after.
  const bare = frames.map(({ tsVal: _v, tsEcr: _e, ...frame }) => frame);
  expect(frozenSegments(bare, 100, 200)).toMatchObject({ delivered: 2, lost: 5 });
});
