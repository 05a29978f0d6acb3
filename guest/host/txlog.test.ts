import {
  checkDurability,
  encodeHeader,
  encodeRecord,
  logDigest,
  parseTxLogImage,
  SLOT_SIZE,
  type Ack,
  type TxRecord,
} from './txlog.js';

const ID = '502dee99471fef1d';

/** An image of `slots` record slots holding these records at their seqs. */
function image(records: TxRecord[], slots = 16, id = ID): Buffer {
  const buf = Buffer.alloc((slots + 1) * SLOT_SIZE);
  encodeHeader(id).copy(buf, 0);
  for (const r of records) encodeRecord(id, r.seq, r.payload).copy(buf, r.seq * SLOT_SIZE);
  return buf;
}

const flip = (buf: Buffer, offset: number): void => {
  buf.writeUInt8(buf.readUInt8(offset) ^ 0xff, offset);
};
const tx = (n: number, client = 'c'): TxRecord => ({ seq: n + 1, payload: `${client}.${n}` });
const acksOf = (records: TxRecord[]): Ack[] => records.map((r) => ({ ...r }));

describe('parseTxLogImage', () => {
  it('reads every record up to the first blank slot', () => {
    const records = [tx(0), tx(1), tx(2)];
    const parsed = parseTxLogImage(image(records));
    expect(parsed).toEqual({ id: ID, capacity: 16, records, end: 'blank', writtenAfterEnd: false });
  });

  it('ends at the device end when every slot holds a record', () => {
    const records = Array.from({ length: 4 }, (_, i) => tx(i));
    expect(parseTxLogImage(image(records, 4))).toMatchObject({ records, end: 'device-end' });
  });

  it('stops at a torn last slot (a write cut by a crash): the records before it stay', () => {
    const buf = image([tx(0), tx(1), tx(2)]);
    // The second half of slot 3 never reached the disk.
    buf.fill(0, 3 * SLOT_SIZE + SLOT_SIZE / 2, 4 * SLOT_SIZE);
    buf.write('X', 3 * SLOT_SIZE + 40, 'latin1'); // and the payload is only half written
    expect(parseTxLogImage(buf)).toMatchObject({
      records: [tx(0), tx(1)],
      end: 'torn',
      writtenAfterEnd: false,
    });
  });

  it('tells damage in the middle (a written slot after the torn one) from a torn tail', () => {
    const buf = image([tx(0), tx(1), tx(2), tx(3)]);
    buf[2 * SLOT_SIZE + 100] = 1; // zeros past the payload, covered by the crc
    expect(parseTxLogImage(buf)).toMatchObject({ records: [tx(0)], end: 'torn', writtenAfterEnd: true });
  });

  it('does not take records of another log, or a record in the wrong slot, as part of this one', () => {
    const buf = image([tx(0)]);
    encodeRecord('00000000000000aa', 2, 'c.1').copy(buf, 2 * SLOT_SIZE);
    expect(parseTxLogImage(buf)).toMatchObject({ records: [tx(0)], end: 'stale' });
    const misplaced = image([tx(0)]);
    encodeRecord(ID, 3, 'c.1').copy(misplaced, 2 * SLOT_SIZE);
    expect(parseTxLogImage(misplaced)).toMatchObject({ records: [tx(0)], end: 'stale' });
  });

  it('refuses an image without a header, and one whose slot 0 holds something else', () => {
    expect(() => parseTxLogImage(Buffer.alloc(4 * SLOT_SIZE))).toThrow('no header');
    const other = image([tx(0)]);
    flip(other, 20);
    expect(() => parseTxLogImage(other)).toThrow('slot 0 is not a txlog header');
    expect(() => parseTxLogImage(Buffer.alloc(SLOT_SIZE))).toThrow('too small');
  });
});

describe('logDigest', () => {
  it('is FNV-1a 64 over "<seq>:<payload>\\n" lines', () => {
    expect(logDigest([])).toBe('cbf29ce484222325');
    // The agent (run on a host against a file) reported this digest for these six records.
    const records = ['c1.0', 'c1.1', 'c1.2', 'c1.3', 'c1.4', 'ok.1'].map((payload, i) => ({
      seq: i + 1,
      payload,
    }));
    expect(logDigest(records)).toBe('2f856524dde13815');
  });
});

