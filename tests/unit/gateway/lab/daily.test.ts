// The daily upload summary of lab instruments (gw.lab-daily.v1): its figures on a store filled with
// known results (delivered, pending, refused, held), drivers' events and QC runs, worked out by hand
// below; and its schedule on a given clock: at lab.daily_summary.at (site time) the previous day's
// summaries, once per date also across restarts, only for days the gateway watched, missed days
// sent after a restart.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import type { SiteConfig } from '../../../../config/schema.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import {
  buildLabDaily,
  CATCH_UP_DAYS,
  createLabDailyService,
  LAST_SENT_KEY,
  type LabDaily,
  type LabDailyOutbox,
} from '../../../../gateway/lab/daily.js';
import { checkBody, describeLabDaily, resultBodyOf } from '../../../../gateway/platform/contract.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';
import { CHECK_EVERY_MS, RETRY_AFTER_MS, WATCHING_SINCE_KEY } from '../../../../gateway/report/service.js';
import { GatewayStore, STORE_FILE } from '../../../../gateway/store.js';

const log = pino({ level: 'silent' });
/** Local time in Shanghai (UTC+8), on the summarised day 2026-12-02 unless another date is given. */
const sh = (hhmm: string, date = '2026-12-02') => Date.parse(`${date}T${hhmm}:00+08:00`);

function site(o: { platform?: boolean; lab?: string[]; labEquipment?: boolean } = {}): SiteConfig {
  return parseSite(
    [
      'version: 1',
      `gateway: { id: gw-test, site: test-site, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-lab-daily-'))}, timezone: Asia/Shanghai }`,
      'mqtt: { port: 1883 }',
      ...(o.platform === false ? [] : ['platform: { url: "http://127.0.0.1:9/", secret: a-secret-of-at-least-16-chars }']),
      ...(o.lab ?? []),
      'connections:',
      '  - { id: astm-1, type: astm-tcp, port: 5002 }',
      '  - { id: astm-2, type: astm-tcp, port: 5003 }',
      '  - { id: sim, type: sim }',
      'equipment:',
      ...(o.labEquipment === false
        ? []
        : [
            '  - { id: LA-2, name: Chemistry analyzer, category: lab_analyzer, connection: astm-1 }',
            '  - { id: LA-3, category: lab_analyzer, connection: astm-2 }',
          ]),
      '  - { id: B-07, category: boiler, connection: sim, model: steam-boiler, points: [{ name: steam_pressure }] }',
      '',
    ].join('\n'),
    { env: {} },
  );
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of open.splice(0)) s.close();
});

function newStore(): { store: GatewayStore; outbox: Outbox } {
  const store = new GatewayStore(join(mkdtempSync(join(tmpdir(), 'gw-lab-daily-')), STORE_FILE));
  const outbox = new Outbox(store);
  open.push(outbox, store);
  return { store, outbox };
}

let n = 0;
function result(sampleId: string, analyte = 'GLU', instrument = 'LA-2'): LabResult {
  return {
    resultId: `${instrument}:${++n}`,
    instrument,
    sampleId,
    analyte,
    value: 5.1,
    flags: [],
    status: 'final',
    resultAt: '2026-12-02T00:00:00Z',
  };
}

/**
 * LA-2's day: six results captured at 08:00 (S1 GLU and CHOL, S2), 09:00 (S3), 12:30 (S4) and 15:00
 * (the control QC1-001); the platform took S1's two and the control, S2 still waits, S3 was refused
 * for good, S4 is held for QC. One result the evening before and one the morning after do not count.
 * Drivers: two files taken, one rejected, one message refused (and a file of LA-3 rejected, one of LA-2
 * the day before). QC: GLU accepted, warning, rejected; CHOL accepted. The hourly risk summary of
 * 10:00 to 11:00 saw LA-2 offline half the hour.
 */
