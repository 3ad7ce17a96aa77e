// Value conversion: a field of a payload becomes a value of its point's type, or a reason, never a guess.
import { describe, expect, it } from 'vitest';
import { convertTimestamp, convertValue, mapQuality } from '../../../../drivers/mqtt-in/values.js';

describe('convertValue', () => {
  it.each([
    [21.5, 21.5],
    ['21.5', 21.5],
    [' -3 ', -3],
    ['1e3', 1000],
    [0, 0],
  ])('number from %j', (raw, value) => expect(convertValue(raw, 'number')).toEqual({ ok: true, value }));

  it('scales then offsets numbers', () => {
    expect(convertValue(215, 'number', 0.1, -1)).toEqual({ ok: true, value: 20.5 });
    expect(convertValue('300', 'number', 1, -273.15)).toEqual({ ok: true, value: 300 - 273.15 });
  });

  it.each([['warm'], [''], ['0x1F'], ['12abc'], ['Infinity'], ['NaN'], [true], [null], [undefined], [[1]], [{ v: 1 }]])(
    'no number from %j',
    (raw) => {
      const r = convertValue(raw, 'number');
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/not a number|no value/);
    },
  );

  it('refuses a number that scaling makes infinite', () => expect(convertValue(1e308, 'number', 10).ok).toBe(false));

  it.each([
    [true, true],
    [false, false],
    ['ON', true],
    ['OFF', false],
    ['on', true],
    ['true', true],
    ['False', false],
    [1, true],
    [0, false],
    ['1', true],
    ['0', false],
  ])('boolean from %j', (raw, value) => expect(convertValue(raw, 'boolean')).toEqual({ ok: true, value }));

  it.each([[2], ['yes'], ['TOGGLE'], [null], [{}], [0.5]])('no boolean from %j', (raw) =>
    expect(convertValue(raw, 'boolean').ok).toBe(false),
  );

  it('strings: text as is, numbers and booleans written out, nothing else', () => {
    expect(convertValue('single', 'string')).toEqual({ ok: true, value: 'single' });
    expect(convertValue(12, 'string')).toEqual({ ok: true, value: '12' });
    expect(convertValue(false, 'string')).toEqual({ ok: true, value: 'false' });
    expect(convertValue({ a: 1 }, 'string').ok).toBe(false);
    expect(convertValue(null, 'string').ok).toBe(false);
  });

  it('names lists and objects instead of writing them out, however deep a peer nests them', () => {
    const deep: unknown = JSON.parse(`${'['.repeat(50_000)}${']'.repeat(50_000)}`);
    expect(convertValue(deep, 'number')).toEqual({ ok: false, reason: 'not a number: a list' });
    expect(convertValue({ a: 1 }, 'boolean')).toEqual({ ok: false, reason: 'not a boolean: an object' });
  });

  it('quotes a long value briefly in the reason', () => {
    const r = convertValue('x'.repeat(10_000), 'number');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeLessThan(60);
  });
});

describe('convertTimestamp', () => {
  const ms = Date.parse('2026-05-01T10:00:00.250Z');
  it('reads epoch seconds, epoch milliseconds and ISO 8601 with a zone', () => {
    expect(convertTimestamp(ms / 1000, 'epoch_s')).toEqual({ ok: true, value: ms });
    expect(convertTimestamp(String(ms / 1000), 'epoch_s')).toEqual({ ok: true, value: ms });
    expect(convertTimestamp(ms, 'epoch_ms')).toEqual({ ok: true, value: ms });
    expect(convertTimestamp('2026-05-01T10:00:00.250Z', 'iso8601')).toEqual({ ok: true, value: ms });
    expect(convertTimestamp('2026-05-01T12:00:00.250+02:00', 'iso8601')).toEqual({ ok: true, value: ms });
  });

  it.each([
    ['2026-05-01T10:00:00', 'iso8601'],
    ['yesterday', 'iso8601'],
    [ms, 'iso8601'],
    ['soon', 'epoch_s'],
    [1e300, 'epoch_ms'],
    [null, 'epoch_ms'],
  ] as const)('refuses %j as %s', (raw, format) => expect(convertTimestamp(raw, format).ok).toBe(false));
});

describe('mapQuality', () => {
  const map = { good: ['ok', 0], uncertain: ['calibrating'], bad: ['error'] };
  it('maps listed values, and anything else to bad with the value quoted', () => {
    expect(mapQuality('ok', map)).toEqual({ quality: 'good' });
    expect(mapQuality(0, map)).toEqual({ quality: 'good' });
    expect(mapQuality('0', map)).toEqual({ quality: 'bad', reason: 'unknown device status "0"' });
    expect(mapQuality('calibrating', map)).toMatchObject({ quality: 'uncertain' });
    expect(mapQuality('error', map)).toEqual({ quality: 'bad', reason: 'device status "error"' });
    expect(mapQuality(undefined, map).quality).toBe('bad');
  });
});

describe('convertTimestamp plausibility', () => {
  const now = Date.parse('2026-05-01T10:00:00Z');
  it.each([
    // Milliseconds read as seconds: the year 58000.
    [now, 'epoch_s', /more than a day ahead/],
    // Seconds read as milliseconds: January 1970.
    [now / 1000, 'epoch_ms', /before 2000-01-01/],
    [-5, 'epoch_s', /before 2000-01-01/],
    ['1999-12-31T23:59:59Z', 'iso8601', /before 2000-01-01/],
    ['2026-05-03T10:00:00Z', 'iso8601', /more than a day ahead/],
  ] as const)('refuses %j as %s', (raw, format, reason) => {
    const r = convertTimestamp(raw, format, now);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(new RegExp(`^implausible ${format} time .*${reason.source}`));
  });

  it('takes times from 2000 on and up to a day ahead of the clock (drift)', () => {
    expect(convertTimestamp('2000-01-01T00:00:00Z', 'iso8601', now)).toEqual({ ok: true, value: Date.UTC(2000, 0, 1) });
    expect(convertTimestamp(now + 23 * 3600_000, 'epoch_ms', now)).toEqual({ ok: true, value: now + 23 * 3600_000 });
  });
});
