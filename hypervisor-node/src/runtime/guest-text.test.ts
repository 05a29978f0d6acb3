import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { utf8Length } from '../../../kube/messages.js';
import { boundGuestLines, CONSOLE_TAIL_LIMITS, type GuestTextLimits } from './guest-text.js';
import { tailLines } from './process.js';

const limits: GuestTextLimits = { maxLines: 10, maxLineBytes: 80, maxBytes: 400 };

function expectBounded(text: string, bounds: GuestTextLimits): void {
  expect(utf8Length(text)).toBeLessThanOrEqual(bounds.maxBytes);
  const lines = text.split('\n');
  expect(lines.length).toBeLessThanOrEqual(bounds.maxLines + 1); // + the "earlier lines cut" mark
  for (const line of lines) expect(utf8Length(line)).toBeLessThanOrEqual(bounds.maxLineBytes);
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
}

describe('boundGuestLines', () => {
  test('ordinary console lines pass unchanged', () => {
    const text = '[    0.000000] Linux version 6.6\n[    1.234567] Kernel panic - not syncing: VFS';
    expect(boundGuestLines(text, limits)).toBe(text);
    expect(boundGuestLines('', limits)).toBe('');
    expect(boundGuestLines('\n\n \n', limits)).toBe('');
  });

  test('keeps the most recent lines and says how many earlier ones were cut', () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
    expect(boundGuestLines(text, { ...limits, maxLines: 3 })).toBe(
      '\u2026[27 earlier lines cut]\nline 27\nline 28\nline 29',
    );
  });

  test('a long line is cut, marked with how many bytes are missing', () => {
    const bounded = boundGuestLines(`start ${'y'.repeat(10_000)}`, limits);
    expectBounded(bounded, limits);
    expect(bounded).toMatch(/^start y+ \u2026\[\+\d+ bytes\]$/);
    const missing = Number(/\+(\d+) bytes/.exec(bounded)![1]);
    expect(missing + utf8Length(bounded.replace(/ \u2026\[.*$/, ''))).toBe(10_006);
  });

  test('many long lines: the total stays within maxBytes, dropping the oldest lines', () => {
    const text = Array.from({ length: 10 }, (_, i) => `${i}${'z'.repeat(500)}`).join('\n');
    const bounded = boundGuestLines(text, limits);
    expectBounded(bounded, limits);
    expect(bounded.split('\n')[0]).toMatch(/^\u2026\[\d+ earlier lines cut\]$/);
    expect(bounded.split('\n').at(-1)).toMatch(/^9z+/);
  });

  test('escapes, control characters and invalid UTF-8 come out printable', () => {
    const hostile = Buffer.concat([
      Buffer.from('\x1b[2J\x1b[31mBOOT\x1b[0m\r\n\x00\x01\x02\x07noise\x1b]0;pwned\x07\n'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x41, 0xe2, 0x82]), // invalid and truncated sequences
      Buffer.from('\nlast \u202eevil\n'),
    ]);
    const bounded = boundGuestLines(hostile.toString('utf8'), limits);
    expect(bounded).toBe('BOOT\n\ufffdnoise\n\ufffdA\ufffd\nlast \ufffdevil');
    expectBounded(bounded, limits);
  });

  test('multi-byte characters cut at a line or total limit stay whole', () => {
    for (const unit of ['\u00e9', '\u20ac', '\ud83d\ude00']) {
      for (const maxLineBytes of [40, 41, 42, 43]) {
        const bounds = { ...limits, maxLineBytes, maxBytes: 3 * maxLineBytes + 1 };
        const text = Array.from({ length: 8 }, () => unit.repeat(100)).join('\n');
        expectBounded(boundGuestLines(text, bounds), bounds);
      }
    }
  });

  test('megabytes of binary console in a file: the failure message part stays within 1 KiB', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tern-guest-text-'));
    try {
      const bytes = Buffer.alloc(4 << 20);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
      const file = path.join(dir, 'console');
      await writeFile(file, bytes);
      const bounded = boundGuestLines(await tailLines(file, 10), CONSOLE_TAIL_LIMITS);
      expectBounded(bounded, CONSOLE_TAIL_LIMITS);
      expect(utf8Length(bounded)).toBeGreaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
