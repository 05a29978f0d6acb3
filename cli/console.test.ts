import { ESCAPE_BYTE, inputMessages, splitAtEscape } from './console.js';

test('Ctrl+] ends the input; what came before it is still sent', () => {
  expect(splitAtEscape(Buffer.from('ls\n'))).toEqual({ before: Buffer.from('ls\n'), escaped: false });
  expect(splitAtEscape(Buffer.from([0x6c, 0x73, ESCAPE_BYTE, 0x0a]))).toEqual({
    before: Buffer.from('ls'),
    escaped: true,
  });
});

test('long input is cut into messages of at most 4 KiB', () => {
  const parts = inputMessages(Buffer.alloc(10_000, 0x61));
  expect(parts.map((part) => part.length)).toEqual([4096, 4096, 1808]);
  expect(inputMessages(Buffer.alloc(0))).toEqual([]);
});
