// The guest agent's durable transaction log (tern.txlog, see guest/README.md "Transaction log"): the on-disk
// format's parser, the digest the agent's TXLOG reports, and the checker that compares a log with the
// acknowledgements clients received. Pure functions, no I/O.
import { crc32 } from 'node:zlib';

export const SLOT_SIZE = 4096;
export const PAYLOAD_MAX = 64;
const HEADER_MAGIC = 'TERNTXH1';
const RECORD_MAGIC = 'TERNTXR1';
const PAYLOAD_OFFSET = 32;

export interface TxRecord {
  seq: number;
  payload: string;
}

/** Why the log ends where it does: the first slot after the last record is blank, torn (bad magic or crc:
 * a write cut by a crash, or damage), stale (intact but of another log or another place), or past the device. */
export type LogEnd = 'blank' | 'torn' | 'stale' | 'device-end';

export interface ParsedTxLog {
  /** The log id (16 hex digits) from the header. */
  id: string;
  /** Record slots the image has room for. */
  capacity: number;
  records: TxRecord[];
  end: LogEnd;
  /** After a torn or stale end slot: whether the slot after it was written (damage, not a crash: the writer
   * has one write in flight and never writes past it). */
  writtenAfterEnd: boolean;
}

/** Reads a raw image of a transaction-log device (e.g. the disk file, with the guest stopped). */
export function parseTxLogImage(image: Uint8Array): ParsedTxLog {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  if (buf.length < 2 * SLOT_SIZE) throw new Error(`txlog image too small: ${buf.length} bytes`);
  const header = buf.subarray(0, SLOT_SIZE);
  if (header.toString('latin1', 0, 8) !== HEADER_MAGIC || !sealed(header)) {
    throw new Error(
      isBlank(header) ? 'txlog image has no header (never used)' : 'slot 0 is not a txlog header',
    );
  }
  if (header.readUInt32LE(12) !== SLOT_SIZE) throw new Error(`txlog slot size ${header.readUInt32LE(12)}`);
  const id = header.readBigUInt64LE(16);
  const capacity = Math.floor(buf.length / SLOT_SIZE) - 1;
  const records: TxRecord[] = [];
  let end: LogEnd = 'device-end';
  let seq = 1;
  for (; seq <= capacity; seq++) {
    const slot = buf.subarray(seq * SLOT_SIZE, (seq + 1) * SLOT_SIZE);
    const verdict = checkRecord(slot, id, seq);
    if (verdict !== 'valid') {
      end = verdict;
      break;
    }
    const len = slot.readUInt32LE(12);
    records.push({ seq, payload: slot.toString('latin1', PAYLOAD_OFFSET, PAYLOAD_OFFSET + len) });
  }
  const next = seq + 1;
  const writtenAfterEnd =
    (end === 'torn' || end === 'stale') &&
    next <= capacity &&
    !isBlank(buf.subarray(next * SLOT_SIZE, (next + 1) * SLOT_SIZE));
  return { id: id.toString(16).padStart(16, '0'), capacity, records, end, writtenAfterEnd };
}

function checkRecord(slot: Buffer, id: bigint, seq: number): 'valid' | Exclude<LogEnd, 'device-end'> {
  if (isBlank(slot)) return 'blank';
  if (
    slot.toString('latin1', 0, 8) !== RECORD_MAGIC ||
    !sealed(slot) ||
    slot.readUInt32LE(12) > PAYLOAD_MAX
  ) {
    return 'torn';
  }
  if (slot.readBigUInt64LE(16) !== id || slot.readBigUInt64LE(24) !== BigInt(seq)) return 'stale';
  return 'valid';
}

function sealed(slot: Buffer): boolean {
  return slot.readUInt32LE(8) === crc32(slot.subarray(12));
}

function isBlank(slot: Buffer): boolean {
  return slot.every((b) => b === 0);
}

function seal(slot: Buffer): Buffer {
  slot.writeUInt32LE(crc32(slot.subarray(12)), 8);
  return slot;
}

