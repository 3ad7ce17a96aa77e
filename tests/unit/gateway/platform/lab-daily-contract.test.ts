// The lab daily summary in the platform contract: the example of docs/platform-contract.md passes
// the receiver checks and the published JSON Schema, so does a body the gateway builds, a bad one is
// refused with its path, and the reference inbox prints each in one line.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import { buildLabDaily } from '../../../../gateway/lab/daily.js';
import {
  checkBody,
  LAB_DAILY_SCHEMA,
  labDailyEventId,
  resultBodyOf,
  type LabDailyBody,
  type ResultBody,
} from '../../../../gateway/platform/contract.js';
import { labDailyLineOf, resultLineOf } from '../../../../gateway/platform/inbox.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const doc = readFileSync(join(ROOT, 'docs', 'platform-contract.md'), 'utf8');
const validate = new Ajv({ allowUnionTypes: true, allErrors: true }).compile(
  JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object,
);
const example = [...doc.matchAll(/```json\n([\s\S]*?)```/g)]
  .map((m) => JSON.parse(m[1]!) as Record<string, unknown>)
  .find((e) => e.schema === LAB_DAILY_SCHEMA) as LabDailyBody;

describe('gw.lab-daily.v1', () => {
  it("the document's example passes the receiver checks and the JSON Schema, and the inbox prints it in one line", () => {
    expect(example).toBeDefined();
    expect(checkBody(example)).toMatchObject({ ok: true });
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(example.eventId).toBe(labDailyEventId(example.site, example.instrument.id, example.date));
    // Ids hold '-': site shanghai-plant with instrument 3-LA-2 is another summary than the example's.
    expect(labDailyEventId('shanghai-plant', '3-LA-2', example.date)).not.toBe(example.eventId);
    expect(labDailyLineOf(example)).toBe(
      '2026-12-02T16:30:00.000Z LAB-DAILY shanghai-plant-3/LA-2 2026-12-02: 132 results (129 uploaded, 1 pending, 2 held), 1 file rejected, QC 12 runs / 1 rejection, 1 gap [seq 4711, gw-sh-001]',
    );
  });

  it('a body the gateway builds passes both checks', async () => {
    const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-lab-contract-')), STORE_FILE));
    const outbox = new Outbox(store);
    try {
      const config = parseSite(
        [
          'version: 1',
          `gateway: { id: gw-test, site: test-site, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-lab-contract-'))}, timezone: UTC }`,
          'platform: { url: "http://127.0.0.1:9/", secret: a-secret-of-at-least-16-chars }',
          'connections: [{ id: astm-1, type: astm-tcp, port: 5002 }]',
          'equipment: [{ id: LA-2, category: lab_analyzer, connection: astm-1 }]',
          '',
        ].join('\n'),
        { env: {} },
      );
      const at = Date.parse('2026-12-02T08:00:00Z');
      outbox.addResults(
        [{ resultId: 'LA-2:1', instrument: 'LA-2', sampleId: 'S1', analyte: 'GLU', value: 5.1, flags: [], status: 'final', resultAt: '' }],
        undefined,
        at,
      );
      store.appendJournal([
        { ts: at, kind: 'lab', body: { kind: 'file-rejected', instrument: 'LA-2', file: 'a.csv', reason: 'truncated', ts: at } },
      ]);
      const [body] = await buildLabDaily(store.db, config, '2026-12-02', at + 86_400_000);
      expect(body).toMatchObject({ results: { captured: 1 }, files: { rejected: 1 } });
      expect(checkBody({ ...body, seq: 7 })).toMatchObject({ ok: true });
      expect(validate({ ...body, seq: 7 }), JSON.stringify(validate.errors)).toBe(true);
    } finally {
      outbox.close();
      store.close();
    }
  });

  it('a receiver refuses a body that is not one, naming what is wrong', () => {
    for (const [body, problem] of [
      [{ ...example, date: '02/12/2026' }, /^date: expected a date YYYY-MM-DD/],
      [{ ...example, results: { ...example.results, uploaded: -1 } }, /^results\.uploaded: /],
      [
        { ...example, gaps: { ...example.gaps, list: [{ from: 'yesterday', to: example.to, minutes: 5 }] } },
        /^gaps\.list\.0\.from: expected an ISO 8601 time/,
      ],
      [{ ...example, refusals: [{ at: example.to, kind: 'file-lost', reason: '' }] }, /^refusals\.0\.kind: /],
    ] as const) {
      const checked = checkBody(body);
      expect(checked.ok).toBe(false);
      expect(checked.ok ? '' : checked.problem).toMatch(problem);
      expect(validate(body)).toBe(false);
    }
  });

  it('the inbox prints a result whose texts come from a file as one line, in its order: no line break or bidi override gets through', () => {
    const body = {
      ...resultBodyOf(
        {
          resultId: 'LA-2:file:abc:1',
          instrument: 'LA-2',
          sampleId: 'S1\n2026-12-02T00:00:00Z RESULT forged',
          analyte: 'GLU\u202e',
          value: 5.1,
          unit: 'mmol/L',
          flags: [],
          status: 'final',
          resultAt: '2026-12-02T00:00:00Z',
        },
        undefined,
        'gw-1',
        'site-1',
      ),
      seq: 3,
    };
    expect(checkBody(body)).toMatchObject({ ok: true });
    expect(resultLineOf(body as ResultBody)).toBe(
      '2026-12-02T00:00:00Z RESULT site-1/LA-2 sample S1\\u000a2026-12-02T00:00:00Z RESULT forged GLU\\u202e = 5.1 mmol/L (final) [seq 3, gw-1]',
    );
  });
});
