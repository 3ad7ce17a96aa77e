// The spool is SQLite on disk (no sockets): real files in a temporary folder.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../../gateway/spool.js';

const log = pino({ level: 'silent' });
const file = () => join(mkdtempSync(join(tmpdir(), 'gw-spool-')), 'spool.db');
const lines = (from: number, n: number) => Array.from({ length: n }, (_, k) => `m v=${from + k} ${from + k}`);

describe('spool', () => {
  it('hands chunks out in order, skips those being sent, and keeps what was not removed across a reopen', () => {
    const f = file();
    const s = new Spool({ file: f, maxBytes: 1e9, log });
    for (let k = 0; k < 5; k++) s.append(lines(k * 10, 10));
    const first = s.takeFrom(0, 20);
    expect(first.map((c) => c.lines)).toEqual([10, 10]);
    const next = s.takeFrom(0, 15);
    expect(next.map((c) => c.id)).toEqual([first[1]!.id + 1]); // the first two are busy; never more lines than asked unless one chunk alone
    s.remove(first);
    s.release(next);
    expect(s.stats()).toMatchObject({ chunks: 3, lines: 30 });
    s.close();
    const again = new Spool({ file: f, maxBytes: 1e9, log });
    expect(again.stats()).toMatchObject({ chunks: 3, lines: 30 });
    expect(again.takeFrom(0, 1000).map((c) => c.text.split('\n')[0])).toEqual(['m v=20 20', 'm v=30 30', 'm v=40 40']);
    again.close();
  });

  it('drops the oldest chunks that are not being sent when over the bound, and counts every line', () => {
    const dropped: number[] = [];
    const s = new Spool({ file: file(), maxBytes: 1000, log, onDrop: (n) => dropped.push(n) });
    const chunkBytes = Buffer.byteLength(lines(0, 10).join('\n'));
    s.append(lines(0, 10));
    const busy = s.takeFrom(0, 10); // being sent: must survive
    let appended = 10;
    while (s.stats().droppedLines === 0) {
      s.append(lines(appended, 10));
      appended += 10;
    }
    for (let k = 0; k < 20; k++, appended += 10) s.append(lines(appended, 10));
    const st = s.stats();
    expect(st.bytes).toBeLessThanOrEqual(1000 + chunkBytes);
    expect(st.lines + st.droppedLines).toBe(appended);
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(st.droppedLines);
    s.release(busy);
    const ids = s.takeFrom(0, 1e6).map((c) => c.id);
    expect(ids[0]).toBe(busy[0]!.id); // the chunk in flight stayed
    expect(ids[1]).toBeGreaterThan(busy[0]!.id + 1); // the oldest others went
    s.close();
  });
});
