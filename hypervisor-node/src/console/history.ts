// The last bytes of a guest's console log: what `kubectl tern console --history` shows first.
import { open } from 'node:fs/promises';

/** The most history one session may ask for. */
export const MAX_HISTORY_BYTES = 64 * 1024;

/**
 * Up to `maxBytes` (capped at MAX_HISTORY_BYTES) from the end of `file`; empty when the file does not exist. A cut
 * that falls inside a line starts after that line's end, so the history begins with a whole line.
 */
export async function readHistory(file: string, maxBytes: number): Promise<Buffer> {
  const want = Math.min(Math.max(0, maxBytes), MAX_HISTORY_BYTES);
  if (want === 0) return Buffer.alloc(0);
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw error;
  }
  try {
    const { size } = await handle.stat();
    // One byte more than wanted: when it is a line end, the cut falls between two lines.
    const start = size > want ? size - want - 1 : 0;
    const buffer = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    const read = buffer.subarray(0, bytesRead);
    if (start === 0) return read;
    const newline = read.indexOf(0x0a);
    // No line end at all: one long line, cut (without the extra byte).
    return newline === -1 ? read.subarray(1) : read.subarray(newline + 1);
  } finally {
    await handle.close();
  }
}
