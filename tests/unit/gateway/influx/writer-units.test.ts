// The InfluxDB writer's parts on their own: the stager's commits, the target's health and backoff,
// the refusals of lines, and the two lanes over a real spool file with a client that answers as told.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InfluxWriteError, type InfluxClient } from '../../../../gateway/influx/client.js';
import { TelemetryIntake } from '../../../../gateway/influx/intake.js';
import { Lanes, type Lane } from '../../../../gateway/influx/lanes.js';
import { Refusals } from '../../../../gateway/influx/refusals.js';
import { COMMIT_LINES, COMMIT_MS, Stager } from '../../../../gateway/influx/stager.js';
import { TargetHealth } from '../../../../gateway/influx/target-health.js';
import { WriterMetrics } from '../../../../gateway/influx/writer-metrics.js';
import { createMetrics } from '../../../../gateway/metrics.js';
import { Spool } from '../../../../gateway/spool.js';

const reconnect = { initial_delay: 1000, max_delay: 8000, jitter: 0 };

function capture() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) }));
  return { log, lines };
}

const newSpool = () =>
  new Spool({
    file: join(mkdtempSync(join(tmpdir(), 'gw-lanes-')), 'spool.db'),
    maxBytes: 1e7,
    log: pino({ level: 'silent' }),
    messages: { full: 'full', room: 'room' },
  });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Stager', () => {
  const make = (open = true) => {
    const commits: string[][] = [];
    let committed = 0;
    const stager = new Stager({ flushIntervalMs: 1000, open: () => open, commit: (c) => commits.push(c), committed: () => committed++ });
    return { stager, commits, committed: () => committed };
  };

  it('commits after COMMIT_MS, or at once when COMMIT_LINES are staged, in chunks of at most COMMIT_LINES', () => {
    const { stager, commits, committed } = make();
    stager.stage(['a', 'b']);
    expect(commits).toEqual([]);
    expect(stager.lines).toBe(2);
    expect(stager.chars).toBe(2);
    vi.advanceTimersByTime(COMMIT_MS);
    expect(commits).toEqual([['a', 'b']]);
    stager.stage(Array.from({ length: COMMIT_LINES + 5 }, (_, k) => `l${k}`));
    expect(commits.map((c) => c.length)).toEqual([2, COMMIT_LINES, 5]);
    expect(committed()).toBe(2);
    expect(stager.lines).toBe(0);
  });

  it('keeps lines staged while there is no spool, and commits no more by itself once stopped', () => {
    const closed = make(false);
    closed.stager.stage(['a']);
    vi.advanceTimersByTime(COMMIT_MS);
    expect(closed.commits).toEqual([]);
    expect(closed.stager.lines).toBe(1);
    const stopped = make();
    stopped.stager.stop();
    stopped.stager.stage(['a']);
    vi.advanceTimersByTime(10 * COMMIT_MS);
    expect(stopped.commits).toEqual([]);
    stopped.stager.commit();
    expect(stopped.commits).toEqual([['a']]);
  });
});

describe('TargetHealth', () => {
  const make = () => {
    const { log, lines } = capture();
    let retries = 0;
    const health = new TargetHealth({ target: 't', batchSize: 100, reconnect, log, retry: () => retries++ });
    return { health, lines, retries: () => retries };
  };

  it('halves the batch for a request too large, without an outage', () => {
    const { health, retries } = make();
    expect(health.failed(new InfluxWriteError('too_large', 'too big', 413), 100, 100)).toBe(false);
    expect(health.maxLines).toBe(50);
    expect(health.failed(new InfluxWriteError('too_large', 'too big', 413), 30, 100)).toBe(false);
    expect(health.maxLines).toBe(15);
    expect(health.healthy).toBe(true);
    vi.runAllTimers();
    expect(retries()).toBe(0);
  });

  it('retries an outage with backoff, Retry-After when longer, and reports the recovery', () => {
    const { health, retries, lines } = make();
    expect(health.failed(new InfluxWriteError('retry', 'down', 503), 10, 10)).toBe(true);
    expect(health.healthy).toBe(false);
    vi.advanceTimersByTime(999);
    expect(retries()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(retries()).toBe(1);
    health.failed(new InfluxWriteError('retry', 'down', 429, 5000), 10, 10);
    vi.advanceTimersByTime(4999);
    expect(retries()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(retries()).toBe(2);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      'InfluxDB write failed; telemetry waits in the spool and is retried with backoff',
    ]);
    expect(health.succeeded()).toBe(true);
    expect(health.healthy).toBe(true);
    expect(health.succeeded()).toBe(false);
  });

  it('reports a blocked target once per message from InfluxDB', () => {
    const { health, lines } = make();
    for (const m of ['bad token', 'bad token', 'no database']) health.failed(new InfluxWriteError('blocked', m, 401), 1, 1);
    expect(lines.filter((l) => l.level === 50).map((l) => l.influx)).toEqual(['bad token', 'no database']);
    health.stop();
  });
});

