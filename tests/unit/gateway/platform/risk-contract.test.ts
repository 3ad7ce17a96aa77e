// The risk bodies of the platform contract: the examples of docs/platform-contract.md pass both the
// receiver checks and the published JSON Schema, the bodies the gateway builds do too, and the
// outbox takes each change once by its eventId, in the caller's transaction.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import {
  checkBody,
  describeBody,
  REPORT_SCHEMA,
  RISK_SCHEMA,
  RISK_SUMMARY_SCHEMA,
  riskBodyOf,
  riskSummaryEventId,
  type RiskBody,
  type RiskSummaryBody,
} from '../../../../gateway/platform/contract.js';
import { riskLineOf, riskSummaryLineOf } from '../../../../gateway/platform/inbox.js';
import { DEFAULT_FACTORS, RISK_FACTORS } from '../../../../config/risk-schema.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const doc = readFileSync(join(ROOT, 'docs', 'platform-contract.md'), 'utf8');
const validate = new Ajv({ allowUnionTypes: true, allErrors: true }).compile(
  JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object,
);
const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
const example = (schema: string) => examples.find((e) => e.schema === schema)!;

const change = {
  equipment: 'B-07',
  change: 3,
  from: 'yellow' as const,
  to: 'red' as const,
  score: 16,
  likelihood: 4,
  consequence: 4,
  factors: [{ factor: 'alarm_red', value: 1, weight: 100, cap: 100, points: 100, detail: 'drum-level-low-low' }],
  at: Date.UTC(2026, 10, 22, 10, 0, 5),
};