/** Slot 0 of a log with this id (16 hex digits). */
export function encodeHeader(id: string): Buffer {
  const slot = Buffer.alloc(SLOT_SIZE);
  slot.write(HEADER_MAGIC, 0, 'latin1');
  slot.writeUInt32LE(SLOT_SIZE, 12);
  slot.writeBigUInt64LE(BigInt(`0x${id}`), 16);
  return seal(slot);
}

/** The slot of record `seq` (it belongs at offset seq * SLOT_SIZE). */
export function encodeRecord(id: string, seq: number, payload: string): Buffer {
  if (payload.length > PAYLOAD_MAX) throw new Error(`payload longer than ${PAYLOAD_MAX}`);
  const slot = Buffer.alloc(SLOT_SIZE);
  slot.write(RECORD_MAGIC, 0, 'latin1');
  slot.writeUInt32LE(payload.length, 12);
  slot.writeBigUInt64LE(BigInt(`0x${id}`), 16);
  slot.writeBigUInt64LE(BigInt(seq), 24);
  slot.write(payload, PAYLOAD_OFFSET, 'latin1');
  return seal(slot);
}

/** FNV-1a 64 over "<seq>:<payload>\n" of every record in order, 16 hex digits: the agent's TXLOG `digest`. */
export function logDigest(records: readonly TxRecord[]): string {
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  let h = 0xcbf29ce484222325n;
  for (const r of records) {
    for (const byte of Buffer.from(`${r.seq}:${r.payload}\n`, 'latin1'))
      h = ((h ^ BigInt(byte)) * prime) & mask;
  }
  return h.toString(16).padStart(16, '0');
}

// ---- the checker ----

/** One transaction a client saw acknowledged: the agent replied `OK <seq>` to `TX <payload>`. */
export interface Ack {
  seq: number;
  payload: string;
}

/** What one client recorded. Payloads are `<client>.<n>` with n counting up from 0 in sending order. */
export interface ClientRecord {
  name: string;
  /** In the order the client received them. */
  acks: readonly Ack[];
  /** Sent without a reply (connection lost, timeout, an error reply): each may or may not be in the log. */
  unknown: readonly string[];
}

export interface DurabilityReport {
  ok: boolean;
  acknowledged: number;
  records: number;
  /** Acknowledged, but the log has no record of the payload. */
  lost: Ack[];
  /** Acknowledged with one seq, found at another. */
  moved: { ack: Ack; foundSeq: number }[];
  /** A payload the log holds more than once. */
  duplicated: { payload: string; seqs: number[] }[];
  /** Order violations: log seqs not increasing, a client's acks not increasing, a client's transactions out of
   * their sending order in the log. */
  outOfOrder: string[];
  /** In the log with an unknown outcome for the client (its reply was lost): allowed. */
  durableUnacknowledged: TxRecord[];
  /** In the log but never sent by any of the clients given. */
  unexpected: TxRecord[];
  /** Human-readable, one finding per line; starts with the verdict. */
  text: string;
}

const SHOWN = 10;

/** Compares a log with what its clients were told: zero acknowledged transactions lost, none out of order, none
 * duplicated. Every client writing to the log must be given, or its records count as unexpected. */
