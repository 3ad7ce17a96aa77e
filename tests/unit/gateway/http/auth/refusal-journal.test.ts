// The journal of refused requests alone: the quiet addresses' counts written out by a flush, and its
// bound on the addresses it remembers (reached here with 10,001 addresses, which through the plugin
// would take 10,001 requests over more than a hundred minutes of the per-minute cap).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../../../../gateway/audit.js';
import type { Logger } from '../../../../../gateway/log.js';
import { REFUSAL_RECORD_INTERVAL, RefusalJournal } from '../../../../../gateway/http/auth/refusal-journal.js';
import { MAX_FAILING_ADDRESSES } from '../../../../../gateway/http/auth/wrong-token-throttle.js';

function journal() {
  const lines: AuditInput[] = [];
  const logs: Array<{ msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as (typeof logs)[number]) }) as Logger;
  return { journal: new RefusalJournal({ append: (e) => lines.push(e) }, log), lines, logs };
}

describe('RefusalJournal', () => {
  it('writes the count of an address quiet for a minute at the next flush, and forgets it', () => {
    const { journal: j, lines } = journal();
    j.record('10.0.0.1', '/api/a', 'refused: no token', 0);
    j.record('10.0.0.1', '/api/a', 'refused: no token', 10);
    j.record('10.0.0.1', '/api/a', 'refused: no token', 20);
    j.flush(false, REFUSAL_RECORD_INTERVAL - 1);
    expect(lines).toHaveLength(1);
    j.flush(false, REFUSAL_RECORD_INTERVAL);
    expect(lines.at(-1)).toMatchObject({
      who: 'ip:10.0.0.1',
      outcome: 'refused',
      detail: '2 more refused since the last line for this address',
    });
    j.flush(true, 2 * REFUSAL_RECORD_INTERVAL);
    expect(lines).toHaveLength(2);
  });

  it('forgets the stalest address beyond its bound, and logs the refusals it had not journaled', () => {
    const { journal: j, lines, logs } = journal();
    j.record('first', '/api/a', 'refused: no token', 0);
    j.record('first', '/api/a', 'refused: no token', 1);
    // A second apart: within the cap of lines a minute, each address gets a line of its own.
    for (let k = 0; k < MAX_FAILING_ADDRESSES; k++) j.record(`10.1.${k >> 8}.${k & 255}`, '/api/a', 'refused: no token', 2 + k * 1000);
    const warned = logs.filter((l) => /Refused requests from too many addresses/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ ip: 'first', uncounted: 1, forgottenInAll: 1 });
    // Forgotten: its count is written nowhere, even at stop.
    j.flush(true, 1e9);
    expect(lines.filter((l) => l.who === 'ip:first')).toHaveLength(1);
  });
});
