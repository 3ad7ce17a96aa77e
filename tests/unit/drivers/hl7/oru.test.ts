// ORU^R01 into lab results: sample ids (SPM-2, OBR-3, OBR-2), values by OBX-2, units, ranges,
// flags, status, times, control samples (SPM-11 = Q, a configured flag), stable result ids, and
// the reasons a message is refused (AE). The README's worked example is checked here as written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { parseMessage, parseText } from '../../../../drivers/hl7/hl7-message.js';
import { resultsOfOru, type OruOptions } from '../../../../drivers/hl7/oru.js';
import { badMessage, oruMessage } from '../../../../drivers/hl7/simulator.js';

const OPTS: OruOptions = { instrument: 'LA-5', sampleIdFrom: ['SPM-2', 'OBR-3', 'OBR-2'] };
const MSH = (version = '2.5.1', extra = '') => `MSH|^~\\&|App|Fac|||20261203101500+0000||ORU^R01|C-1|P|${version}${extra}`;
const take = (segments: string[], opts: Partial<OruOptions> = {}) =>
  resultsOfOru(parseText(segments.join('\r'), 'utf-8'), { ...OPTS, ...opts });

describe('ORU^R01 mapping', () => {
  it('the README worked example gives the results the README shows', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', '..', 'drivers', 'hl7', 'README.md'), 'utf8');
    const message = /## A worked example[\s\S]*?```text\n([\s\S]*?)```/.exec(readme)![1]!.trim().split('\n').join('\r');
    const expected = JSON.parse(/## A worked example[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)![1]!) as object[];
    const { results } = resultsOfOru(parseMessage(Buffer.from(message), 'utf-8'), OPTS);
    expect(results.map(({ raw, instrument, ...r }) => (void raw, void instrument, r))).toEqual(expected);
  });

  it('2.3.1: no SPM; the sample id from OBR-3, else OBR-2; the time from OBX-14, else OBR-7, else MSH-7', () => {
    const { results } = take([
      MSH('2.3.1'),
      'PID|1||P-1',
      'OBR|1|PL-1|FI-1|CHEM|||20261203100000+0000',
      'OBX|1|NM|GLU^Glucose||5.5|mmol/L|3.9-6.1|N|||F|||20261203100500+0000',
      'OBX|2|NM|TG^Triglycerides||1.2|mmol/L||N|||P',
      'OBR|2|PL-2||CHEM',
      'OBX|1|ST|COM^Comment||hemolysed \\T\\ lipemic||||||F',
    ]);
    expect(results.map((r) => [r.sampleId, r.analyte, r.value, r.status, r.resultAt])).toEqual([
      ['FI-1', 'GLU', 5.5, 'final', '2026-12-03T10:05:00.000Z'],
      ['FI-1', 'TG', 1.2, 'preliminary', '2026-12-03T10:00:00.000Z'],
      ['PL-2', 'COM', 'hemolysed & lipemic', 'final', '2026-12-03T10:15:00.000Z'],
    ]);
    expect(results[0]).toMatchObject({ unit: 'mmol/L', reference: { lo: 3.9, hi: 6.1 }, flags: ['N'] });
    expect(results[0]!.control).toBeUndefined();
    expect(take([MSH(), 'OBR|1|PL-1|FI-1', 'OBX|1|NM|GLU||1'], { sampleIdFrom: ['OBR-2'] }).results[0]!.sampleId).toBe('PL-1');
  });

  it('a time without an offset is in the site time zone when there is one', () => {
    const segments = [MSH().replace('+0000', ''), 'OBR|1||S-1|||20261203100000', 'OBX|1|NM|GLU||1||||||F|||20261203100500'];
    expect(take(segments, { timeZone: 'Asia/Shanghai' }).results[0]!.resultAt).toBe('2026-12-03T02:05:00.000Z');
    expect(take(segments, { timeZone: 'UTC' }).results[0]!.resultAt).toBe('2026-12-03T10:05:00.000Z');
  });

  it('value types: SN, coded, text repetitions, empty; ED is no result', () => {
    const { results, skipped } = take([
      MSH(),
      'OBR|1||S-1',
      'OBX|1|SN|A||^7.5',
      'OBX|2|SN|B||<^0.5',
      'OBX|3|SN|C||^1^:^128',
      'OBX|4|CWE|D||POS^Positive^L',
      'OBX|5|TX|E||line one~line two',
      'OBX|6|NM|F||||||||X',
      'OBX|7|ED|HIST||^image^png^Base64^iVBORw0KGgo=',
      'OBX|8|NM|G||-0.25e1|g/L^grams per litre|<5|H~A',
    ]);
    expect(results.map((r) => [r.analyte, r.value])).toEqual([
      ['A', 7.5],
      ['B', '<0.5'],
      ['C', '1:128'],
      ['D', 'Positive'],
      ['E', 'line one\nline two'],
      ['F', null],
      ['G', -2.5],
    ]);
    expect(skipped).toBe(1);
    expect(results[5]!.status).toBe('cannot be done');
    expect(results[6]).toMatchObject({ unit: 'g/L', reference: { hi: 5 }, flags: ['H', 'A'] });
  });

  it('numbers a double holds exactly as sent: -0, long fractions; a huge range bound is no range; no OBX-2 and no number is text', () => {
    const { results } = take([
      MSH(),
      'OBR|1||S-1',
      'OBX|1|NM|A||-0|||',
      'OBX|2|NM|B||0.000e-400|mmol/L|1e2-5',
      `OBX|3|NM|C||5.2|mmol/L|0-${'9'.repeat(400)}`,
      'OBX|4||D||1e309',
      'OBX|5||E||4.5',
    ]);
    expect(results.map((r) => r.value)).toEqual([-0, 0, 5.2, '1e309', 4.5]);
    expect(results[2]!.reference).toBeUndefined();
  });

  it('a field of 20,000 repetitions is read in one pass, not split again for each one (it stalled the gateway for a minute)', () => {
    const reps = Array(20_000).fill('A').join('~');
    for (const obx of [`OBX|1|NM|GLU||1|||${reps}`, `OBX|1|TX|NOTE||${reps}`]) {
      const t = performance.now();
      expect(() => take([MSH(), 'OBR|1||S-1', obx])).toThrow(/more than 50 flags|longer than 1000 characters/);
      expect(performance.now() - t).toBeLessThan(3000);
    }
  });

  it('result ids: instrument, sender, control id, the OBX place and its content; the same message gives the same ids', () => {
    const segments = [MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||1', 'OBR|2||S-2', 'OBX|1|NM|GLU||2'];
    const ids = take(segments).results.map((r) => r.resultId);
    expect(ids).toEqual([
      expect.stringMatching(/^LA-5:App\^Fac:C-1:1:[0-9a-f]{8}$/),
      expect.stringMatching(/^LA-5:App\^Fac:C-1:2:[0-9a-f]{8}$/),
    ]);
    expect(take(segments).results.map((r) => r.resultId)).toEqual(ids);
    // Sent again with a new MSH-7 (some senders write the header anew): the same results.
    expect(take([segments[0]!.replace('20261203101500', '20261203111500'), ...segments.slice(1)]).results.map((r) => r.resultId)).toEqual(
      ids,
    );
    const other = take([segments[0]!.replace('|C-1|', '|C-2|'), ...segments.slice(1)]).results.map((r) => r.resultId);
    expect(other.some((id) => ids.includes(id))).toBe(false);
    // The control id reused for other results (an analyzer's counter started again): new ids, none lost;
    // an OBX that is the same as before keeps its id.
    const reused = take([MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||1', 'OBR|2||S-3', 'OBX|1|NM|GLU||2']).results.map((r) => r.resultId);
    expect(reused[0]).toBe(ids[0]);
    expect(ids).not.toContain(reused[1]);
    expect(take([MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||7']).results[0]!.resultId).not.toBe(ids[0]);
    // A sender name that is no plain text, or too long, makes a hashed id, still stable.
    const long = take([segments[0]!.replace('App', 'A'.repeat(190)), ...segments.slice(1)]).results[0]!.resultId;
    expect(long).toMatch(/^LA-5:[0-9a-f]{32}:1:[0-9a-f]{8}$/);
    expect(long.length).toBeLessThanOrEqual(200);
  });

  it('control samples: SPM-11 = Q, or the connection control_flag', () => {
    const { results } = take([
      MSH(),
      'OBR|1||QC1-3',
      'OBX|1|NM|GLU||5.1',
      'SPM|1|^QC1-3||SER|||||||Q',
      'OBR|2||S-9',
      'OBX|1|NM|GLU||5',
      'SPM|1|^S-9||SER|||||||P',
    ]);
    expect(results.map((r) => [r.sampleId, r.control])).toEqual([
      ['QC1-3', {}],
      ['S-9', undefined],
    ]);
    const flagged = take([MSH('2.3.1', '||||2'), 'OBR|1||L1', 'OBX|1|NM|GLU||5.1'], { controlFlag: { field: 'MSH-16', values: ['2'] } });
    expect(flagged.results[0]!.control).toEqual({});
    const patient = take([MSH('2.3.1', '||||0'), 'OBR|1||S1', 'OBX|1|NM|GLU||5.1'], { controlFlag: { field: 'MSH-16', values: ['2'] } });
    expect(patient.results[0]!.control).toBeUndefined();
  });

  it.each([
    [[MSH(), 'OBR|1||S-1'], 'no OBX segment', '101'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||high'], 'OBX-5 "high" is not a number (OBX-2 is NM)', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||1~2'], 'OBX-5 repeats', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|SN|GLU||about^5'], 'is not a structured numeric', '102'],
    [[MSH(), 'OBX|1|NM|GLU||1'], 'OBX 1 comes before any OBR', '100'],
    [[MSH(), 'OBR|1', 'OBX|1|NM|GLU||1'], 'OBR 1 has no sample id (SPM-2, OBR-3, OBR-2 are empty)', '101'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|||1'], 'no observation identifier (OBX-3)', '101'],
    [[MSH(), 'OBR|1||S-1||||yesterday', 'OBX|1|NM|GLU||1'], 'OBR-7 "yesterday" is not an HL7 time', '102'],
    [[MSH().replace('20261203101500+0000', ''), 'OBR|1||S-1', 'OBX|1|NM|GLU||1'], 'no observation time', '101'],
    [[MSH().replace('ORU^R01', 'QRY^Q02'), 'OBR|1||S-1', 'OBX|1|NM|GLU||1'], 'message type "QRY^Q02" (MSH-9) is not supported', '200'],
    [[MSH('2.2'), 'OBR|1||S-1', 'OBX|1|NM|GLU||1'], 'version "2.2" (MSH-12) is not supported', '203'],
    [[MSH().replace('|C-1|', '||'), 'OBR|1||S-1', 'OBX|1|NM|GLU||1'], 'MSH-10 (message control id) is empty', '101'],
    [[MSH(), `OBR|1||${'S'.repeat(201)}`, 'OBX|1|NM|GLU||1'], 'sample id is not text of at most 200 characters', '102'],
    [[MSH(), 'OBR|1||S-1', `OBX|1|ST|GLU||${'x'.repeat(1001)}`], 'OBX-5 is longer than 1000 characters', '102'],
    // Values a double cannot hold: Infinity (JSON null on MQTT and to the platform), or 0 for a value that is not 0.
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||1e309'], 'OBX-5 "1e309" is not a number', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||-1e-400'], 'OBX-5 "-1e-400" is not a number', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|SN|GLU||^1e309'], 'is not a structured numeric', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|SN|GLU||^1^:^1e999'], 'is not a structured numeric', '102'],
    // A line break or NUL written as an escape in a name would split an InfluxDB line (the analyte is a tag).
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GL\\X0A\\U||1'], 'OBX-3 is not text of at most 200 characters without control characters', '102'],
    [[MSH(), 'OBR|1||S-1', 'OBX|1|NM|GL\\.br\\U||1'], 'OBX-3 is not text', '102'],
    [
      [MSH(), 'OBR|1||S-1', 'OBX|1|NM|GLU||1|mmol\\X00\\/L'],
      'OBX-6 is not text of at most 100 characters without control characters',
      '102',
    ],
    // The platform takes a status of 100 characters at most: a longer one is refused here, not there.
    [[MSH(), 'OBR|1||S-1', `OBX|1|NM|GLU||1||||||${'Z'.repeat(101)}`], 'OBX-11 is not a result status of at most 100 characters', '103'],
  ])('refuses %j: %s', (segments, reason, code) => {
    expect(() => take(segments)).toThrow(reason);
    try {
      take(segments);
    } catch (err) {
      expect((err as { code: string }).code).toBe(code);
    }
  });

  it('ORU without its trigger event (MSH-9.2) is taken as ORU^R01', () => {
    expect(take([MSH('2.3').replace('ORU^R01', 'ORU'), 'OBR|1||S-1', 'OBX|1|NM|GLU||1']).results).toHaveLength(1);
    expect(() => take([MSH().replace('ORU^R01', 'ORU^R30'), 'OBR|1||S-1', 'OBX|1|NM|GLU||1'])).toThrow(
      '"ORU^R30" (MSH-9) is not supported',
    );
  });

  it.each(['2.3', '2.3.1', '2.4', '2.5', '2.5.1'])('reads version %s', (version) => {
    expect(take([MSH(version), 'OBR|1||S-1', 'OBX|1|NM|GLU||1']).results).toHaveLength(1);
  });
});

describe('the simulator messages', () => {
  const o = {
    name: 'ChemHL7',
    samples: 2,
    seed: 3,
    controls: { GLU: { '1': { mean: 5.0, sd: 0.1 }, '2': { mean: 15.0, sd: 0.3 } } },
  };

  it.each([
    ['2.5.1', 'utf-8'],
    ['2.3.1', 'gb18030'],
  ] as const)('%s in %s: what the gateway reads is what the analyzer sent, Chinese names included', (version, charset) => {
    const m = oruMessage({ ...o, version, charset, noise: 1 }, 4, new Date('2026-12-03T10:00:00Z'));
    const bytes = iconv.encode(m.text, charset);
    const parsed = parseMessage(bytes, 'utf-8');
    expect(parsed.charset).toBe(charset);
    const { results } = resultsOfOru(parsed, OPTS);
    expect(results.map((r) => ({ sampleId: r.sampleId, analyte: r.analyte, value: r.value }))).toEqual(
      m.results.map(({ sampleId, analyte, value }) => ({ sampleId, analyte, value })),
    );
    expect(results.map((r) => r.sampleId)).toEqual(expect.arrayContaining(['S-00007', 'QC1-4', 'QC2-4']));
    expect(results.find((r) => r.sampleId === 'QC1-4')!.control).toEqual(version === '2.5.1' ? {} : undefined);
    expect(results[0]!.raw).toContain('葡萄糖');
  });

  it('controls around their targets; qc_shift moves the runs it names by +2.5 SD', () => {
    const level2 = (n: number, shift?: { from: number; runs: number; sd: number }) =>
      oruMessage({ ...o, version: '2.5.1', charset: 'utf-8', noise: 1, ...(shift ? { qcShift: shift } : {}) }, n, new Date()).results.find(
        (r) => r.sampleId === `QC2-${n}`,
      )!.value;
    const plain = Array.from({ length: 200 }, (_, k) => (level2(k + 1) - 15) / 0.3);
    const mean = plain.reduce((a, b) => a + b, 0) / plain.length;
    const sd = Math.sqrt(plain.reduce((a, b) => a + (b - mean) ** 2, 0) / plain.length);
    expect(Math.abs(mean)).toBeLessThan(0.25);
    expect(sd).toBeGreaterThan(0.8);
    expect(sd).toBeLessThan(1.2);
    // Shifted runs sit between +2.1 and +2.9 SD, on every level: 2-2s, never 1-3s.
    const shift = { from: 3, runs: 2, sd: 2.5 };
    for (let n = 3; n < 5; n++) {
      expect((level2(n, shift) - 15) / 0.3).toBeGreaterThanOrEqual(2.1 - 1e-9);
      expect((level2(n, shift) - 15) / 0.3).toBeLessThanOrEqual(2.9 + 1e-9);
    }
    expect(level2(2, shift)).toBe(level2(2));
    expect(level2(5, shift)).toBe(level2(5));
  });

  it('the bad message is refused for its NM value', () => {
    const m = badMessage({ name: 'ChemHL7', version: '2.5.1' }, 1, new Date());
    expect(() => resultsOfOru(parseText(m.text, 'utf-8'), OPTS)).toThrow('is not a number');
  });
});
