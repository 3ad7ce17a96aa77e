// The body of a write request: spooled chunks of line protocol, one line after another.
import type { SpoolChunk } from '../spool.js';

/**
 * The request body of some chunks, as bytes. Written straight into one buffer outside V8's heap:
 * a joined string of a batch (about 450 kB at 5,000 lines) would be a large heap object, which only
 * a full collection frees, and a drain sends dozens a second (the heap grew by 50 MiB doing that).
 */
export function bodyOf(chunks: readonly SpoolChunk[]): Buffer {
  const body = Buffer.allocUnsafe(chunks.reduce((n, c) => n + Buffer.byteLength(c.text), chunks.length - 1));
  let at = 0;
  for (const c of chunks) {
    if (at > 0) body[at++] = 0x0a;
    at += body.write(c.text, at, 'utf8');
  }
  return body;
}