describe('Refusals', () => {
  const make = () => {
    const { log, lines } = capture();
    const metrics = new WriterMetrics(createMetrics(), { spool: () => undefined, healthy: () => true });
    const quarantine = new Map<string, Set<string>>();
    const refusals = new Refusals({ target: 't', log, metrics, quarantine, equipmentIn: () => ['B-1'] });
    return { refusals, metrics, quarantine, lines };
  };

  it('takes a field of the wrong type out of the lines, sends them again, and keeps it out', () => {
    const { refusals, metrics, quarantine, lines } = make();
    const spool = newSpool();
    spool.append(['boiler,equipment=B-1 level=1,flame=true 1', 'boiler,equipment=B-1 flame=false 2']);
    const chunks = spool.takeFrom(0, 10);
    const e = new InfluxWriteError(
      'data',
      'partial write: field type conflict: input field "flame" on measurement "boiler" is type boolean, already exists as type float dropped=2',
      400,
    );
    refusals.handle(spool, chunks, e);
    expect(quarantine.get('boiler')).toEqual(new Set(['flame']));
    expect(metrics.counts.skippedValues).toBe(2);
    const again = spool.takeFrom(0, 10);
    expect(again.map((c) => c.text)).toEqual(['boiler,equipment=B-1 level=1 1']);
    expect(lines.filter((l) => l.level === 50)).toHaveLength(1);
    refusals.handle(spool, again, e);
    // The field is not in these lines any more: they cannot succeed, and go (counted as InfluxDB says).
    expect(spool.lineCount).toBe(0);
    expect(metrics.counts.rejectedLines).toBe(2);
    spool.close();
  });

  it('drops lines refused for another reason, counting the lines of the batch when InfluxDB does not say', () => {
    const { refusals, metrics } = make();
    const spool = newSpool();
    spool.append(['bad line', 'another']);
    refusals.handle(spool, spool.takeFrom(0, 10), new InfluxWriteError('data', 'unable to parse', 400));
    expect(spool.lineCount).toBe(0);
    expect(metrics.counts.rejectedLines).toBe(2);
    spool.close();
  });
});

