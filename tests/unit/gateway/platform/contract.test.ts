// The incident lifecycle as the platform sees it: every path through the rule engine, mapped by the
// contract, ends with exactly one `closed`; the contract's checks and its JSON Schema know the type.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../../drivers/types.js';
import { checkBody, INCIDENT_TYPES, incidentOf, type IncidentBody } from '../../../../gateway/platform/contract.js';
import { RuleEngine } from '../../../../rules/engine.js';
import { compile } from '../../../../rules/expression.js';
import type { AlarmEvent, AlarmStore, PersistedAlarm, RuleSpec } from '../../../../rules/types.js';
import { lowLevelRule, pointNames } from '../../../helpers/rules.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const names = pointNames('level', 'idle');
const rule = (o: Partial<RuleSpec> = {}): RuleSpec => lowLevelRule(names, o);
const level = (ts: number, value: number): Reading[] => [{ equipment: 'B-1', point: 'level', value, quality: 'good', ts }];
const idle = (ts: number, value: boolean): Reading[] => [{ equipment: 'B-1', point: 'idle', value, quality: 'good', ts }];
const KEY = 'B-1/low';
const equipment = { id: 'B-1', category: 'boiler' };

/** What the platform receives for these alarm events: `type (comment)` per incident, in order. */
function platformSees(events: readonly AlarmEvent[]): Map<string, string[]> {
  const byIncident = new Map<string, string[]>();
  for (const e of events) {
    const body = incidentOf(e, equipment, 'gw-1');
    if (!body) continue;
    const list = byIncident.get(body.incidentId) ?? [];
    list.push(body.type === 'closed' ? `closed (${body.comment})` : body.type);
    byIncident.set(body.incidentId, list);
  }
  return byIncident;
}

describe('how an incident ends, as the platform receives it', () => {
  it('acknowledged, then cleared', () => {
    const e = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const events = [...e.ingest(level(1000, -250)), ...e.acknowledge(KEY, 'wang', 'seen', 2000), ...e.ingest(level(3000, -100))];
    expect([...platformSees(events).values()]).toEqual([['raised', 'acknowledged', 'cleared', 'closed (after cleared)']]);
  });

  it('cleared, then acknowledged', () => {
    const e = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const events = [...e.ingest(level(1000, -250)), ...e.ingest(level(2000, -100)), ...e.acknowledge(KEY, 'wang', 'seen', 3000)];
    expect([...platformSees(events).values()]).toEqual([['raised', 'cleared', 'acknowledged', 'closed (after acknowledged)']]);
  });

  it('latched: acknowledged while it holds, then reset by an acknowledgement once it has gone; no cleared', () => {
    const e = new RuleEngine({ site: 's', rules: [rule({ latch: true })], now: 0 });
    const events = [
      ...e.ingest(level(1000, -250)),
      ...e.acknowledge(KEY, 'wang', 'seen', 2000),
      ...e.ingest(level(3000, -100)),
      ...e.acknowledge(KEY, 'wang', 'reset', 4000),
    ];
    expect([...platformSees(events).values()]).toEqual([['raised', 'acknowledged', 'acknowledged', 'closed (after acknowledged)']]);
  });

  it('suppressed by design while open, also after it had cleared (cleared twice)', () => {
    const e = new RuleEngine({ site: 's', rules: [rule({ suppressWhen: compile('idle', names) })], now: 0 });
    const active = [...e.ingest([...idle(0, false), ...level(1000, -250)]), ...e.ingest(idle(2000, true))];
    expect([...platformSees(active).values()]).toEqual([['raised', 'cleared', 'closed (after suppressed)']]);
    const returned = [
      ...e.ingest(idle(3000, false)),
      ...e.ingest(level(4000, -250)),
      ...e.ingest(level(5000, -100)),
      ...e.ingest(idle(6000, true)),
    ];
    expect([...platformSees(returned).values()]).toEqual([['raised', 'cleared', 'cleared', 'closed (after suppressed)']]);
  });

  it('out of service: cleared with who and why, then closed; the return to service is not sent, and a condition that still holds is a new incident', () => {
    const e = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const events = [...e.ingest(level(1000, -250)), ...e.setOutOfService(KEY, true, 'admin-li', 'transmitter replaced', 2000)];
    const sent = events.map((x) => incidentOf(x, equipment, 'gw-1')).filter((x) => x !== undefined);
    expect(sent).toMatchObject([
      { type: 'raised' },
      { type: 'cleared', by: 'admin-li', comment: 'transmitter replaced' },
      { type: 'closed', comment: 'after out_of_service' },
    ]);
    expect(new Set(sent.map((x) => x.incidentId)).size).toBe(1);
    const back = e.setOutOfService(KEY, false, 'admin-li', 'done', 3000);
    expect(back.map((x) => x.type)).toEqual(['in_service']);
    expect(back.map((x) => incidentOf(x, equipment, 'gw-1'))).toEqual([undefined]);
    const again = e.ingest(level(4000, -250));
    expect(again.map((x) => incidentOf(x, equipment, 'gw-1'))).toMatchObject([{ type: 'raised' }]);
    expect(again[0]!.incidentId).not.toBe(sent[0]!.incidentId);
    // Out of service with no incident open belongs to none: the platform hears nothing.
    const quiet = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    expect(quiet.setOutOfService(KEY, true, 'admin-li', 'commissioning', 1000).map((x) => incidentOf(x, equipment, 'gw-1'))).toEqual([
      undefined,
    ]);
  });

  it('shelved past expiry: shelving ends nothing; after the expiry the incident ends by clear and acknowledgement', () => {
    const e = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const events = [
      ...e.ingest(level(1000, -250)),
      ...e.shelve(KEY, 'wang', 'gauge swap', 5000, 2000),
      ...e.ingest(level(3000, -100)),
      ...e.tick(6000),
    ];
    expect([...platformSees(events).values()]).toEqual([['raised', 'shelved']]);
    const after = [...events, ...e.tick(8000), ...e.acknowledge(KEY, 'wang', 'seen', 9000)];
    expect([...platformSees(after).values()]).toEqual([['raised', 'shelved', 'cleared', 'acknowledged', 'closed (after acknowledged)']]);
  });

  it('rule removed from the site file: closed when the gateway starts, once', () => {
    const data = new Map<string, PersistedAlarm>();
    const store: AlarmStore = { load: () => new Map([...data].map(([k, v]) => [k, structuredClone(v)])) };
    const first = new RuleEngine({ site: 's', rules: [rule()], store, now: 0 });
    const raised = first.ingest(level(1000, -250));
    for (const { key, state } of first.takeChanges()) if (state) data.set(key, structuredClone(state));
    const second = new RuleEngine({ site: 's', rules: [], store, now: 5000 });
    const events = [...raised, ...second.takeEvents()];
    expect([...platformSees(events).values()]).toEqual([['raised', 'closed (rule removed from the site file)']]);
    expect(second.takeChanges()).toEqual([{ key: KEY, state: null }]);
  });
});

