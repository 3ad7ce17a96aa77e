// Result files as instruments write them, read by the reader both of the driver's passes use: each
// format and mapping gives the results it should, and each way a file can be wrong rejects it with
// a reason that names the place.
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { CsvReader, type CsvRow } from '../../../../drivers/file-drop/csv.js';
import { fileDropConnectionSchema } from '../../../../drivers/file-drop/schema.js';
import { timeReader } from '../../../../drivers/file-drop/time.js';
import { FileChanged, fileRecords } from '../../../../drivers/file-drop/reader.js';
import { writeFileSync } from 'node:fs';
import { parseSite } from '../../../../config/load.js';
import { ConfigError } from '../../../../config/errors.js';
import { connection, FILE_TIME, fileWith, read, reasonOf } from './helpers.js';

const GBK_RAW = {
  format: 'csv',
  csv: { encoding: 'gbk', decimal: ',', skip_lines: 1 },
  mapping: {
    sample_id: '样本号',
    analyte: '项目',
    value: '结果',
    unit: '单位',
    time: '检测时间',
    time_format: 'YYYY/MM/DD HH:mm:ss',
    time_zone: 'Asia/Shanghai',
    control_level: '质控水平',
    reference_lo: '参考下限',
    reference_hi: '参考上限',
    flags: '标志',
    operator: '操作员',
  },
};
const GBK_CSV = connection(GBK_RAW);

const gbkText = [
  '仪器: 生化分析仪 ChemFile-240',
  '样本号,项目,结果,单位,参考下限,参考上限,标志,检测时间,质控水平,操作员',
  'S-00001,葡萄糖,"5,21",mmol/L,"3,9","6,1",N,2026/12/03 10:20:00,,张三',
  'S-00001,总胆固醇,"6,02",mmol/L,0,"5,2",H,2026/12/03 10:20:00,,张三',
  'QC2-0001,葡萄糖,"15,1",mmol/L,,,,2026/12/03 10:21:30,2,张三',
].join('\r\n');