describe('Lanes', () => {
  /** A client that holds each request until the test answers it. */
  function heldClient() {
    const requests: Array<{ body: string; answer: (err?: Error) => void }> = [];
    const client: InfluxClient = {
      target: 'memory',
      write: (body) =>
        new Promise<void>((resolve, reject) => requests.push({ body: body.toString(), answer: (err) => (err ? reject(err) : resolve()) })),
    };
    return { client, requests };
  }

  function make(spool: Spool, batchSize = 2) {
    const { client, requests } = heldClient();
    const log = pino({ level: 'silent' });
    const metrics = new WriterMetrics(createMetrics(), { spool: () => spool, healthy: () => true });
    const written: Array<[Lane, number]> = [];
    const box: { lanes?: Lanes } = {};
    const health = new TargetHealth({ target: 'memory', batchSize, reconnect, log, retry: () => box.lanes!.probe() });
    const refusals = new Refusals({ target: 'memory', log, metrics, quarantine: new Map(), equipmentIn: () => [] });
    const lanes = new Lanes({ client, log, metrics, health, refusals, spool: () => spool, written: (l, _ids, n) => written.push([l, n]) });
    box.lanes = lanes;
    return { lanes, requests, written, health, metrics };
  }

  const settle = async () => {
    for (let k = 0; k < 5; k++) await Promise.resolve();
  };

  it('sends a full batch at once, and the rest at the flush tick', async () => {
    const spool = newSpool();
    const { lanes, requests, written } = make(spool);
    lanes.start(1000);
    spool.append(['a', 'b']);
    spool.append(['c']);
    lanes.committed();
    expect(requests.map((r) => r.body)).toEqual(['a\nb']);
    requests[0]!.answer();
    await settle();
    expect(written).toEqual([['live', 2]]);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(requests.map((r) => r.body)).toEqual(['a\nb', 'c']);
    requests[1]!.answer();
    await settle();
    expect(spool.lineCount).toBe(0);
    lanes.stop();
    spool.close();
  });

  it('after an outage, drains the backlog oldest first beside the live lines', async () => {
    const spool = newSpool();
    const { lanes, requests, written, health } = make(spool);
    spool.append(['old1', 'old2']);
    lanes.start(1000);
    lanes.pump(true);
    requests[0]!.answer(new InfluxWriteError('retry', 'down', 503));
    await settle();
    expect(health.healthy).toBe(false);
    spool.append(['old3']);
    lanes.pump(true);
    expect(requests).toHaveLength(1);
    // The retry probes with the oldest lines; its success makes what the spool holds a backlog.
    await vi.advanceTimersByTimeAsync(1000);
    expect(requests[1]!.body).toBe('old1\nold2');
    requests[1]!.answer();
    await settle();
    spool.append(['new1']);
    lanes.pump(true);
    expect(requests.slice(2).map((r) => r.body)).toEqual(['old3', 'new1']);
    for (const r of requests.slice(2)) r.answer();
    await settle();
    expect(written).toEqual([
      ['drain', 2],
      ['drain', 1],
      ['live', 1],
    ]);
    expect(spool.lineCount).toBe(0);
    lanes.stop();
    spool.close();
  });

  it('stops: no new request, and waits at most a second for the ones under way', async () => {
    const spool = newSpool();
    const { lanes, requests } = make(spool);
    spool.append(['a']);
    lanes.start(1000);
    lanes.pump(true);
    lanes.stop();
    spool.append(['b', 'c']);
    lanes.committed();
    expect(requests).toHaveLength(1);
    expect(lanes.inFlightBytes).toBe(1);
    const settled = lanes.settled();
    await vi.advanceTimersByTimeAsync(1000);
    await settled;
    spool.close();
  });
});

/** An intake of site s1 under gw/x with boiler B-1, and a telemetry message for it. */
const boilerIntake = () =>
  new TelemetryIntake({
    site: 's1',
    topicPrefix: 'gw/x',
    equipment: [{ id: 'B-1', category: 'boiler' }],
    maxPayloadBytes: 1000,
    quarantine: new Map(),
  });
const message = JSON.stringify({ ts: 1000, values: { level: 1 }, quality: { level: 'good' } });

describe('TelemetryIntake', () => {
  const intake = boilerIntake();

  it('makes lines of a telemetry message of known equipment', () => {
    const taken = intake.take('gw/x/s1/B-1/telemetry', message);
    expect(taken).toMatchObject({ ok: true, skipped: 0 });
    expect(taken.ok && taken.lines[0]).toMatch(/^boiler,.*equipment=B-1.* level=1 1000000000$/);
  });

  it.each([
    ['gw/x/s2/B-1/telemetry', message, 'not a telemetry topic of this site'],
    ['gw/x/s1/B-1/status', message, 'not a telemetry topic of this site'],
    ['gw/x/s1/B-2/telemetry', message, 'no equipment "B-2" on this site'],
    ['gw/x/s1/B-1/telemetry', 'x'.repeat(1001), undefined],
    [
      'gw/x/s1/B-1/telemetry',
      JSON.stringify({ ts: 1, values: { level: 1 }, quality: { level: 'good' }, times: { other: 1 } }),
      'times: "other" is not a point of the message',
    ],
  ])('refuses %s', (topic, payload, reason) => {
    const taken = intake.take(topic, payload);
    expect(taken.ok).toBe(false);
    if (reason !== undefined && !taken.ok) expect(taken.reason).toBe(reason);
  });
});

describe('TelemetryIntake after a reload', () => {
  it('takes an added equipment and refuses a removed one', () => {
    const intake = boilerIntake();
    intake.setEquipment([{ id: 'B-2', category: 'crane', code: 'C2' }]);
    const taken = intake.take('gw/x/s1/B-2/telemetry', message);
    expect(taken.ok && taken.lines[0]).toMatch(/^crane,site=s1,equipment=B-2,code=C2 level=1 1000000000$/);
    expect(intake.take('gw/x/s1/B-1/telemetry', message)).toEqual({ ok: false, reason: 'no equipment "B-1" on this site' });
  });
});
