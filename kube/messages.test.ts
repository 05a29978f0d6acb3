import { setCondition } from './conditions.js';
import {
  boundConditionMessage,
  boundEventMessage,
  boundMessage,
  CONDITION_MESSAGE_MAX_BYTES,
  EVENT_MESSAGE_MAX_BYTES,
  sanitizeText,
  truncateUtf8,
  truncateUtf8Start,
  utf8Length,
} from './messages.js';

/** Nothing a terminal or a log viewer would interpret: no C0/C1 controls but newline, no lone surrogates. */
function expectPrintable(text: string, newlines: boolean): void {
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(newlines ? /[\x00-\x09\x0b-\x1f\x7f-\x9f]/ : /[\x00-\x1f\x7f-\x9f]/);
  expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  expect(text).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
  // It survives a UTF-8 round trip unchanged: nothing the API's JSON decoding would replace.
  expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
}

describe('sanitizeText', () => {
  test('drops terminal escape sequences and replaces control characters, keeping newlines', () => {
    const hostile =
      '\x1b[31mred\x1b[0m \x1b]0;title\x07ok\x1b[2J\x1b[H\r\nline2\tcol\x00\x00\x07bell\x7f\x1b(B end\rx';
    const clean = sanitizeText(hostile);
    expect(clean).toBe('red ok\nline2 col\ufffdbell\ufffd end\ufffdx');
    expectPrintable(clean, true);
  });

  test('single-line text marks line breaks instead of keeping them', () => {
    expect(sanitizeText('a\nb\n\nc', { singleLine: true })).toBe('a \u23ce b \u23ce c');
  });

  test('an unterminated escape string loses its introducer only, not the text after it', () => {
    expect(sanitizeText('before\x1b]8;;evil\nafter')).toBe('before8;;evil\nafter');
    expect(sanitizeText('x\x1bPq')).toBe('xq');
  });

  test('invalid UTF-8 and lone surrogates become one replacement character per run', () => {
    const fromBytes = Buffer.from([0x6f, 0x6b, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x21]).toString('utf8');
    expect(sanitizeText(fromBytes)).toBe('ok\ufffd(\ufffd!');
    expect(sanitizeText('a\ud800b\udc00c')).toBe('a\ufffdb\ufffdc');
    expect(sanitizeText('\ud83d\ude00')).toBe('\ud83d\ude00'); // a real pair stays
  });

  test('bidi overrides (Trojan Source) and Unicode line separators are replaced', () => {
    expect(sanitizeText('ab\u202eevil\u2066x\u2028y')).toBe('ab\ufffdevil\ufffdx\ufffdy');
  });

  test('is idempotent on hostile input', () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) % 256;
    const once = sanitizeText(bytes.toString('utf8'));
    expect(sanitizeText(once)).toBe(once);
    expectPrintable(once, true);
  });
});

describe('truncateUtf8', () => {
  test('never cuts a multi-byte character in the middle', () => {
    const text = 'a\u00e9\u20ac\ud83d\ude00z'; // 1 + 2 + 3 + 4 + 1 bytes
    for (let max = 0; max <= 12; max++) {
      const head = truncateUtf8(text, max);
      const tail = truncateUtf8Start(text, max);
      expect(utf8Length(head)).toBeLessThanOrEqual(max);
      expect(utf8Length(tail)).toBeLessThanOrEqual(max);
      expect(text.startsWith(head)).toBe(true);
      expect(text.endsWith(tail)).toBe(true);
      expectPrintable(head, true);
      expectPrintable(tail, true);
    }
    expect(truncateUtf8(text, 9)).toBe('a\u00e9\u20ac'); // the emoji's 4 bytes do not fit in the 3 left
    expect(truncateUtf8Start(text, 6)).toBe('\ud83d\ude00z');
  });
});

describe('boundMessage', () => {
  test('short printable text is unchanged', () => {
    expect(boundMessage('QEMU exited with status 1', 1024)).toBe('QEMU exited with status 1');
  });

  test('a huge message keeps its beginning and end and says how much was cut', () => {
    const message = `guest failed: ${'x'.repeat(5_000_000)} the last line`;
    const bounded = boundMessage(message, 1024);
    expect(utf8Length(bounded)).toBeLessThanOrEqual(1024);
    expect(utf8Length(bounded)).toBeGreaterThan(1000);
    expect(bounded.startsWith('guest failed: xxx')).toBe(true);
    expect(bounded.endsWith('xxx the last line')).toBe(true);
    const cut = /\u2026\[(\d+) bytes cut\]\u2026/.exec(bounded);
    expect(cut).not.toBeNull();
    expect(Number(cut![1]) + utf8Length(bounded) - utf8Length(cut![0]) - 2).toBe(utf8Length(message));
  });

  test('multi-byte characters at the cut stay whole, and the result is well-formed UTF-8', () => {
    for (const unit of ['\u00e9', '\u20ac', '\ud83d\ude00', 'e\u0301']) {
      for (const max of [64, 65, 66, 67, 1024]) {
        const bounded = boundMessage(unit.repeat(3000), max);
        expect(utf8Length(bounded)).toBeLessThanOrEqual(max);
        expectPrintable(bounded, true);
      }
    }
  });

  test('binary garbage becomes short printable text', () => {
    const bytes = Buffer.alloc(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 256;
    const bounded = boundEventMessage(bytes.toString('latin1'));
    expect(utf8Length(bounded)).toBeLessThanOrEqual(EVENT_MESSAGE_MAX_BYTES);
    expectPrintable(bounded, false);
  });

  test('tiny limits still hold', () => {
    for (let max = 0; max < 40; max++) {
      expect(utf8Length(boundMessage('\u20ac'.repeat(100), max))).toBeLessThanOrEqual(max);
    }
  });

  test('is idempotent, so a bounded message compares equal to itself bounded again', () => {
    const inputs = [
      'x'.repeat(10_000),
      `\x1b[1m${'\u20ac'.repeat(5000)}\n${'line\n'.repeat(2000)}`,
      Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 31) % 256)).toString('utf8'),
    ];
    for (const input of inputs) {
      for (const bound of [boundConditionMessage, boundEventMessage]) {
        const once = bound(input);
        expect(bound(once)).toBe(once);
      }
    }
  });
});

describe('messages on their way into the API', () => {
  test('setCondition bounds the message of every condition', () => {
    const console = `\x1b[31mKernel panic\x1b[0m\n${'\x00\xff'.repeat(100_000)}`;
    const [condition] = setCondition([], {
      type: 'Ready',
      status: 'False',
      reason: 'Exited',
      message: `QEMU exited with status 1; last console lines:\n${console}`,
    });
    expect(utf8Length(condition!.message)).toBeLessThanOrEqual(CONDITION_MESSAGE_MAX_BYTES);
    expect(
      condition!.message.startsWith('QEMU exited with status 1; last console lines:\nKernel panic\n'),
    ).toBe(true);
    expectPrintable(condition!.message, true);
  });

  test('an Event message is one line of at most 1 KiB', () => {
    const bounded = boundEventMessage(`guest failed (${'boot\n'.repeat(1000)}); restarting it`);
    expect(utf8Length(bounded)).toBeLessThanOrEqual(EVENT_MESSAGE_MAX_BYTES);
    expect(bounded).not.toContain('\n');
    expect(bounded.startsWith('guest failed (boot \u23ce boot')).toBe(true);
    expect(bounded.endsWith('); restarting it')).toBe(true);
  });
});