describe('checkDurability', () => {
  const log = Array.from({ length: 6 }, (_, i) => tx(i));

  it('passes when every acknowledged transaction is in the log at its seq', () => {
    const report = checkDurability(log, [{ name: 'c', acks: acksOf(log), unknown: [] }]);
    expect(report.ok).toBe(true);
    expect(report.text).toMatch(/^OK: 6 acknowledged, 6 in the log \(seq 1\.\.6\), 0 lost/);
  });

  it('allows a durable transaction whose reply was lost, not one nobody sent', () => {
    const acks = acksOf(log.slice(0, 5));
    expect(checkDurability(log, [{ name: 'c', acks, unknown: ['c.5'] }])).toMatchObject({
      ok: true,
      durableUnacknowledged: [tx(5)],
    });
    const report = checkDurability(log, [{ name: 'c', acks, unknown: [] }]);
    expect(report).toMatchObject({ ok: false, unexpected: [tx(5)] });
    expect(report.text).toContain('unexpected (never sent):\n  seq 6 c.5');
  });

  it('reports a lost acknowledged transaction (the log was cut after it was acknowledged)', () => {
    const report = checkDurability(log.slice(0, 4), [{ name: 'c', acks: acksOf(log), unknown: [] }]);
    expect(report.ok).toBe(false);
    expect(report.lost).toEqual([
      { seq: 5, payload: 'c.4' },
      { seq: 6, payload: 'c.5' },
    ]);
    expect(report.text).toContain('FAILED: 6 acknowledged, 4 in the log (seq 1..4), 2 lost');
    expect(report.text).toContain('lost (acknowledged, not in the log):\n  seq 5 c.4\n  seq 6 c.5');
  });

  it('reports a lost ack when the seq was reused by another transaction (a log that went back)', () => {
    const rewritten = [...log.slice(0, 4), { seq: 5, payload: 'c.6' }];
    const report = checkDurability(rewritten, [
      { name: 'c', acks: acksOf(log.slice(0, 5)), unknown: ['c.6'] },
    ]);
    expect(report.lost).toEqual([{ seq: 5, payload: 'c.4' }]);
  });

  it('reports a reordering: two transactions swapped in the log', () => {
    const swapped = [log[0]!, log[1]!, { seq: 3, payload: 'c.3' }, { seq: 4, payload: 'c.2' }, log[4]!];
    const report = checkDurability(swapped, [{ name: 'c', acks: acksOf(log.slice(0, 5)), unknown: [] }]);
    expect(report.ok).toBe(false);
    expect(report.moved.map((m) => [m.ack.payload, m.ack.seq, m.foundSeq])).toEqual([
      ['c.2', 3, 4],
      ['c.3', 4, 3],
    ]);
    expect(report.outOfOrder).toEqual(['c: c.2 at seq 4 follows c.3 at seq 3']);
  });

  it('reports acknowledgements whose seqs go backwards, and a log whose seqs do', () => {
    const acks = [
      { seq: 2, payload: 'c.1' },
      { seq: 1, payload: 'c.0' },
    ];
    expect(checkDurability(log.slice(0, 2), [{ name: 'c', acks, unknown: [] }]).outOfOrder).toContain(
      'c: ack of c.0 has seq 1, after seq 2',
    );
    const backwards = [log[0]!, log[2]!, { seq: 2, payload: 'c.1' }];
    expect(
      checkDurability(backwards, [{ name: 'c', acks: [], unknown: ['c.0', 'c.1', 'c.2'] }]).outOfOrder,
    ).toContain('log: seq 2 follows seq 3');
  });

  it('reports a duplicated transaction', () => {
    const dup = [...log.slice(0, 3), { seq: 4, payload: 'c.2' }];
    const report = checkDurability(dup, [{ name: 'c', acks: acksOf(log.slice(0, 3)), unknown: [] }]);
    expect(report.duplicated).toEqual([{ payload: 'c.2', seqs: [3, 4] }]);
    expect(report.ok).toBe(false);
  });

  it('checks several clients interleaved in one log', () => {
    const mixed = [
      tx(0, 'a'),
      { seq: 2, payload: 'b.0' },
      { seq: 3, payload: 'a.1' },
      { seq: 4, payload: 'b.1' },
    ];
    const clients = [
      { name: 'a', acks: [mixed[0]!, mixed[2]!], unknown: [] },
      { name: 'b', acks: [mixed[1]!, mixed[3]!], unknown: [] },
    ];
    expect(checkDurability(mixed, clients).ok).toBe(true);
  });

  it('reads a parsed image with a torn last slot: the unacknowledged torn write is not a loss', () => {
    const buf = image(log);
    flip(buf, 6 * SLOT_SIZE + 40); // seq 6 torn: its write was in flight, never acknowledged
    const parsed = parseTxLogImage(buf);
    expect(parsed.end).toBe('torn');
    const report = checkDurability(parsed.records, [
      { name: 'c', acks: acksOf(log.slice(0, 5)), unknown: ['c.5'] },
    ]);
    expect(report.ok).toBe(true);
    // Had seq 6 been acknowledged, the same image is a loss.
    expect(checkDurability(parsed.records, [{ name: 'c', acks: acksOf(log), unknown: [] }]).lost).toEqual([
      { seq: 6, payload: 'c.5' },
    ]);
  });
});
