// The audit journal when its file is damaged (a write cut short by a power loss): the gateway
// starts, new entries follow the last good one, and verify names the damaged line.
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditJournal, verifyJournal } from '../../../../gateway/http/audit.js';

describe('audit journal with a damaged end', () => {
  it.each([
    ['a line cut short', '{"seq":3,"at":"2026-01-0'],
    ['a line that is JSON but no entry', 'null'],
    ['binary noise', '\u0000\u0001\u00ff'],
  ])('starts after %s, and verify names it', (_what, damage) => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-audit-')), 'audit.jsonl');
    const first = new AuditJournal(file);
    first.append({ who: 'a', action: 'acknowledge', outcome: 'done' });
    const second = first.append({ who: 'b', action: 'shelve', outcome: 'done' });
    appendFileSync(file, `${damage}\n`);

    const journal = new AuditJournal(file);
    expect(journal.damagedTail).toBe(1);
    const next = journal.append({ who: 'c', action: 'unshelve', outcome: 'done' });
    expect([next.seq, next.prev]).toEqual([3, second.hash]);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(4);
    expect(verifyJournal(file)).toMatchObject({ ok: false, entries: 2, line: 3 });
  });
});
