// Result files as broken or hostile software writes them: each is rejected with a reason (or read
// right), never a pass that throws something else (the file would be tried again every scan), a
// value that is not the file's, or memory held without bound.
import { describe, expect, it } from 'vitest';
import { timeReader } from '../../../../drivers/file-drop/time.js';
import { connection, fileWith, read, reasonOf } from './helpers.js';

describe('numbers and times that do not read', () => {
  const c = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });

  it('1e400 is no number (it would be Infinity), in a CSV and in JSON', async () => {
    expect(await reasonOf(fileWith('big.csv', 'id,a,v\nS1,GLU,1e400\n'), c)).toBe(
      'line 2: value "1e400" (column "v") is not a number (value_type: number; auto keeps text values)',
    );
    const j = connection({ format: 'json', mapping: { sample_id: 'id', analyte: 'a', value: 'v', reference_hi: 'hi' } });
    expect(await reasonOf(fileWith('big.json', '[{"id":"S1","a":"GLU","v":1e400}]'), j)).toMatch(
      /^record 1: value "Infinity" .* is not a number/,
    );
    expect(await reasonOf(fileWith('hi.json', '[{"id":"S1","a":"GLU","v":1,"hi":-1e999}]'), j)).toMatch(
      /^record 1: reference high "-Infinity" .* is not a number$/,
    );
  });

  it('with decimal commas, a dot is no decimal point (1.234 is not read as 1.234)', async () => {
    const comma = connection({ format: 'csv', csv: { decimal: ',' }, mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    expect((await read(fileWith('ok.csv', 'id,a,v\nS1,GLU,"5,21"\n'), comma)).results[0]!.value).toBe(5.21);
    expect(await reasonOf(fileWith('dot.csv', 'id,a,v\nS1,GLU,1.234\n'), comma)).toMatch(
      /^line 2: value "1\.234" \(column "v"\) is not a number/,
    );
    expect(await reasonOf(fileWith('both.csv', 'id,a,v\nS1,GLU,"1.234,5"\n'), comma)).toMatch(/^line 2: value "1\.234,5"/);
  });

  it('an epoch time past what a date holds rejects the file (it threw a RangeError on every pass)', async () => {
    const e = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', time: 't', time_format: 'epoch_ms' } });
    expect(await reasonOf(fileWith('far.csv', 'id,a,v,t\nS1,GLU,5,99999999999999999999\n'), e)).toBe(
      'line 2: time "99999999999999999999" (column "t") does not read as epoch_ms',
    );
    const j = connection({ format: 'json', mapping: { sample_id: 'id', analyte: 'a', value: 'v', time: 't', time_format: 'epoch_s' } });
    expect(await reasonOf(fileWith('far.json', '[{"id":"S1","a":"GLU","v":5,"t":1e20}]'), j)).toBe(
      'record 1: time "100000000000000000000" (path "t") does not read as epoch_s',
    );
    expect(timeReader('epoch_s', 'UTC')('0x10')).toBeUndefined();
    expect(timeReader('epoch_s', 'UTC')('Infinity')).toBeUndefined();
    expect(timeReader('epoch_ms', 'UTC')('-1000')).toBe(-1000);
  });

  it('an ISO offset that is no offset does not read', () => {
    expect(timeReader('iso', 'UTC')('2026-12-03T10:00:00+99:00')).toBeUndefined();
    expect(timeReader('iso', 'UTC')('2026-12-03T10:00:00+05:99')).toBeUndefined();
    expect(timeReader('iso', 'UTC')('2026-12-03T10:00:00+14:00')).toBe(Date.parse('2026-12-02T20:00:00Z'));
  });
});