function fillDay(store: GatewayStore, outbox: Outbox): void {
  const add = (r: LabResult, at: number, held = false) =>
    outbox.addResults(
      [r],
      (x) => resultBodyOf(x, undefined, 'gw-test', 'test-site'),
      at,
      () => (held ? 'LA-2/GLU' : undefined),
    );
  const s1 = [result('S1'), result('S1', 'CHOL')];
  const s2 = result('S2');
  const s3 = result('S3');
  const qc = result('QC1-001');
  add(result('S0'), sh('23:59', '2026-12-01'));
  for (const r of [...s1, s2]) add(r, sh('08:00'));
  add(s3, sh('09:00'));
  add(result('S4'), sh('12:30'), true);
  add(qc, sh('15:00'));
  add(result('S5'), sh('00:10', '2026-12-03'));
  const seqOf = (r: LabResult) => outbox.pending(100).find((row) => row.eventId === r.resultId)!.seq;
  for (const r of [...s1, qc]) outbox.delivered(seqOf(r));
  outbox.dead(seqOf(s3), '422 refused');

  const lab = (ts: number, body: Record<string, unknown>) => ({
    ts,
    kind: 'lab' as const,
    equipment: String(body.instrument),
    body: { ...body, ts },
  });
  const qcRun = (ts: number, analyte: string, status: string) => ({
    ts,
    kind: 'qc' as const,
    equipment: 'LA-2',
    body: { instrument: 'LA-2', analyte, level: '1', value: 5, z: 0, status, rules: [], sampleId: 'QC1-001' },
  });
  store.appendJournal([
    lab(sh('20:00', '2026-12-01'), { kind: 'file-rejected', instrument: 'LA-2', file: 'old.csv', reason: 'truncated' }),
    lab(sh('08:00'), { kind: 'file-taken', instrument: 'LA-2', file: 'run-1.csv', results: 3 }),
    lab(sh('09:00'), { kind: 'file-taken', instrument: 'LA-2', file: 'run-2.csv', results: 1 }),
    lab(sh('10:15'), { kind: 'file-rejected', instrument: 'LA-2', file: 'run-3.csv', reason: 'line 3: "5,1,2" is not a number' }),
    lab(sh('11:00'), { kind: 'message-refused', instrument: 'LA-2', controlId: 'MSG-7', reason: 'no OBX segment' }),
    lab(sh('11:30'), { kind: 'file-rejected', instrument: 'LA-3', file: 'x.xml', reason: 'the XML ends inside <Result>' }),
    qcRun(sh('15:00'), 'GLU', 'accepted'),
    qcRun(sh('15:01'), 'GLU', 'warning'),
    qcRun(sh('15:02'), 'GLU', 'rejected'),
    qcRun(sh('15:03'), 'CHOL', 'accepted'),
    {
      ts: sh('10:00'),
      kind: 'risk_summary',
      body: {
        from: new Date(sh('10:00')).toISOString(),
        to: new Date(sh('11:00')).toISOString(),
        equipment: [
          { id: 'LA-2', availability: 0.5 },
          { id: 'LA-3', availability: 1 },
        ],
      },
    },
  ]);
}

