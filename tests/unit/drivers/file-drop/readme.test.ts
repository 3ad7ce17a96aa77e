// The README's worked examples are real: each example file is read with the YAML that names it (as
// the site loader parses it) and gives the results the README shows, and the file shown in the
// README is the file in examples/, byte for byte once decoded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSite } from '../../../../config/load.js';
import type { FileDropConnection } from '../../../../drivers/file-drop/schema.js';
import { read } from './helpers.js';

const folder = join(import.meta.dirname, '..', '..', '..', '..', 'drivers', 'file-drop');
const readme = readFileSync(join(folder, 'README.md'), 'utf8');

/** The README's fenced blocks with the line before each (a marker comment, or anything). */
function blocks(): Array<{ lang: string; text: string; before: string }> {
  const out: Array<{ lang: string; text: string; before: string }> = [];
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l === '```');
    const before = lines.slice(0, i).findLast((l) => l.trim() !== '') ?? '';
    out.push({ lang: open[1]!, text: lines.slice(i + 1, end).join('\n'), before });
    i = end;
  }
  return out;
}

/** The connection of the README sample that names `file`, as the site loader gives it. */
function connectionFor(file: string): FileDropConnection {
  const sample = blocks().find((b) => b.lang === 'yaml' && b.text.startsWith(`# example: ${file}\n`));
  if (!sample) throw new Error(`no YAML sample in the README names ${file}`);
  const site = parseSite(['version: 1', 'gateway: { id: gw-readme, site: readme }', sample.text].join('\n'), {
    file: 'README.md',
    env: false,
  });
  return site.connections[0] as unknown as FileDropConnection;
}

const summary = async (file: string) =>
  (await read(join(folder, file), connectionFor(file))).results.map((r) => ({
    sample: r.sampleId,
    analyte: r.analyte,
    value: r.value,
    ...(r.unit ? { unit: r.unit } : {}),
    at: r.resultAt,
    ...(r.control ? { control: r.control } : {}),
    ...(r.reference ? { reference: r.reference } : {}),
    ...(r.flags.length ? { flags: r.flags } : {}),
  }));

describe('drivers/file-drop/README.md', () => {
  it('shows each example file as it is', () => {
    const shown = blocks().filter((b) => b.before.startsWith('<!-- example file: '));
    expect(shown.map((b) => b.before)).toHaveLength(5);
    for (const b of shown) {
      const [, file, encoding] = /^<!-- example file: (\S+)(?: \((\w+)\))? -->$/.exec(b.before)!;
      const bytes = readFileSync(join(folder, file!));
      const text = encoding ? iconv.decode(bytes, encoding) : bytes.toString('utf8');
      expect(`${b.text}\n`, file).toBe(text.replace(/\r\n/g, '\n'));
    }
  });

  it('a GBK CSV with a header and decimal commas', async () => {
    expect(await summary('examples/chem-gbk.csv')).toEqual([
      { sample: 'S-00001', analyte: 'GLU', value: 5.21, unit: 'mmol/L', at: '2026-12-03T02:20:00.000Z', reference: { lo: 3.9, hi: 6.1 } },
      { sample: 'S-00001', analyte: 'CHOL', value: 6.02, unit: 'mmol/L', at: '2026-12-03T02:20:00.000Z', reference: { lo: 0, hi: 5.2 } },
      { sample: 'QC2-0001', analyte: 'GLU', value: 15.08, unit: 'mmol/L', at: '2026-12-03T02:21:30.000Z', control: { level: '2' } },
    ]);
  });

  it('a wide CSV', async () => {
    const { results } = await read(join(folder, 'examples/tensile-wide.csv'), connectionFor('examples/tensile-wide.csv'));
    expect(results.map((r) => `${r.index} ${r.sampleId} ${r.analyte} ${r.value} ${r.unit} ${r.resultAt} ${r.operator}`)).toEqual([
      '0 T-2026-118 Rm 452.1 MPa 2026-12-03T01:40:12.000Z li.wei',
      '0 T-2026-118 ReH 310.5 MPa 2026-12-03T01:40:12.000Z li.wei',
      '0 T-2026-118 A 24.5 % 2026-12-03T01:40:12.000Z li.wei',
      '1 T-2026-119 Rm 448.9 MPa 2026-12-03T01:52:47.000Z li.wei',
      '1 T-2026-119 A 23.9 % 2026-12-03T01:52:47.000Z li.wei',
    ]);
  });

  it('a TSV by column numbers', async () => {
    const { results } = await read(join(folder, 'examples/hardness.tsv'), connectionFor('examples/hardness.tsv'));
    expect(results.map((r) => `${r.sampleId} ${r.analyte} ${r.value} ${r.status} ${r.resultAt}`)).toEqual([
      'P-7731 HBW 187 final 2026-12-03T14:02:10.000Z',
      'P-7732 HBW 192 final 2026-12-03T14:03:55.000Z',
    ]);
  });

  it('an XML file', async () => {
    expect(await summary('examples/icp.xml')).toEqual([
      { sample: 'W-0412', analyte: 'Pb', value: 0.0042, unit: 'mg/L', at: '2026-12-03T03:05:00.000Z' },
      { sample: 'W-0412', analyte: 'Cd', value: '<0.0005', unit: 'mg/L', at: '2026-12-03T03:05:00.000Z', flags: ['L'] },
      { sample: 'QC-CCV-1', analyte: 'Pb', value: 0.0502, unit: 'mg/L', at: '2026-12-03T03:09:30.000Z', control: { level: 'mid' } },
    ]);
  });

  it('a JSON file', async () => {
    expect(await summary('examples/gc.json')).toEqual([
      { sample: 'V-01', analyte: 'benzene', value: 1.92, unit: 'mg/kg', at: '2026-12-03T08:15:00.000Z' },
      { sample: 'V-01', analyte: 'toluene', value: 0.48, unit: 'mg/kg', at: '2026-12-03T08:15:00.000Z' },
      { sample: 'V-02', analyte: 'benzene', value: 2.05, unit: 'mg/kg', at: '2026-12-03T08:42:00.000Z' },
    ]);
  });

  it('every YAML sample that names an example file names one that exists', () => {
    for (const b of blocks().filter((x) => x.lang === 'yaml' && x.text.startsWith('# example: '))) {
      const file = /^# example: (\S+)/.exec(b.text)![1]!;
      expect(() => readFileSync(join(folder, file)), file).not.toThrow();
      expect(parse(b.text), file).toHaveProperty('connections');
    }
  });
});
