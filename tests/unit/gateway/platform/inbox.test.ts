// The reference receiver follows incidents from their first event to their `closed`, in seq order and
// bounded memory, and says which are left open. No sockets: the tracker directly, and the receiver
// reading back its --out file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { IncidentBody, IncidentType } from '../../../../gateway/platform/contract.js';
import { createIncidentTracker, createPlatformInbox, summaryOf } from '../../../../gateway/platform/inbox.js';

let nextSeq = 0;
const event = (incidentId: string, type: IncidentType, o: Partial<IncidentBody> = {}): IncidentBody => {
  const seq = o.seq ?? ++nextSeq;
  return {
    schema: 'gw.incident.v1',
    eventId: `${incidentId}-${type}-${seq}`,
    incidentId,
    type,
    level: 'red',
    gatewayId: 'gw-1',
    site: 'plant-9',
    equipment: { id: 'B-07', category: 'boiler' },
    rule: { id: 'drum-level-low-low', message: 'Drum water level extremely low' },
    occurredAt: new Date(Date.UTC(2026, 10, 22, 10, 0, seq)).toISOString(),
    ...o,
    seq,
  };
};

describe('incident tracker', () => {
  it('opens an incident at its first event and ends it at its closed; repeated and later events update it', () => {
    const t = createIncidentTracker();
    for (const e of [
      event('a', 'raised'),
      event('b', 'raised'),
      event('a', 'acknowledged'),
      event('a', 'raised'),
      event('a', 'cleared'),
      event('b', 'escalated', { level: 'red' }),
    ])
      expect(t.take(e)).toBeUndefined();
    expect(t.stats()).toEqual({ incidentsOpen: 2, incidentsEnded: 0, notFollowed: 0, afterClosed: 0 });
    expect(t.take(event('a', 'closed', { comment: 'after cleared' }))).toBeUndefined();
    expect(t.stats()).toEqual({ incidentsOpen: 1, incidentsEnded: 1, notFollowed: 0, afterClosed: 0 });
    expect(t.open()).toMatchObject([
      { incidentId: 'b', gatewayId: 'gw-1', site: 'plant-9', equipment: 'B-07', rule: 'drum-level-low-low', last: 'escalated' },
    ]);
  });

  it("an incident first seen at an escalation (min_level above the rule's level) ends at its closed too", () => {
    const t = createIncidentTracker();
    t.take(event('c', 'escalated'));
    t.take(event('c', 'closed'));
    expect(t.stats()).toMatchObject({ incidentsOpen: 0, incidentsEnded: 1 });
  });

  it('keeps the same incident id of two gateways apart', () => {
    const t = createIncidentTracker();
    t.take(event('x', 'raised', { gatewayId: 'gw-1' }));
    t.take(event('x', 'raised', { gatewayId: 'gw-2' }));
    t.take(event('x', 'closed', { gatewayId: 'gw-1' }));
    expect(t.open()).toMatchObject([{ incidentId: 'x', gatewayId: 'gw-2' }]);
  });

  it('in seq order: an event older than the closed that arrives after it does not reopen the incident; one newer than it is reported', () => {
    const t = createIncidentTracker();
    t.take(event('d', 'raised', { seq: 101 }));
    // More than one in flight: the closed (seq 104) arrives before the cleared (103) and acknowledged (102).
    expect(t.take(event('d', 'closed', { seq: 104 }))).toBeUndefined();
    expect(t.take(event('d', 'cleared', { seq: 103 }))).toBeUndefined();
    expect(t.take(event('d', 'acknowledged', { seq: 102 }))).toBeUndefined();
    expect(t.stats()).toEqual({ incidentsOpen: 0, incidentsEnded: 1, notFollowed: 0, afterClosed: 0 });
    expect(t.take(event('d', 'raised', { seq: 105 }))).toBe(
      'AFTER CLOSED: raised seq 105 of incident d (B-07/drum-level-low-low, gw-1), which was closed at seq 104',
    );
    expect(t.take(event('d', 'closed', { seq: 106 }))).toMatch(/^AFTER CLOSED: closed seq 106 of incident d/);
    expect(t.stats()).toEqual({ incidentsOpen: 0, incidentsEnded: 1, notFollowed: 0, afterClosed: 2 });
    // An event after the closed that arrives before it is reported when the closed comes.
    t.take(event('k', 'raised', { seq: 201 }));
    t.take(event('k', 'acknowledged', { seq: 203 }));
    expect(t.take(event('k', 'closed', { seq: 202 }))).toBe(
      'AFTER CLOSED: acknowledged seq 203 of incident k (B-07/drum-level-low-low, gw-1), which was closed at seq 202',
    );
    expect(t.stats()).toEqual({ incidentsOpen: 0, incidentsEnded: 2, notFollowed: 0, afterClosed: 3 });
  });

  it('follows at most its bound of open incidents, counts the events of the others (saying so once), and never takes them as ended', () => {
    const t = createIncidentTracker(2);
    t.take(event('e1', 'raised'));
    t.take(event('e2', 'raised'));
    expect(t.take(event('e3', 'raised'))).toBe(
      'NOT FOLLOWED: 2 incidents are open already; events of further incidents are counted, not followed',
    );
    expect(t.take(event('e3', 'acknowledged'))).toBeUndefined();
    expect(t.stats()).toEqual({ incidentsOpen: 2, incidentsEnded: 0, notFollowed: 2, afterClosed: 0 });
    t.take(event('e1', 'closed'));
    t.take(event('e4', 'raised'));
    expect(t.open().map((o) => o.incidentId)).toEqual(['e2', 'e4']);
  });

  it('remembers at most its bound of ended incidents, oldest forgotten first', () => {
    const t = createIncidentTracker(2);
    for (const id of ['f1', 'f2', 'f3']) {
      t.take(event(id, 'raised'));
      t.take(event(id, 'closed'));
    }
    // f1 is forgotten: a late event of it opens it again; f3 is remembered.
    t.take(event('f1', 'cleared'));
    expect(t.take(event('f3', 'cleared'))).toMatch(/^AFTER CLOSED/);
    expect(t.open().map((o) => o.incidentId)).toEqual(['f1']);
  });

  it('lists the open incidents oldest first, by when they occurred', () => {
    const t = createIncidentTracker();
    t.take(event('late', 'raised', { occurredAt: '2026-11-22T12:00:00.000Z' }));
    t.take(event('early', 'raised', { occurredAt: '2026-11-22T08:00:00.000Z' }));
    t.take(event('middle', 'raised', { occurredAt: '2026-11-22T10:00:00.000Z' }));
    expect(t.open().map((o) => o.incidentId)).toEqual(['early', 'middle', 'late']);
    expect(t.open(2).map((o) => o.incidentId)).toEqual(['early', 'middle']);
  });
});