describe('reasons stay short, whatever the file quotes', () => {
  const c = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });

  it('a header of thousands of columns is listed by its first 20', async () => {
    const header = Array.from({ length: 5000 }, (_, i) => `c${i}`).join(',');
    const reason = await reasonOf(fileWith('wide.csv', `${header}\n`), c);
    expect(reason).toBe(
      `line 1: no column "id" in the header (it has ${Array.from({ length: 20 }, (_, i) => `"c${i}"`).join(', ')}... (5000 columns))`,
    );
  });

  it('a long cell is quoted by its first 80 characters', async () => {
    const reason = await reasonOf(fileWith('long.csv', `id,a,v\nS1,GLU,${'x'.repeat(2000)}\n`), c);
    expect(reason).toBe(
      `line 2: value "${'x'.repeat(80)}... (2000 characters)" (column "v") is not a number (value_type: number; auto keeps text values)`,
    );
  });

  it('a field too long to be one is refused, not held in a batch and sent on (a sample id of 4 MiB)', async () => {
    expect(await reasonOf(fileWith('id.csv', `id,a,v\n${'S'.repeat(4 * 1024 * 1024)},GLU,5\n`), c)).toBe(
      `line 2: sample id (column "id") longer than 256 characters: "${'S'.repeat(80)}... (4194304 characters)"`,
    );
    const auto = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', value_type: 'auto', operator: 'o' } });
    expect(await reasonOf(fileWith('op.csv', `id,a,v,o\nS1,GLU,5,${'x'.repeat(257)}\n`), auto)).toMatch(
      /^line 2: operator \(column "o"\) longer than 256/,
    );
    expect((await read(fileWith('t.csv', `id,a,v,o\nS1,NOTE,${'x'.repeat(4096)},me\n`), auto)).results[0]!.value).toHaveLength(4096);
    expect(await reasonOf(fileWith('t2.csv', `id,a,v,o\nS1,NOTE,${'x'.repeat(4097)},me\n`), auto)).toMatch(
      /^line 2: value \(column "v"\) longer than 4096/,
    );
    const wide = connection({
      format: 'csv',
      mapping: { sample_id: 'id', value_type: 'auto', analytes: [{ analyte: 'NOTE', value: 'n' }] },
    });
    expect((await read(fileWith('w.csv', `id,n\nS1,${'y'.repeat(1000)}\n`), wide)).results[0]!.value).toHaveLength(1000);
  });

  it('a row of a million empty fields is refused, not held as a million strings', async () => {
    expect(await reasonOf(fileWith('commas.csv', `id,a,v\n${','.repeat(1_000_000)}\n`), c)).toBe(
      'line 2: a row of more than 100000 fields',
    );
  });
});

describe('JSON', () => {
  it('a file that is not JSON is rejected with the line of the fault, the reason on one line', async () => {
    const j = connection({ format: 'json', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    expect(await reasonOf(fileWith('cut.json', '[\n{"id": "S1", "a": "GLU", "v": 5},\n{"id": "S2" "a": "GLU"}]'), j)).toBe(
      "line 3: not JSON (Expected ',' or '}' after property value; the file may be truncated)",
    );
    expect(await reasonOf(fileWith('tok.json', '[1,\n2,\n}'), j)).not.toMatch(/[\r\n]/);
    expect(await reasonOf(fileWith('end.json', '[\n1,\n'), j)).toBe(
      'line 3, end of file: not JSON (Unexpected end of JSON input; the file may be truncated)',
    );
  });

  it('a record nested deeper than JSON.stringify recurses is rejected, not a RangeError', async () => {
    const j = connection({ format: 'json', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    const depth = 200_000;
    const text = `[{"id":"S1","a":"GLU","v":5,"x":${'['.repeat(depth)}${']'.repeat(depth)}}]`;
    const { results } = await read(fileWith('deep.json', text), j);
    expect(results.map((r) => [r.sampleId, r.value, r.raw])).toEqual([['S1', 5, undefined]]);
  });
});

describe('XML', () => {
  const x = connection({ format: 'xml', xml: { record: 'R/S' }, mapping: { sample_id: '@id', analyte: '@a', value: '.' } });

  it('one endless text is refused at 8 MiB, not held whole by the parser', async () => {
    const path = fileWith('endless.xml', `<R><S id="1" a="GLU">${'7'.repeat(20 * 1024 * 1024)}`);
    expect(await reasonOf(path, x)).toMatch(/^line 1: a text, tag, attribute or comment longer than 8 MiB/);
  });

  it('an endless comment or attribute likewise', async () => {
    expect(await reasonOf(fileWith('c.xml', `<R><!--${'x'.repeat(10 * 1024 * 1024)}`), x)).toMatch(/longer than 8 MiB/);
    expect(await reasonOf(fileWith('a.xml', `<R><S id="${'x'.repeat(10 * 1024 * 1024)}`), x)).toMatch(/longer than 8 MiB/);
  });

  it('elements nested without end inside a record are refused at the same depth as around it', async () => {
    const path = fileWith('nest.xml', `<R><S id="1" a="GLU">${'<a>'.repeat(100_000)}`);
    expect(await reasonOf(path, x)).toBe('line 1: elements nested deeper than 256');
  });

  it('many small elements in one record count towards its 1 MiB', async () => {
    const path = fileWith('wide.xml', `<R><S id="1" a="GLU">${'<a/>'.repeat(100_000)}</S></R>`);
    expect(await reasonOf(path, x)).toMatch(/^line 1: a record element larger than 1 MiB$/);
  });

  it('an internal DTD entity is not expanded (no entity bomb)', async () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE R [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><R><S id="1" a="GLU">&b;</S></R>`;
    const text = connection({
      format: 'xml',
      xml: { record: 'R/S' },
      mapping: { sample_id: '@id', analyte: '@a', value: '.', value_type: 'text' },
    });
    expect(await reasonOf(fileWith('bomb.xml', bomb), x)).toMatch(/^line 1: not well-formed XML: undefined entity/);
    expect(await reasonOf(fileWith('bomb.xml', bomb), text)).toMatch(/^line 1: not well-formed XML: undefined entity/);
  });
});