describe('the lab daily summary', () => {
  it('counts the day of each lab instrument: results by where they stand, samples, files, messages, QC runs and gaps', async () => {
    const { store, outbox } = newStore();
    fillDay(store, outbox);
    const config = site();
    const bodies = await buildLabDaily(store.db, config, '2026-12-02', sh('00:30', '2026-12-03'));
    // The boiler is not a lab instrument and captured nothing: no summary.
    expect(bodies.map((b) => b.instrument.id)).toEqual(['LA-2', 'LA-3']);
    const [la2, la3] = bodies as [LabDaily, LabDaily];
    expect(la2).toEqual({
      schema: 'gw.lab-daily.v1',
      eventId: 'lab-daily:test-site:LA-2:2026-12-02',
      gatewayId: 'gw-test',
      site: 'test-site',
      instrument: { id: 'LA-2', category: 'lab_analyzer', name: 'Chemistry analyzer' },
      date: '2026-12-02',
      timezone: 'Asia/Shanghai',
      from: '2026-12-01T16:00:00.000Z',
      to: '2026-12-02T16:00:00.000Z',
      generatedAt: '2026-12-02T16:30:00.000Z',
      results: { captured: 6, uploaded: 3, pending: 1, held: 1, refused: 1 },
      samples: 5,
      firstResultAt: '2026-12-02T00:00:00.000Z',
      lastResultAt: '2026-12-02T07:00:00.000Z',
      files: { taken: 2, rejected: 1 },
      messages: { refused: 1 },
      refusals: [
        { at: '2026-12-02T02:15:00.000Z', kind: 'file-rejected', file: 'run-3.csv', reason: 'line 3: "5,1,2" is not a number' },
        { at: '2026-12-02T03:00:00.000Z', kind: 'message-refused', controlId: 'MSG-7', reason: 'no OBX segment' },
      ],
      qc: {
        runs: 4,
        warnings: 1,
        rejections: 1,
        analytes: [
          { analyte: 'CHOL', runs: 1, warnings: 0, rejections: 0 },
          { analyte: 'GLU', runs: 3, warnings: 1, rejections: 1 },
        ],
      },
      // 09:00 to 12:30 and 12:30 to 15:00 are longer than 2 h, the longest first; 08:00 to 09:00 is not.
      // The first overlaps the hour the risk summary saw LA-2 offline.
      gaps: {
        thresholdMinutes: 120,
        total: 2,
        list: [
          { from: '2026-12-02T01:00:00.000Z', to: '2026-12-02T04:30:00.000Z', minutes: 210, offline: true },
          { from: '2026-12-02T04:30:00.000Z', to: '2026-12-02T07:00:00.000Z', minutes: 150 },
        ],
      },
      notes: [],
    });
    expect(la3).toMatchObject({
      results: { captured: 0, uploaded: 0, pending: 0, held: 0, refused: 0 },
      samples: 0,
      files: { taken: 0, rejected: 1 },
      gaps: { total: 0, list: [] },
    });
    expect(la3.firstResultAt).toBeUndefined();
    // What the platform checks, with the seq the outbox gives.
    for (const b of bodies) expect(checkBody({ ...b, seq: 1 })).toMatchObject({ ok: true });
    expect(describeLabDaily(la2)).toBe(
      'test-site/LA-2 2026-12-02: 6 results (3 uploaded, 1 pending, 1 held, 1 refused), 1 file rejected, 1 message refused, QC 4 runs / 1 rejection, 2 gaps',
    );
    expect(describeLabDaily(la3)).toBe('test-site/LA-3 2026-12-02: 0 results (0 uploaded), 1 file rejected, QC 0 runs / 0 rejections');
  });

  it('takes the gap from lab.daily_summary.gap, says when the site has no platform, and summarises other equipment that captured results', async () => {
    const { store, outbox } = newStore();
    fillDay(store, outbox);
    const config = site({ platform: false, lab: ['lab: { daily_summary: { gap: 1h } }'], labEquipment: true });
    const [la2] = await buildLabDaily(store.db, config, '2026-12-02', sh('00:30', '2026-12-03'));
    expect(la2!.gaps).toMatchObject({ thresholdMinutes: 60, total: 2 });
    expect(la2!.notes).toEqual(['The site has no platform: results are kept in the store and none is uploaded.']);
    // Without a platform no result is uploaded: one without an outbox event was never queued.
    expect(la2!.results.uploaded).toBe(0);
    // A boiler with a result block's results captured that day is summarised too.
    outbox.addResults([result('S9', 'GLU', 'B-07')], undefined, sh('09:30'));
    expect((await buildLabDaily(store.db, config, '2026-12-02', sh('00:30', '2026-12-03'))).map((b) => b.instrument.id)).toEqual([
      'LA-2',
      'LA-3',
      'B-07',
    ]);
  });

  it('summarises an instrument removed from (or renamed in) the site file since it captured results that day, and says so', async () => {
    const { store, outbox } = newStore();
    fillDay(store, outbox);
    // LA-9 captured two results that day, then left the site file; LA-8 left it before the day.
    outbox.addResults(
      [result('S7', 'GLU', 'LA-9'), result('S8', 'GLU', 'LA-9')],
      (x) => resultBodyOf(x, undefined, 'gw-test', 'test-site'),
      sh('10:00'),
    );
    outbox.addResults([result('S6', 'GLU', 'LA-8')], undefined, sh('10:00', '2026-12-01'));
    const bodies = await buildLabDaily(store.db, site(), '2026-12-02', sh('00:30', '2026-12-03'));
    expect(bodies.map((b) => b.instrument.id)).toEqual(['LA-2', 'LA-3', 'LA-9']);
    const la9 = bodies[2]!;
    expect(la9).toMatchObject({ eventId: 'lab-daily:test-site:LA-9:2026-12-02', instrument: { id: 'LA-9', category: 'lab_analyzer' } });
    expect(la9.results).toEqual({ captured: 2, uploaded: 0, pending: 2, held: 0, refused: 0 });
    expect(la9.notes).toEqual(['LA-9 is not in the site file any more: its results of the day are summarised as they were stored.']);
    expect(checkBody({ ...la9, seq: 1 }).ok).toBe(true);
  });

  it('the schema refuses a bad gap and accepts none at all', () => {
    expect(() => site({ lab: ['lab: { daily_summary: { gap: 10s } }'] })).toThrow(
      /lab\.daily_summary\.gap: expected a duration from 1m to 24h/,
    );
    expect(() => site({ lab: ['lab: { daily_summary: { at: "24:00" } }'] })).toThrow(/lab\.daily_summary\.at/);
    expect(site().lab).toEqual({ daily_summary: { enabled: true, at: '00:30', gap: 7_200_000 } });
  });
});

