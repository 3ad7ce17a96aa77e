// Older readings from InfluxDB: names quoted so a point or equipment name cannot change the query,
// and answers read strictly: a bad line wins over a value at its time, anything odd is left out.
import { describe, expect, it } from 'vitest';
import { pointStatements, samplesOf } from '../../../../gateway/influx/query.js';

const q = { measurement: 'boiler', site: 'plant-3', equipment: 'B-07', point: 'drum_level', since: 1000, until: 5000, limit: 100, timeoutMs: 1000 };

describe('InfluxDB history query', () => {
  it('asks for the point and its bad-quality lines in the time range, newest first, limited', () => {
    expect(pointStatements(q)).toBe(
      `SELECT "drum_level" FROM "boiler" WHERE "site" = 'plant-3' AND "equipment" = 'B-07' AND time >= 1000ms AND time < 5000ms ORDER BY time DESC LIMIT 100; ` +
        `SELECT "quality" FROM "boiler" WHERE "site" = 'plant-3' AND "equipment" = 'B-07' AND time >= 1000ms AND time < 5000ms AND "point" = 'drum_level' ORDER BY time DESC LIMIT 100`,
    );
  });

  it('quotes names so that none can end a string or an identifier', () => {
    const text = pointStatements({ ...q, equipment: "B'; DROP DATABASE x; '", point: 'a"b\\' });
    expect(text).toContain(`"equipment" = 'B\\'; DROP DATABASE x; \\''`);
    expect(text).toContain('SELECT "a\\"b\\\\" FROM');
    expect(pointStatements({ ...q, limit: 10 ** 9 })).toContain('LIMIT 10000');
  });

  it('merges values and quality lines by time, oldest first, the newest `limit`', () => {
    const answer = {
      results: [
        { series: [{ columns: ['time', 'drum_level'], values: [[4000, 12.5], [3000, 11], [2000, 10.5], [1000, 'x'], ['bad', 3]] }] },
        { series: [{ columns: ['time', 'quality'], values: [[3500, 'bad'], [3000, 'uncertain'], [2000, 'bad']] }] },
      ],
    };
    expect(samplesOf(answer, 100)).toEqual([
      { ts: 1000, value: 'x', quality: 'good' },
      { ts: 2000, value: null, quality: 'bad' },
      { ts: 3000, value: 11, quality: 'uncertain' },
      { ts: 3500, value: null, quality: 'bad' },
      { ts: 4000, value: 12.5, quality: 'good' },
    ]);
    expect(samplesOf(answer, 2).map((s) => s.ts)).toEqual([3500, 4000]);
    expect(samplesOf({ results: [{}, {}] }, 10)).toEqual([]);
  });

  it('throws InfluxDB\'s own error', () => {
    expect(() => samplesOf({ results: [{ error: 'database not found: trend' }] }, 10)).toThrow('InfluxDB: database not found: trend');
    expect(() => samplesOf({ error: 'authorization failed' }, 10)).toThrow('InfluxDB: authorization failed');
  });
});