describe('the receiver', () => {
  it('reads its --out file back at start: the incidents in it are followed, and the summary names those left open, oldest first', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gw-inbox-unit-')), 'incidents.jsonl');
    const lines = [
      event('g1', 'raised', { seq: 1, occurredAt: '2026-11-22T10:00:01.000Z' }),
      event('g2', 'raised', {
        seq: 2,
        occurredAt: '2026-11-22T10:00:02.000Z',
        rule: { id: 'overpressure', message: 'Steam pressure high' },
        level: 'orange',
      }),
      event('g1', 'cleared', { seq: 3 }),
      event('g1', 'acknowledged', { seq: 4 }),
      event('g1', 'closed', { seq: 5, comment: 'after acknowledged' }),
      event('g3', 'raised', { seq: 6, occurredAt: '2026-11-22T10:00:06.000Z' }),
      event('g3', 'acknowledged', { seq: 7, occurredAt: '2026-11-22T10:00:07.000Z' }),
    ];
    writeFileSync(out, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const printed: string[] = [];
    const inbox = createPlatformInbox({ port: 0, secret: 'unit-secret-0123456789', out, print: (l) => printed.push(l) });
    expect(printed).toEqual([]);
    expect(inbox.stats()).toMatchObject({ incidentsOpen: 2, incidentsEnded: 1, notFollowed: 0, afterClosed: 0 });
    expect(summaryOf(inbox)).toEqual([
      '0 incidents accepted, 0 duplicates, 0 refused, 0 seq gaps',
      '1 incidents ended, 2 left open',
      'Left open, oldest first:',
      '  since 2026-11-22T10:00:02.000Z ORANGE plant-9/B-07 overpressure incident g2, last raised (seq 2, gw-1)',
      '  since 2026-11-22T10:00:06.000Z RED plant-9/B-07 drum-level-low-low incident g3, last acknowledged (seq 7, gw-1)',
    ]);
    expect(summaryOf(inbox, 1).slice(2)).toEqual([
      'Left open, oldest first:',
      '  since 2026-11-22T10:00:02.000Z ORANGE plant-9/B-07 overpressure incident g2, last raised (seq 2, gw-1)',
      '  and 1 more',
    ]);
  });

  it('says nothing is left open when every incident ended', () => {
    const inbox = createPlatformInbox({ port: 0, secret: 'unit-secret-0123456789', print: () => {} });
    expect(summaryOf(inbox)).toEqual(['0 incidents accepted, 0 duplicates, 0 refused, 0 seq gaps', '0 incidents ended, 0 left open']);
  });
});
