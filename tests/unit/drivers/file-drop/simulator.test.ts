// The file-exporting instrument simulator writes files the driver reads back as the results it
// meant (GBK CSV and XML), cuts a truncated file so that it is rejected, draws its faults from its
// seed, and shifts level 2 glucose by +2.5 SD in its third and fourth files only.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileInstrumentSimulatorSchema } from '../../../../drivers/file-drop/schema.js';
import { CONTROL_TARGETS, createFileInstrument, resultsOf } from '../../../../drivers/file-drop/simulator.js';
import { connection, read, reasonOf } from './helpers.js';

const CSV = connection({
  format: 'csv',
  csv: { encoding: 'gbk', decimal: ',', skip_lines: 1 },
  mapping: {
    sample_id: '样本号',
    analyte: '代码',
    value: '结果',
    time: '检测时间',
    time_format: 'YYYY/MM/DD HH:mm:ss',
    control_level: '质控水平',
  },
});
const XML = connection({
  format: 'xml',
  xml: { record: 'Results/Sample/Analyte' },
  mapping: { sample_id: '../@id', analyte: '@code', value: '.', time: '../@time', control_level: '../@control' },
});

const simulator = (extra: Record<string, unknown> = {}) => {
  const folder = mkdtempSync(join(tmpdir(), 'gw-file-instrument-'));
  return {
    folder,
    sim: createFileInstrument(fileInstrumentSimulatorSchema.parse({ type: 'file-instrument', folder, fault_duration: '10ms', ...extra })),
  };
};

describe('the file-instrument simulator', () => {
  it('writes GBK CSV and XML files that read back as the results it wrote', async () => {
    const { folder, sim } = simulator({ samples: 2 });
    for (const [format, c] of [
      ['csv', CSV],
      ['xml', XML],
    ] as const) {
      const file = await sim.writeNext({ format });
      const { results } = await read(join(folder, file.name), c);
      expect(results.map((r) => [r.sampleId, r.analyte, r.value, r.control?.level])).toEqual(
        file.results.map((r) => [r.sampleId, r.analyte, r.value, r.control]),
      );
      expect(file.results.filter((r) => r.control)).toHaveLength(6);
    }
    expect(readdirSync(folder).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('cuts a truncated file so that the driver rejects it', async () => {
    const { folder, sim } = simulator();
    const csv = await sim.writeNext({ format: 'csv', fault: 'truncated' });
    expect(await reasonOf(join(folder, csv.name), CSV)).toMatch(
      /^line \d+: (a quoted field is never closed|\d+ fields where the header has 10)/,
    );
    const xml = await sim.writeNext({ format: 'xml', fault: 'truncated' });
    expect(await reasonOf(join(folder, xml.name), XML)).toMatch(/^line \d+: not well-formed XML/);
  });

  it('draws mixed faults from its seed: the first file whole, then mostly whole, some slow, some truncated', async () => {
    const faults = async (seed: number) => {
      const { sim } = simulator({ fault: 'mixed', seed, formats: ['csv'] });
      const out: string[] = [];
      for (let i = 0; i < 30; i++) out.push((await sim.writeNext()).fault);
      return out;
    };
    const a = await faults(3);
    expect(a[0]).toBe('none');
    expect(new Set(a)).toEqual(new Set(['none', 'slow', 'truncated']));
    expect(await faults(3)).toEqual(a);
  });

  it('puts level 2 glucose at +2.5 SD in the third and fourth files, every other control within 1 SD', () => {
    for (let n = 1; n <= 8; n++)
      for (const r of resultsOf(n, 1, true, 1).filter((x) => x.control)) {
        const t = CONTROL_TARGETS[r.analyte]![r.control!];
        const z = (r.value - t.mean) / t.sd;
        if (r.analyte === 'GLU' && r.control === '2' && (n === 3 || n === 4)) expect(z).toBeCloseTo(2.5, 1);
        else expect(Math.abs(z)).toBeLessThanOrEqual(1);
      }
  });
});