describe('the closed incident event', () => {
  const closed = (): IncidentBody => ({
    schema: 'gw.incident.v1',
    eventId: 'e-9',
    incidentId: 'i-1',
    type: 'closed',
    level: 'red',
    gatewayId: 'gw-1',
    site: 's',
    equipment: { id: 'B-1', category: 'boiler' },
    rule: { id: 'low', message: 'Level low: -250' },
    point: 'level',
    value: -250,
    occurredAt: '2026-11-22T10:00:03.000Z',
    comment: 'after cleared',
    seq: 9,
  });

  it('passes the receiver checks and the published JSON Schema; a type the contract does not have does not', () => {
    expect(checkBody(closed())).toMatchObject({ ok: true, body: { type: 'closed' } });
    expect(checkBody({ ...closed(), type: 'ended' })).toMatchObject({ ok: false, problem: expect.stringMatching(/^type: /) });
    const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as {
      definitions: { incident: { properties: { type: { enum: string[] } } } };
    };
    expect(schema.definitions.incident.properties.type.enum).toEqual([...INCIDENT_TYPES]);
    const validate = new Ajv({ allowUnionTypes: true }).compile(schema);
    expect(validate(closed()), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...closed(), type: 'ended' })).toBe(false);
  });

  it('events that stay local map to nothing', () => {
    const e = new RuleEngine({ site: 's', rules: [rule()], now: 0 });
    const events = [...e.ingest(level(1000, -250)), ...e.shelve(KEY, 'wang', 'x', 1000, 1500), ...e.unshelve(KEY, 'wang', 'y', 1600)];
    expect(events.map((x) => x.type)).toEqual(['raised', 'shelved', 'unshelved']);
    expect(incidentOf(events[2]!, equipment, 'gw-1')).toBeUndefined();
  });
});
