// The few DER (ASN.1) shapes PKCS#10 requests and X.509 certificates need, written and read by hand: Node's crypto
// signs and verifies but neither builds certificates nor reads certificate requests, and these few dozen lines
// spare a dependency in the signer's trust path.

/** A DER element: its tag byte, its content, and its whole encoding (tag, length and content). */
export interface Der {
  tag: number;
  content: Buffer;
  raw: Buffer;
}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag n: constructed (EXPLICIT wrappers, [0] attributes) or primitive (GeneralName choices). */
export const contextTag = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n;

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function encode(tag: number, content: Buffer | Buffer[]): Buffer {
  const body = Array.isArray(content) ? Buffer.concat(content) : content;
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const sequence = (...items: Buffer[]): Buffer => encode(TAG.sequence, items);
export const set = (...items: Buffer[]): Buffer => encode(TAG.set, items);
export const utf8 = (text: string): Buffer => encode(TAG.utf8String, Buffer.from(text, 'utf8'));
export const octets = (bytes: Buffer): Buffer => encode(TAG.octetString, bytes);
/** A BIT STRING of whole bytes (no unused bits). */
export const bits = (bytes: Buffer): Buffer => encode(TAG.bitString, [Buffer.from([0]), bytes]);
export const boolean = (value: boolean): Buffer => encode(TAG.boolean, Buffer.from([value ? 0xff : 0]));

/** A non-negative INTEGER from its big-endian magnitude (a leading zero byte keeps it positive). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return encode(TAG.integer, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [];
    for (let rest = arc; ; rest = Math.floor(rest / 128)) {
      groups.unshift((rest % 128) | (groups.length > 0 ? 0x80 : 0));
      if (rest < 128) break;
    }
    bytes.push(...groups);
  }
  return encode(TAG.oid, Buffer.from(bytes));
}

export function oidString(element: Der): string {
  if (element.tag !== TAG.oid) throw new Error('expected an OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of element.content) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (arcs.length === 0)
        arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
export function time(date: Date): Buffer {
  const iso = date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return date.getUTCFullYear() < 2050
    ? encode(TAG.utcTime, Buffer.from(iso.slice(2), 'ascii'))
    : encode(TAG.generalizedTime, Buffer.from(iso, 'ascii'));
}

/** Reads the one element at `offset` of `data`. */
export function decode(data: Buffer, offset = 0): Der {
  const fail = (why: string): never => {
    throw new Error(`malformed DER at byte ${offset}: ${why}`);
  };
  if (offset + 2 > data.length) fail('truncated');
  const tag = data[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('multi-byte tags are not used here');
  let length = data[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) fail('unsupported length');
    if (offset + 2 + count > data.length) fail('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + data[offset + 2 + i]!;
    header += count;
  }
  const end = offset + header + length;
  if (end > data.length) fail('content runs past the end');
  return { tag, content: data.subarray(offset + header, end), raw: data.subarray(offset, end) };
}

/** Reads a whole buffer that must hold exactly one element. */
export function decodeOne(data: Buffer): Der {
  const element = decode(data);
  if (element.raw.length !== data.length) throw new Error('malformed DER: trailing bytes');
  return element;
}

/** The elements inside a constructed element (SEQUENCE, SET, a constructed context tag). */
export function children(element: Der): Der[] {
  const items: Der[] = [];
  for (let offset = 0; offset < element.content.length;) {
    const item = decode(element.content, offset);
    items.push(item);
    offset += item.raw.length;
  }
  return items;
}

/** Decodes `element` as a SEQUENCE (or the given tag) and returns its elements; throws naming `what` otherwise. */
export function ofTag(element: Der | undefined, tag: number, what: string): Der {
  if (element?.tag !== tag) throw new Error(`malformed ${what}`);
  return element;
}
