// The InfluxDB `risk` measurement: tags site and equipment; the level (name and code), the figures and each factor's points as fields.
import { describe, expect, it } from 'vitest';
import { encodeRisk } from '../../../../gateway/influx/line-protocol.js';

describe('encodeRisk', () => {
  it('writes one line per assessment, escaping tags, leaving out factors without points and values InfluxDB cannot store', () => {
    const at = Date.UTC(2026, 10, 22, 10, 0, 5, 123);
    const lines = encodeRisk(
      [
        {
          equipment: 'B 07,north',
          level: 'orange',
          score: 12,
          likelihood: 3,
          consequence: 4,
          points: 27.5,
          factors: [
            { factor: 'predicted', points: 15 },
            { factor: 'alarm_yellow', points: 10 },
            { factor: 'near_misses', points: 2.5 },
            { factor: 'silence', points: 0 },
            { factor: 'communication', points: Number.NaN },
          ],
          computedAt: at,
        },
      ],
      'plant=3',
    );
    expect(lines).toEqual([
      'risk,site=plant\\=3,equipment=B\\ 07\\,north level="orange",level_code=2,score=12,likelihood=3,consequence=4,points=27.5,predicted=15,alarm_yellow=10,near_misses=2.5 1795341605123000000',
    ]);
  });
});