function setup(config: SiteConfig = site()) {
  const s = newStore();
  fillDay(s.store, s.outbox);
  const queued: LabDaily[] = [];
  let fail: string | undefined;
  const outbox: LabDailyOutbox = {
    add: (bodies) => {
      if (fail) throw new Error(fail);
      queued.push(...bodies);
    },
  };
  let now = sh('00:29', '2026-12-03');
  const notify = vi.fn();
  const make = () => createLabDailyService({ config, log, store: () => s.store, outbox: () => outbox, notify, now: () => now })!;
  return { ...s, queued, notify, make, setNow: (t: number) => (now = t), failWith: (m: string | undefined) => (fail = m) };
}

describe('the lab daily summary schedule', () => {
  it("queues the previous day's summaries at lab.daily_summary.at, once per date, also after a restart", async () => {
    const t = setup();
    const service = t.make();
    expect(await service.check()).toEqual([]);
    t.setNow(sh('00:30', '2026-12-03'));
    expect(await service.check()).toEqual(['2026-12-02']);
    expect(t.queued.map((b) => b.eventId)).toEqual(['lab-daily:test-site:LA-2:2026-12-02', 'lab-daily:test-site:LA-3:2026-12-02']);
    expect(t.notify).toHaveBeenCalledTimes(1);
    expect(t.store.counter(LAST_SENT_KEY)).toBe('2026-12-02');
    // Later that day, and after a restart (a new service on the same store): nothing again.
    t.setNow(sh('18:00', '2026-12-03'));
    expect(await service.check()).toEqual([]);
    expect(await t.make().check()).toEqual([]);
    expect(t.queued).toHaveLength(2);
    // The next day's 00:30: the 3rd, whose only result is S5 at 00:10.
    t.setNow(sh('00:30', '2026-12-04'));
    expect(await t.make().check()).toEqual(['2026-12-03']);
    expect(t.queued.slice(2).map((b) => [b.instrument.id, b.date, b.results.captured])).toEqual([
      ['LA-2', '2026-12-03', 1],
      ['LA-3', '2026-12-03', 0],
    ]);
  });

  it('a gateway down for days sends each missed day when it starts, at most CATCH_UP_DAYS of them', async () => {
    const t = setup();
    t.store.saveCounter(LAST_SENT_KEY, '2026-12-01');
    t.setNow(sh('14:00', '2026-12-05'));
    expect(await t.make().check()).toEqual(['2026-12-02', '2026-12-03', '2026-12-04']);
    expect(t.queued.filter((b) => b.instrument.id === 'LA-2').map((b) => b.results.captured)).toEqual([6, 1, 0]);
    // Down for a month: the last CATCH_UP_DAYS days only.
    t.setNow(sh('14:00', '2027-01-05'));
    const sent = await t.make().check();
    expect(sent).toHaveLength(CATCH_UP_DAYS);
    expect(sent.at(0)).toBe('2026-12-29');
    expect(sent.at(-1)).toBe('2027-01-04');
  });

  it('a date sent while the clock was ahead (years) does not stop the summaries once the clock is right', async () => {
    const t = setup();
    t.store.saveCounter(LAST_SENT_KEY, '2036-06-01');
    t.setNow(sh('00:30', '2026-12-03'));
    expect(await t.make().check()).toEqual(['2026-12-02']);
    expect(t.store.counter(LAST_SENT_KEY)).toBe('2026-12-02');
    t.setNow(sh('00:30', '2026-12-04'));
    expect(await t.make().check()).toEqual(['2026-12-03']);
  });

  it('a new store started after that time sends nothing of a day it did not watch; the next day it sends the day it watched', async () => {
    const s = newStore();
    const queued: LabDaily[] = [];
    let now = sh('14:00', '2026-12-03');
    const make = () =>
      createLabDailyService({
        config: site(),
        log,
        store: () => s.store,
        outbox: () => ({ add: (b) => queued.push(...b) }),
        now: () => now,
      })!;
    expect(await make().check()).toEqual([]);
    expect(s.store.counter(WATCHING_SINCE_KEY)).toBe(sh('14:00', '2026-12-03'));
    now = sh('00:30', '2026-12-04');
    expect(await make().check()).toEqual(['2026-12-03']);
    expect(queued.map((b) => b.date)).toEqual(['2026-12-03', '2026-12-03']);
  });

  it('a failure to queue commits nothing: it is tried again after RETRY_AFTER_MS, not every minute', async () => {
    const t = setup();
    t.setNow(sh('00:30', '2026-12-03'));
    t.failWith('database is locked');
    const service = t.make();
    expect(await service.check()).toEqual([]);
    expect(t.store.counter(LAST_SENT_KEY)).toBeUndefined();
    expect(service.health!().detail).toMatchObject({ lastError: 'database is locked' });
    t.failWith(undefined);
    t.setNow(sh('00:30', '2026-12-03') + CHECK_EVERY_MS);
    expect(await service.check()).toEqual([]);
    t.setNow(sh('00:30', '2026-12-03') + RETRY_AFTER_MS);
    expect(await service.check()).toEqual(['2026-12-02']);
    expect(t.queued).toHaveLength(2);
  });

  it('runs on its own every minute once started; none without a platform, without lab instruments or when turned off', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const t = setup();
    t.setNow(sh('00:29', '2026-12-03'));
    const service = t.make();
    await service.start();
    t.setNow(sh('00:30', '2026-12-03'));
    await vi.advanceTimersByTimeAsync(CHECK_EVERY_MS);
    await vi.waitFor(() => expect(t.queued).toHaveLength(2));
    await service.stop();
    expect(
      createLabDailyService({ config: site({ platform: false }), log, store: () => t.store, outbox: () => undefined }),
    ).toBeUndefined();
    expect(
      createLabDailyService({ config: site({ labEquipment: false }), log, store: () => t.store, outbox: () => undefined }),
    ).toBeUndefined();
    const off = site({ lab: ['lab: { daily_summary: { enabled: false } }'] });
    expect(createLabDailyService({ config: off, log, store: () => t.store, outbox: () => undefined })).toBeUndefined();
  });
});