export function checkDurability(
  log: readonly TxRecord[],
  clients: readonly ClientRecord[],
): DurabilityReport {
  const outOfOrder: string[] = [];
  const bySeq = new Map<number, TxRecord>();
  const seqsOf = new Map<string, number[]>();
  for (let i = 0; i < log.length; i++) {
    const r = log[i]!;
    if (i > 0 && r.seq <= log[i - 1]!.seq)
      outOfOrder.push(`log: seq ${r.seq} follows seq ${log[i - 1]!.seq}`);
    bySeq.set(r.seq, r);
    seqsOf.set(r.payload, [...(seqsOf.get(r.payload) ?? []), r.seq]);
  }
  const duplicated = [...seqsOf]
    .filter(([, seqs]) => seqs.length > 1)
    .map(([payload, seqs]) => ({ payload, seqs }));

  const lost: Ack[] = [];
  const moved: DurabilityReport['moved'] = [];
  const acked = new Set<string>();
  const unknown = new Set<string>();
  for (const client of clients) {
    client.unknown.forEach((p) => unknown.add(p));
    for (let i = 0; i < client.acks.length; i++) {
      const ack = client.acks[i]!;
      acked.add(ack.payload);
      const prev = client.acks[i - 1];
      if (prev && ack.seq <= prev.seq) {
        outOfOrder.push(`${client.name}: ack of ${ack.payload} has seq ${ack.seq}, after seq ${prev.seq}`);
      }
      if (bySeq.get(ack.seq)?.payload === ack.payload) continue;
      const found = seqsOf.get(ack.payload);
      if (found) moved.push({ ack, foundSeq: found[0]! });
      else lost.push(ack);
    }
    // The log keeps each client's transactions in the order the client sent them.
    let last: { n: number; seq: number; payload: string } | undefined;
    for (const r of log) {
      const n = sequenceOf(client.name, r.payload);
      if (n === undefined) continue;
      if (last && n <= last.n) {
        outOfOrder.push(
          `${client.name}: ${r.payload} at seq ${r.seq} follows ${last.payload} at seq ${last.seq}`,
        );
      }
      last = { n, seq: r.seq, payload: r.payload };
    }
  }
  const durableUnacknowledged = log.filter((r) => !acked.has(r.payload) && unknown.has(r.payload));
  const unexpected = log.filter((r) => !acked.has(r.payload) && !unknown.has(r.payload));

  const ok =
    lost.length === 0 &&
    moved.length === 0 &&
    duplicated.length === 0 &&
    outOfOrder.length === 0 &&
    unexpected.length === 0;
  const acknowledged = clients.reduce((sum, c) => sum + c.acks.length, 0);
  const lines = [
    `${ok ? 'OK' : 'FAILED'}: ${acknowledged} acknowledged, ${log.length} in the log` +
      (log.length ? ` (seq ${log[0]!.seq}..${log[log.length - 1]!.seq})` : '') +
      `, ${lost.length} lost, ${moved.length} moved, ${duplicated.length} duplicated, ` +
      `${outOfOrder.length} out of order, ${unexpected.length} unexpected, ` +
      `${durableUnacknowledged.length} durable without an acknowledgement (reply lost: allowed)`,
    ...listed('lost (acknowledged, not in the log)', lost, (a) => `seq ${a.seq} ${a.payload}`),
    ...listed(
      'moved',
      moved,
      (m) => `${m.ack.payload} acknowledged as seq ${m.ack.seq}, found at ${m.foundSeq}`,
    ),
    ...listed('duplicated', duplicated, (d) => `${d.payload} at seqs ${d.seqs.join(', ')}`),
    ...listed('out of order', outOfOrder, (s) => s),
    ...listed('unexpected (never sent)', unexpected, (r) => `seq ${r.seq} ${r.payload}`),
  ];
  return {
    ok,
    acknowledged,
    records: log.length,
    lost,
    moved,
    duplicated,
    outOfOrder,
    durableUnacknowledged,
    unexpected,
    text: lines.join('\n'),
  };
}

/** n of a payload `<client>.<n>` of this client, else undefined. */
function sequenceOf(client: string, payload: string): number | undefined {
  if (!payload.startsWith(`${client}.`)) return undefined;
  const rest = payload.slice(client.length + 1);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

function listed<T>(title: string, items: readonly T[], show: (item: T) => string): string[] {
  if (items.length === 0) return [];
  const more = items.length > SHOWN ? ` (first ${SHOWN} of ${items.length})` : '';
  return [`${title}${more}:`, ...items.slice(0, SHOWN).map((item) => `  ${show(item)}`)];
}