describe('CSV', () => {
  it('reads GBK with Chinese names, a line before the header, decimal commas, a control level and local times', async () => {
    const { results, digest } = await read(fileWith('chem.csv', iconv.encode(gbkText, 'gbk')), GBK_CSV);
    expect(results.map((r) => [r.index, r.sampleId, r.analyte, r.value, r.unit, r.flags, r.resultAt, r.control, r.reference])).toEqual([
      [0, 'S-00001', '葡萄糖', 5.21, 'mmol/L', ['N'], '2026-12-03T02:20:00.000Z', undefined, { lo: 3.9, hi: 6.1 }],
      [1, 'S-00001', '总胆固醇', 6.02, 'mmol/L', ['H'], '2026-12-03T02:20:00.000Z', undefined, { lo: 0, hi: 5.2 }],
      [2, 'QC2-0001', '葡萄糖', 15.1, 'mmol/L', [], '2026-12-03T02:21:30.000Z', { level: '2' }, undefined],
    ]);
    expect(results[0]!.operator).toBe('张三');
    expect(results[0]!.status).toBe('final');
    expect(results[0]!.raw).toBe('S-00001,葡萄糖,"5,21",mmol/L,"3,9","6,1",N,2026/12/03 10:20:00,,张三');
    expect(digest).toMatchObject({ records: 3, results: 3, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('reads GB18030, and a UTF-8 file with a byte order mark as UTF-8 whatever is declared', async () => {
    const gb18030 = connection({ ...GBK_RAW, csv: { ...GBK_RAW.csv, encoding: 'gb18030' } });
    expect((await read(fileWith('a.csv', iconv.encode(gbkText, 'gb18030')), gb18030)).results[1]!.analyte).toBe('总胆固醇');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(gbkText, 'utf8')]);
    const { results } = await read(fileWith('b.csv', bom), GBK_CSV);
    expect(results.map((r) => r.analyte)).toEqual(['葡萄糖', '总胆固醇', '葡萄糖']);
    // The mark is not part of the first line (here the skipped one; with no line skipped, the header's first name).
    const plain = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('id,a,v\nS1,GLU,5.2\n')]);
    expect((await read(fileWith('c.csv', withBom), plain)).results[0]!.sampleId).toBe('S1');
  });

  it('takes quoted fields with delimiters, line ends and doubled quotes, any line ends, blank lines, and a last row without its line end', async () => {
    const c = connection({ format: 'csv', mapping: { sample_id: 1, analyte: 2, value: 3, method: 4, value_type: 'auto' } });
    const text = 'id,analyte,value,method\r\n"S,1",GLU,5.2,"say ""hi""\nsecond line"\n\nS2,TG,<0.1,x\rS3,CHOL,4,y';
    const { results } = await read(fileWith('q.csv', text), c);
    expect(results.map((r) => [r.sampleId, r.analyte, r.value, r.method])).toEqual([
      ['S,1', 'GLU', 5.2, 'say "hi"\nsecond line'],
      ['S2', 'TG', '<0.1', 'x'],
      ['S3', 'CHOL', 4, 'y'],
    ]);
  });

  it('gives the same rows whatever the chunks the text arrives in', () => {
    const text = 'a,b\r\n"x,""y""\r\nz",2\r\n\r\n3,"4"\r5,6\n7,8';
    const rowsOf = (pieces: string[]) => {
      const rows: CsvRow[] = [];
      const r = new CsvReader({ delimiter: ',', quote: '"', skipLines: 0 }, (row) => rows.push(row));
      for (const p of pieces) r.feed(p);
      r.end();
      return rows;
    };
    const whole = rowsOf([text]);
    expect(whole.map((r) => [r.line, ...r.fields])).toEqual([
      [1, 'a', 'b'],
      [2, 'x,"y"\r\nz', '2'],
      [5, '3', '4'],
      [6, '5', '6'],
      [7, '7', '8'],
    ]);
    for (let i = 0; i <= text.length; i++) expect(rowsOf([text.slice(0, i), text.slice(i)])).toEqual(whole);
    expect(rowsOf(text.split(''))).toEqual(whole);
  });

  it('reads a wide layout: one result per analyte column, none for an empty cell', async () => {
    const c = connection({
      format: 'csv',
      mapping: {
        sample_id: 'Sample',
        time: 'Date',
        analytes: [
          { analyte: 'Rm', value: 'Rm (MPa)', unit: 'MPa' },
          { analyte: 'ReH', value: 'ReH (MPa)', unit: 'MPa' },
          { analyte: 'A', value: 'A (%)', unit: '%' },
        ],
      },
    });
    const text = 'Sample,Date,Rm (MPa),ReH (MPa),A (%)\nT-1,2026-12-03T10:00:00Z,452.1,310.5,24.5\nT-2,2026-12-03T10:05:00Z,448.9,,23.9\n';
    const { results, digest } = await read(fileWith('w.csv', text), c);
    expect(results.map((r) => [r.index, r.sampleId, r.analyte, r.value, r.unit])).toEqual([
      [0, 'T-1', 'Rm', 452.1, 'MPa'],
      [0, 'T-1', 'ReH', 310.5, 'MPa'],
      [0, 'T-1', 'A', 24.5, '%'],
      [1, 'T-2', 'Rm', 448.9, 'MPa'],
      [1, 'T-2', 'A', 23.9, '%'],
    ]);
    expect(digest.records).toBe(2);
  });

  it('reads a TSV by column numbers, without a header; without a time column a result has the file time', async () => {
    const c = connection({ format: 'tsv', csv: { header: false }, mapping: { sample_id: 1, analyte: 3, value: 4, unit: 5, status: 6 } });
    const { results } = await read(fileWith('t.tsv', 'S-9\tx\tHB\t9.8\tHRC\tP\nS-9\tx\tHB\t10.1\tHRC\tF\n'), c);
    expect(results.map((r) => [r.sampleId, r.analyte, r.value, r.unit, r.status, r.resultAt])).toEqual([
      ['S-9', 'HB', 9.8, 'HRC', 'preliminary', new Date(FILE_TIME).toISOString()],
      ['S-9', 'HB', 10.1, 'HRC', 'final', new Date(FILE_TIME).toISOString()],
    ]);
  });

  it('marks control samples by the instrument control column', async () => {
    const c = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', control: 'qc' } });
    const { results } = await read(fileWith('c.csv', 'id,a,v,qc\nS1,GLU,5,\nQ1,GLU,5,Y\nQ2,GLU,5,0\nQ3,GLU,5,是\n'), c);
    expect(results.map((r) => r.control)).toEqual([undefined, {}, undefined, {}]);
  });
});

