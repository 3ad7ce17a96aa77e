import { describe, expect, it } from 'vitest';
import { encodeTelemetry, withoutField } from '../../../../gateway/influx/line-protocol.js';

const tags = { measurement: 'boiler', site: 'plant 3', equipment: 'B-07', code: '10003101012019000117' };

describe('line protocol', () => {
  it('writes one line per message: numbers as floats, booleans, escaped strings, nanoseconds exact', () => {
    const { lines } = encodeTelemetry(
      { ts: 1795402764098, values: { steam_pressure: 1.248, drum_level: -12, flame: true, note: 'say "hi", ok' }, quality: {} },
      tags,
    );
    expect(lines).toEqual([
      'boiler,site=plant\\ 3,equipment=B-07,code=10003101012019000117 steam_pressure=1.248,drum_level=-12,flame=true,note="say \\"hi\\", ok" 1795402764098000000',
    ]);
  });

  it('writes a bad point as a quality line with its reason, never as a value; an uncertain one keeps its value', () => {
    const { lines } = encodeTelemetry(
      {
        ts: 1000,
        values: { a: null, b: 2.5, c: 7 },
        quality: { a: 'bad', b: 'good', c: 'uncertain' },
        reasons: { a: 'timeout', c: 'LastUsableValue' },
      },
      { measurement: 'boiler', site: 's', equipment: 'e' },
    );
    expect(lines).toEqual([
      'boiler,site=s,equipment=e b=2.5,c=7 1000000000',
      'boiler,site=s,equipment=e,point=a quality="bad",reason="timeout" 1000000000',
      'boiler,site=s,equipment=e,point=c quality="uncertain",reason="LastUsableValue" 1000000000',
    ]);
  });

  it('writes a point with its own time on a line at that time; points of one time share a line', () => {
    const { lines } = encodeTelemetry(
      {
        ts: 3000,
        values: { a: 1, b: 2, c: null, d: 4 },
        quality: { a: 'good', b: 'good', c: 'bad', d: 'good' },
        reasons: { c: 'timeout' },
        times: { a: 1500, b: 1500, c: 2000 },
      },
      { measurement: 'boiler', site: 's', equipment: 'e' },
    );
    expect(lines).toEqual([
      'boiler,site=s,equipment=e d=4 3000000000',
      'boiler,site=s,equipment=e a=1,b=2 1500000000',
      'boiler,site=s,equipment=e,point=c quality="bad",reason="timeout" 2000000000',
    ]);
  });

  it('leaves out values that are not finite and fields in quarantine, and counts them', () => {
    const out = encodeTelemetry(
      { ts: 1, values: { a: Number.NaN, b: 1, c: 'x' }, quality: {} },
      tags,
      new Map([['boiler', new Set(['c'])]]),
    );
    expect(out.skipped).toBe(2);
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toContain(' b=1 ');
  });

  it('takes one field out of a line, respecting quoted commas and escapes', () => {
    const line = 'boiler,site=s,equipment=e a=1,note="x, \\"y\\" z=2",b=true 5';
    expect(withoutField(line, 'boiler', 'note')).toBe('boiler,site=s,equipment=e a=1,b=true 5');
    expect(withoutField(line, 'boiler', 'a')).toBe('boiler,site=s,equipment=e note="x, \\"y\\" z=2",b=true 5');
    expect(withoutField(line, 'elevator', 'a')).toBe(line);
    expect(withoutField('boiler,site=s a=1 5', 'boiler', 'a')).toBeUndefined();
  });
});