describe('risk bodies of the platform contract', () => {
  it('every example in the contract document passes the receiver checks and the JSON Schema', () => {
    expect(examples.map((e) => e.schema)).toEqual(
      expect.arrayContaining(['gw.incident.v1', 'gw.result.v1', 'gw.heartbeat.v1', RISK_SCHEMA, RISK_SUMMARY_SCHEMA, REPORT_SCHEMA]),
    );
    for (const e of examples) {
      expect(checkBody(e), String(e.schema)).toMatchObject({ ok: true });
      expect(validate(e), `${String(e.schema)}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it("the risk change's example names real factors with their default weights, and its points add up", () => {
    const e = example(RISK_SCHEMA) as unknown as RiskBody;
    for (const f of e.factors) {
      expect(RISK_FACTORS, f.factor).toContain(f.factor);
      expect({ weight: f.weight, cap: f.cap }, f.factor).toEqual(DEFAULT_FACTORS[f.factor as keyof typeof DEFAULT_FACTORS]);
      expect(f.points).toBe(Math.min(f.cap, f.weight * f.value));
    }
  });

  it("a risk change built by the gateway passes both, with an eventId from the gateway, the store's epoch, the equipment and its change number", () => {
    const body: RiskBody = {
      ...riskBodyOf(change, { id: 'B-07', category: 'boiler', code: '10003101012019000117' }, 'gw-1', 's', '0a1b2c3d'),
      seq: 7,
    };
    // Another gateway's B-07, and this gateway after its data folder was rebuilt (a new epoch), make other ids.
    expect(riskBodyOf(change, undefined, 'gw-2', 's', '0a1b2c3d').eventId).toBe('risk-gw-2-0a1b2c3d-B-07-3');
    expect(riskBodyOf(change, undefined, 'gw-1', 's', '99887766').eventId).toBe('risk-gw-1-99887766-B-07-3');
    expect(body).toMatchObject({
      eventId: 'risk-gw-1-0a1b2c3d-B-07-3',
      level: 'red',
      previousLevel: 'yellow',
      equipment: { id: 'B-07', category: 'boiler', code: '10003101012019000117' },
      changedAt: '2026-11-22T10:00:05.000Z',
    });
    expect(checkBody(body)).toMatchObject({ ok: true });
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    expect(riskLineOf(body)).toBe(
      '2026-11-22T10:00:05.000Z RISK s/B-07 yellow -> RED (score 16 = likelihood 4 x consequence 4): alarm_red 100 (drum-level-low-low) [seq 7, gw-1]',
    );
  });

  it('refuses what the contract does not have, naming the member', () => {
    const risk = example(RISK_SCHEMA);
    const summary = example(RISK_SUMMARY_SCHEMA) as unknown as RiskSummaryBody;
    const report = example(REPORT_SCHEMA);
    const bad: Array<[unknown, RegExp]> = [
      [{ ...risk, level: 'purple' }, /^level: /],
      [{ ...risk, factors: [{ factor: 'x', value: 1, weight: 1, cap: 1 }] }, /^factors\.0\.points: /],
      [{ ...summary, equipment: [{ ...summary.equipment[0], availability: 1.5 }] }, /^equipment\.0\.availability: /],
      [{ ...summary, kpi: { ...summary.kpi, annunciated: -1 } }, /^kpi\.annunciated: /],
      [{ ...report, date: '22/11/2026' }, /^date: expected a date YYYY-MM-DD/],
    ];
    for (const [body, problem] of bad) {
      expect(checkBody(body)).toMatchObject({ ok: false, problem: expect.stringMatching(problem) });
      expect(validate(body)).toBe(false);
    }
    // A report's sections are its own: members the contract does not list are allowed.
    expect(checkBody({ ...report, risk: { changes: [] }, alarms: [] })).toMatchObject({ ok: true });
    expect(validate({ ...report, risk: { changes: [] } })).toBe(true);
    expect(checkBody({ ...summary, levels: { blue: 1, yellow: 1, orange: 0 } })).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^levels\.red: /),
    });
    expect(validate({ ...summary, levels: { blue: 1, yellow: 1, orange: 0 } })).toBe(false);
    expect(riskSummaryLineOf(summary)).toMatch(
      /RISK SUMMARY shanghai-plant-3 until 2026-11-22T11:00:00.000Z: 1 yellow, 41 blue \(2 listed\); 7 alarms/,
    );
    // By gateway: two gateways of one site each send a summary of their own.
    expect(riskSummaryEventId('gw-1', Date.UTC(2026, 10, 22, 10))).toBe('risk-summary-gw-1-2026-11-22T10:00:00.000Z');
  });

  it('gateway outbox list says in one line what each queued body is', () => {
    expect(examples.map((e) => (e.schema === 'gw.heartbeat.v1' ? undefined : describeBody(e))).filter(Boolean)).toEqual([
      '2026-11-22T10:00:00.123Z red raised B-07/drum-level-low-low: Drum water level extremely low: -212 mm',
      '2026-11-22T10:01:30.000Z result LA-2 sample S-00042 GLU = 5.6 mmol/L',
      '2026-11-22T10:00:05.000Z risk B-07 yellow -> orange (score 12)',
      '2026-11-22T10:00:00.000Z risk summary shanghai-plant-3 until 2026-11-22T11:00:00.000Z (2 equipment)',
      '2026-11-22T22:00:00.000Z daily report shanghai-plant-3 for 2026-11-22',
      '2026-12-02T16:30:00.000Z lab daily summary shanghai-plant-3/LA-2 2026-12-02: 132 results (129 uploaded, 1 pending, 2 held), 1 file rejected, QC 12 runs / 1 rejection, 1 gap',
    ]);
    expect(describeBody({ schema: 'gw.other.v9' })).toBe('"gw.other.v9"');
    expect(describeBody(null)).toBe('a body without a schema');
  });

  it('the outbox takes a change once by its eventId, and only with the transaction it belongs to', () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-risk-outbox-')), STORE_FILE));
    const outbox = new Outbox(store);
    const body = riskBodyOf(change, undefined, 'gw-1', 's', 'e1');
    expect(body.equipment).toEqual({ id: 'B-07', category: 'other' });
    expect(() =>
      store.transaction(() => {
        outbox.add([body]);
        store.saveRisk([{ equipment: 'B-07', state: { changes: 3 } }]);
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(outbox.stats().pending).toBe(0);
    expect(outbox.add([body])).toEqual([1]);
    // The same change made again (a restart before the state was saved cannot happen; a bug could): not sent twice.
    expect(outbox.add([body])).toEqual([]);
    expect(outbox.list('pending').map((r) => [r.eventId, JSON.parse(r.incident).schema])).toEqual([['risk-gw-1-e1-B-07-3', RISK_SCHEMA]]);
    outbox.close();
    store.close();
  });
});