describe('XML', () => {
  const c = connection({
    format: 'xml',
    xml: { record: 'Results/Sample/Analyte' },
    mapping: {
      sample_id: '../@id',
      analyte: '@code',
      value: '.',
      unit: '@unit',
      time: '../Time',
      control_level: '../@control',
      flags: 'Flag',
    },
  });

  it('reads records by path, up into the enclosing element, with namespace prefixes ignored', async () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<lab:Results xmlns:lab="urn:x">
  <lab:Sample id="S-1"><lab:Time>2026-12-03T10:20:00+08:00</lab:Time>
    <lab:Analyte code="GLU" unit="mmol/L">5.21<lab:Flag>N</lab:Flag></lab:Analyte>
    <lab:Analyte code="TG" unit="mmol/L"><![CDATA[1.2]]></lab:Analyte>
  </lab:Sample>
  <lab:Sample id="QC1-1" control="1"><lab:Time>2026-12-03T10:21:00+08:00</lab:Time><lab:Analyte code="GLU" unit="mmol/L">5.02</lab:Analyte></lab:Sample>
</lab:Results>`;
    const { results } = await read(fileWith('r.xml', xml), c);
    expect(results.map((r) => [r.index, r.sampleId, r.analyte, r.value, r.unit, r.resultAt, r.control, r.flags])).toEqual([
      [0, 'S-1', 'GLU', 5.21, 'mmol/L', '2026-12-03T02:20:00.000Z', undefined, ['N']],
      [1, 'S-1', 'TG', 1.2, 'mmol/L', '2026-12-03T02:20:00.000Z', undefined, []],
      [2, 'QC1-1', 'GLU', 5.02, 'mmol/L', '2026-12-03T02:21:00.000Z', { level: '1' }, []],
    ]);
  });

  it('reads GBK named in the declaration', async () => {
    const xml =
      '<?xml version="1.0" encoding="GBK"?><Results><Sample id="S-1"><Time>2026-12-03T10:20:00Z</Time><Analyte code="葡萄糖">5</Analyte></Sample></Results>';
    expect((await read(fileWith('g.xml', iconv.encode(xml, 'gbk')), c)).results[0]!.analyte).toBe('葡萄糖');
  });

  it('rejects a truncated file with the line, and one whose record path matches nothing', async () => {
    const cut = '<Results>\n<Sample id="S-1"><Time>2026-12-03T10:20:00Z</Time>\n<Analyte code="GLU">5</Analyte>\n<Analyte code="TG"';
    expect(await reasonOf(fileWith('cut.xml', cut), c)).toMatch(/^line \d+: not well-formed XML: /);
    expect(await reasonOf(fileWith('other.xml', '<Export><Row/></Export>'), c)).toBe(
      'no element at the record path "Results/Sample/Analyte"',
    );
    expect(await reasonOf(fileWith('deep.xml', `${'<a>'.repeat(300)}${'</a>'.repeat(300)}`), c)).toBe(
      'line 1: elements nested deeper than 256',
    );
  });
});

describe('JSON', () => {
  it('reads records in arrays inside arrays, a field of the enclosing object by ../', async () => {
    const c = connection({
      format: 'json',
      json: { records: 'data.samples[].results' },
      mapping: { sample_id: '../id', analyte: 'test.code', value: 'value', unit: 'test.unit', time: '../time', time_format: 'epoch_ms' },
    });
    const doc = {
      data: {
        samples: [
          { id: 'S-1', time: 1764728400000, results: [{ test: { code: 'GLU', unit: 'mmol/L' }, value: 5.2 }] },
          { id: 'S-2', time: 1764728460000, results: [{ test: { code: 'GLU', unit: 'mmol/L' }, value: '6.1' }] },
        ],
      },
    };
    const { results } = await read(fileWith('r.json', JSON.stringify(doc)), c);
    expect(results.map((r) => [r.index, r.sampleId, r.analyte, r.value, r.unit, r.resultAt])).toEqual([
      [0, 'S-1', 'GLU', 5.2, 'mmol/L', '2025-12-03T02:20:00.000Z'],
      [1, 'S-2', 'GLU', 6.1, 'mmol/L', '2025-12-03T02:21:00.000Z'],
    ]);
  });

  it('rejects a file that is not JSON, or has no array where the records should be', async () => {
    const c = connection({ format: 'json', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    expect(await reasonOf(fileWith('x.json', '[{"id": "S-1", "a": "GLU", "v": 5'), c)).toMatch(
      /^line 1: not JSON \(.*the file may be truncated\)$/,
    );
    expect(await reasonOf(fileWith('y.json', '{"id": 1}'), c)).toBe('no array of records at the top level (found an object)');
    expect(await reasonOf(fileWith('z.json', '[{"id": {"x": 1}, "a": "GLU", "v": 5}]'), c)).toBe(
      'record 1: sample id (path "id") is an object, not a value',
    );
  });
});

describe('a file that cannot be read is rejected with its reason', () => {
  const raw = { format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', time: 't' } };
  const c = connection(raw);
  it.each([
    [
      'a column the mapping names is missing',
      'id,a,value,t\nS1,GLU,5,2026-12-03T10:00:00Z\n',
      'line 1: no column "v" in the header (it has "id", "a", "value", "t")',
    ],
    [
      'a row cut short',
      'id,a,v,t\nS1,GLU,5,2026-12-03T10:00:00Z\nS2,GLU',
      'line 3: 2 fields where the header has 4 (a cut or malformed row)',
    ],
    [
      'a value that is not a number',
      'id,a,v,t\nS1,GLU,5..2,2026-12-03T10:00:00Z\n',
      'line 2: value "5..2" (column "v") is not a number (value_type: number; auto keeps text values)',
    ],
    ['a time that does not read', 'id,a,v,t\nS1,GLU,5,03.12.2026\n', 'line 2: time "03.12.2026" (column "t") does not read as ISO 8601'],
    [
      'a date that does not exist',
      'id,a,v,t\nS1,GLU,5,2026-02-30T10:00:00Z\n',
      'line 2: time "2026-02-30T10:00:00Z" (column "t") does not read as ISO 8601',
    ],
    ['no sample id', 'id,a,v,t\n,GLU,5,2026-12-03T10:00:00Z\n', 'line 2: no sample id (column "id" is empty or missing)'],
    [
      'a quote never closed',
      'id,a,v,t\nS1,GLU,"5,2026-12-03T10:00:00Z\n',
      'line 2: a quoted field is never closed (the file may be truncated)',
    ],
    [
      'text after a closing quote',
      'id,a,v,t\nS1,"GLU"x,5,2026-12-03T10:00:00Z\n',
      'line 2: text after the closing quote of a field (a quote inside a quoted field is written twice: "")',
    ],
    ['an empty file', '', 'an empty file'],
    ['a header and no rows', 'id,a,v,t\n', 'no rows after the header'],
  ])('%s', async (_, text, reason) => {
    expect(await reasonOf(fileWith('bad.csv', text), c)).toBe(reason);
  });

  it('bytes that are not GBK', async () => {
    const gbk = connection({ ...raw, csv: { encoding: 'gbk' } });
    const bytes = Buffer.concat([Buffer.from('id,a,v,t\nS1,'), Buffer.from([0x81, 0x20]), Buffer.from(',5,2026-12-03T10:00:00Z\n')]);
    expect(await reasonOf(fileWith('bad.csv', bytes), gbk)).toBe('line 2: not GBK text (is the encoding setting right?)');
    // In a later chunk, after CRLF, LF and CR line ends: the line counted across chunks.
    const rows = 'S1,GLU,5,2026-12-03T10:00:00Z\r\n'.repeat(10_000) + 'S1,GLU,5,2026-12-03T10:00:00Z\n'.repeat(10_000);
    const later = Buffer.concat([Buffer.from(`id,a,v,t\r${rows}S2,`), Buffer.from([0x81, 0x20]), Buffer.from(',5,2026-12-03T10:00:00Z\n')]);
    expect(later.length).toBeGreaterThan(256 * 1024);
    expect(await reasonOf(fileWith('later.csv', later), gbk)).toBe('line 20002: not GBK text (is the encoding setting right?)');
    const xml = connection({
      format: 'xml',
      xml: { record: 'R/S', encoding: 'gbk' },
      mapping: { sample_id: '@id', analyte: '@a', value: '.' },
    });
    const badXml = Buffer.concat([
      Buffer.from('<R>\n<S id="1" a="GLU">5</S>\n<S id="'),
      Buffer.from([0x81, 0x20]),
      Buffer.from('" a="GLU">5</S></R>'),
    ]);
    expect(await reasonOf(fileWith('bad.xml', badXml), xml)).toBe('line 3: not GBK text (is the encoding setting right?)');
    // A character cut at the end of the file.
    const cut = Buffer.concat([Buffer.from('id,a,v,t\nS1,GLU,5,2026-12-03T10:00:00Z\nS2,'), iconv.encode('葡', 'gbk').subarray(0, 1)]);
    expect(await reasonOf(fileWith('cut.csv', cut), gbk)).toBe(
      'line 3, end of file: not GBK text (a character is cut: the file may be truncated) (is the encoding setting right?)',
    );
  });

  it('a file over max_file_size, however it grew', async () => {
    const small = connection({ ...raw, max_file_size: '10B' });
    expect(await reasonOf(fileWith('big.csv', 'id,a,v,t\nS1,GLU,5,2026-12-03T10:00:00Z\n'), small)).toBe(
      'larger than max_file_size (10 bytes)',
    );
  });

  it('text values only when value_type says so', async () => {
    const auto = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', value_type: 'auto' } });
    const text = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v', value_type: 'text' } });
    const file = fileWith('t.csv', 'id,a,v\nS1,HBsAg,阴性\nS2,GLU,5.0\n');
    expect((await read(file, auto)).results.map((r) => r.value)).toEqual(['阴性', 5]);
    expect((await read(file, text)).results.map((r) => r.value)).toEqual(['阴性', '5.0']);
    const numbers = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    expect(await reasonOf(file, numbers)).toMatch(/^line 2: value "阴性"/);
  });
});

describe('the second pass', () => {
  it('notices a file rewritten since the first, chunk by chunk', async () => {
    const c = connection({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a', value: 'v' } });
    const path = fileWith('a.csv', `id,a,v\n${'S-1,GLU,5.2\n'.repeat(50_000)}`);
    const { digest } = await read(path, c);
    expect(digest.chunks.length).toBeGreaterThan(1);
    const same = fileRecords(path, c, { instrument: 'LAB-1', fileTime: 0, expect: digest.chunks });
    for (let s = await same.next(); !s.done; s = await same.next());
    writeFileSync(path, `id,a,v\n${'S-1,GLU,5.2\n'.repeat(49_999)}S-1,GLU,5.3\n`);
    const changed = fileRecords(path, c, { instrument: 'LAB-1', fileTime: 0, expect: digest.chunks });
    await expect(
      (async () => {
        for (let s = await changed.next(); !s.done; s = await changed.next());
      })(),
    ).rejects.toBeInstanceOf(FileChanged);
  });
});

describe('time formats', () => {
  it('reads patterns in a zone, and ISO with its own offset', () => {
    expect(timeReader('YYYY/MM/DD HH:mm:ss', 'Asia/Shanghai')('2026/12/03 10:20:00')).toBe(Date.parse('2026-12-03T02:20:00Z'));
    expect(timeReader('DD.MM.YYYY HH:mm', 'Europe/Berlin')('03.07.2026 10:20')).toBe(Date.parse('2026-07-03T08:20:00Z'));
    expect(timeReader('YYYY年MM月DD日 HH:mm:ss', 'UTC')('2026年12月03日 10:20:05')).toBe(Date.parse('2026-12-03T10:20:05Z'));
    expect(timeReader('iso', 'Asia/Shanghai')('2026-12-03 10:20:00.5')).toBe(Date.parse('2026-12-03T02:20:00.500Z'));
    expect(timeReader('iso', 'Asia/Shanghai')('2026-12-03T10:20:00-05:00')).toBe(Date.parse('2026-12-03T15:20:00Z'));
    expect(timeReader('epoch_s', undefined)('1764728400')).toBe(1764728400000);
    expect(timeReader('YYYY/MM/DD HH:mm', 'UTC')('2026/13/03 10:20')).toBeUndefined();
    expect(timeReader('iso', 'UTC')('2024-02-29 10:20')).toBe(Date.parse('2024-02-29T10:20:00Z'));
    expect(timeReader('iso', 'UTC')('2026-02-29 10:20')).toBeUndefined();
    expect(timeReader('YY-M-D H:mm', 'UTC')('26-2-3 9:05')).toBe(Date.parse('2026-02-03T09:05:00Z'));
  });
});

describe('the connection schema', () => {
  it('gateway check reports a mapping mistake at its place in the site file', () => {
    const yaml = [
      'version: 1',
      'gateway: { id: gw, site: s }',
      'connections:',
      '  - { id: f, type: file-drop, folder: /x, pattern: "*.csv", format: csv, csv: { header: false }, mapping: { sample_id: 1, analyte: name, value: 3 } }',
      'equipment: [{ id: LAB-1, category: lab_analyzer, connection: f }]',
    ].join('\n');
    let problems: Array<{ path: string; message: string; line?: number }> = [];
    try {
      parseSite(yaml, { env: {} });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([
      { path: 'connections[0].mapping.analyte', message: 'header is false: expected a column number (from 1)', line: 4 },
    ]);
  });

  const problems = (extra: Record<string, unknown>) => {
    const r = fileDropConnectionSchema.safeParse({ id: 'f', type: 'file-drop', folder: '/x', pattern: '*.csv', ...extra });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('reports each mapping mistake at its path', () => {
    expect(problems({ format: 'csv', mapping: { sample_id: 'id', analyte: 'a' } })).toEqual([
      'mapping.value: required (or analytes, for a wide layout)',
    ]);
    expect(problems({ format: 'csv', csv: { header: false }, mapping: { sample_id: 1, analyte: 'a', value: 3 } })).toEqual([
      'mapping.analyte: header is false: expected a column number (from 1)',
    ]);
    expect(problems({ format: 'xml', xml: { record: 'R/S' }, mapping: { sample_id: '@id/x', analyte: 'A', value: 2 } })).toEqual([
      'mapping.sample_id: "@id": an attribute ends a path',
      'mapping.value: expected a path in the xml record, not a column number',
    ]);
    expect(problems({ format: 'xml', mapping: { sample_id: 'a', analyte: 'b', value: 'c' } })).toEqual([
      'xml: format xml needs xml.record: the path to the record element',
    ]);
    expect(problems({ format: 'csv', mapping: { sample_id: 'a', analytes: [{ analyte: 'X', value: 'x' }], value: 'v' } })).toEqual([
      'mapping.value: a wide layout (analytes) gives the analyte, value and unit per column: leave this out',
    ]);
    expect(problems({ format: 'csv', mapping: { sample_id: 'a', analyte: 'b', value: 'c', time_format: 'DD/MM' } })).toEqual([
      'mapping.time_format: expected iso, epoch_s, epoch_ms or a pattern with YYYY, HH, mm (such as YYYY/MM/DD HH:mm:ss)',
    ]);
    expect(problems({ format: 'json', max_file_size: '100MiB', mapping: { sample_id: 'a', analyte: 'b', value: 'c' } })).toEqual([
      'max_file_size: a JSON file is read whole: expected at most 64MiB',
    ]);
    expect(
      problems({
        format: 'csv',
        mapping: {
          sample_id: 'a',
          analytes: [
            { analyte: 'X', value: 'x' },
            { analyte: 'X', value: 'y' },
          ],
        },
      }),
    ).toEqual(['mapping.analytes.1.analyte: "X" is listed twice']);
    expect(problems({ format: 'csv', archive: '/x/', rejected: '/x', mapping: { sample_id: 'a', analyte: 'b', value: 'c' } })).toEqual([
      'archive: must be another folder than the one watched',
      'rejected: must be another folder than the one watched',
    ]);
    expect(problems({ format: 'json', json: { records: 'a[]..b' }, mapping: { sample_id: 'a', analyte: 'b', value: 'c' } })).toEqual([
      'json.records: "a[]..b": an empty key (two dots, or a dot at an end)',
    ]);
  });
});
