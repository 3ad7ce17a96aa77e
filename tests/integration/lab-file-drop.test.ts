// A file-exporting instrument (the project's simulator, writing real files into a real folder) and a
// real gateway: each result reaches MQTT and the platform inbox exactly once, whether its file was
// renamed into place, appended slowly under its final name, or copied in twice; a truncated file
// goes to rejected/ with its reason and nothing of it is stored.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { createFileInstrument, type SimResult } from '../../drivers/file-drop/simulator.js';
import { fileInstrumentSimulatorSchema } from '../../drivers/file-drop/schema.js';
import type { LabEvent } from '../../drivers/types.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway } from '../../gateway/runtime.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lab-files-secret-0123456789';

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The site file's connection for the simulator's files: CSV in GBK, or XML. */
export function simulatorConnections(folder: string, stableFor = '2s'): string[] {
  return [
    'connections:',
    '  - id: chem-csv',
    '    type: file-drop',
    `    folder: ${folder}`,
    "    pattern: '*.csv'",
    `    stable_for: ${stableFor}`,
    '    poll_interval: 200ms',
    '    format: csv',
    "    csv: { encoding: gbk, decimal: ',', skip_lines: 1 }",
    '    mapping:',
    '      { sample_id: 样本号, analyte: 代码, value: 结果, unit: 单位, time: 检测时间, time_format: YYYY/MM/DD HH:mm:ss, control_level: 质控水平 }',
    '  - id: chem-xml',
    '    type: file-drop',
    `    folder: ${folder}`,
    "    pattern: '*.xml'",
    `    stable_for: ${stableFor}`,
    '    poll_interval: 200ms',
    '    format: xml',
    '    xml: { record: Results/Sample/Analyte }',
    "    mapping: { sample_id: ../@id, analyte: '@code', value: ., unit: '@unit', time: ../@time, control_level: ../@control }",
  ];
}

const key = (r: { sampleId: string; analyte: string; value: unknown }) => `${r.sampleId}/${r.analyte}=${String(r.value)}`;

describe('lab results from files', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('takes renamed-in, slowly written and repeated files once each, rejects a truncated one: every result once on MQTT and at the platform', async () => {
    const inboxPort = await freePort();
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-files-'));
    const folder = join(dataDir, 'exports');
    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-files, site: files-site, data_dir: ${dataDir} }`,
        `mqtt: { port: ${await freePort()} }`,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        ...simulatorConnections(folder),
        'equipment:',
        '  - { id: LAB-CSV, name: Chemistry (CSV), category: lab_analyzer, connection: chem-csv }',
        '  - { id: LAB-XML, name: Chemistry (XML), category: lab_analyzer, connection: chem-xml }',
        '',
      ].join('\n'),
      { env: {} },
    );
    const gw = createGateway(site, silent);
    cleanup.push(() => gw.stop());
    await gw.start();
    const sub = await subscribe(gw.mqttUrl(), 'gw/files-site/+/results');
    cleanup.push(() => sub.close());
    const sim = createFileInstrument(
      fileInstrumentSimulatorSchema.parse({ type: 'file-instrument', folder, interval: '1h', samples: 2, fault_duration: '2s' }),
    );
    cleanup.push(() => sim.stop());
    const stats = (connection: string) => gw.driverStats().find((d) => d.connection === connection)!.stats;

    // A CSV renamed into place, an XML renamed into place.
    const csv = await sim.writeNext({ format: 'csv' });
    const xml = await sim.writeNext({ format: 'xml' });
    // A CSV appended in pieces under its final name for 2 s: stable_for (2 s) keeps it from being taken early.
    const slow = await sim.writeNext({ format: 'csv', fault: 'slow' });
    // A truncated file, and the first CSV copied in again under another name.
    const cut = await sim.writeNext({ format: 'csv', fault: 'truncated' });
    await until('the first file archived', () => existsSync(join(folder, 'archive', csv.name)));
    copyFileSync(join(folder, 'archive', csv.name), join(folder, 'again.csv'));

    const expected: SimResult[] = [...csv.results, ...xml.results, ...slow.results];
    await until('every result on MQTT', () => sub.messages.length >= expected.length);
    await until(
      'the truncated file rejected and the copy handled',
      () => stats('chem-csv').filesRejected === 1 && stats('chem-csv').duplicates === 1,
    );
    await until('every result at the platform', () => inbox.results.length >= expected.length);
    // A moment for anything that should not come.
    await new Promise((r) => setTimeout(r, 1000));

    const onMqtt = sub.messages.map(
      (m) => JSON.parse(m.payload) as { sampleId: string; analyte: string; value: number; resultId: string; control?: unknown },
    );
    expect(onMqtt.map(key).sort()).toEqual(expected.map(key).sort());
    expect(new Set(onMqtt.map((r) => r.resultId)).size).toBe(expected.length);
    expect(inbox.results.map(key).sort()).toEqual(expected.map(key).sort());
    expect(inbox.stats().duplicates).toBe(0);
    // Control samples carry the instrument's level.
    const controls = onMqtt.filter((r) => r.sampleId.startsWith('QC2-'));
    expect(controls.length).toBeGreaterThan(0);
    expect(controls.every((r) => JSON.stringify(r.control) === '{"level":"2"}')).toBe(true);

    expect(stats('chem-csv')).toMatchObject({
      filesTaken: 2,
      filesRejected: 1,
      duplicates: 1,
      results: csv.results.length + slow.results.length,
    });
    expect(stats('chem-xml')).toMatchObject({ filesTaken: 1, filesRejected: 0, results: xml.results.length });
    expect(readdirSync(join(folder, 'archive')).sort()).toEqual([csv.name, 'again.csv', slow.name, xml.name].sort());
    expect(readdirSync(join(folder, 'rejected')).sort()).toEqual([cut.name, `${cut.name}.reason`]);
    expect(readFileSync(join(folder, 'rejected', `${cut.name}.reason`), 'utf8')).toMatch(
      new RegExp(`^${cut.name}: line \\d+: (a quoted field is never closed|\\d+ fields where the header has 10)`),
    );
    expect(existsSync(join(folder, cut.name))).toBe(false);
  });

  it('reports the files it takes and refuses as lab events', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-files-'));
    const folder = join(dataDir, 'exports');
    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-files, site: files-site, data_dir: ${dataDir} }`,
        `mqtt: { port: ${await freePort()} }`,
        ...simulatorConnections(folder, '300ms'),
        'equipment:',
        '  - { id: LAB-CSV, category: lab_analyzer, connection: chem-csv }',
        '  - { id: LAB-XML, category: lab_analyzer, connection: chem-xml }',
        '',
      ].join('\n'),
      { env: {} },
    );
    const { DRIVERS } = await import('../../drivers/index.js');
    const definition = DRIVERS.find((d) => d.type === 'file-drop')!;
    const events: LabEvent[] = [];
    const stored: unknown[] = [];
    const driver = definition.create(site.connections[0]!, [site.equipment[0]!], {
      log: silent,
      sink: () => {},
      dataDir,
      results: (r) => void stored.push(...r),
      labEvents: (e) => void events.push(e),
      counters: { get: () => undefined, save: () => {} },
    });
    await driver.init();
    await driver.start();
    cleanup.push(() => driver.stop());
    const sim = createFileInstrument(fileInstrumentSimulatorSchema.parse({ type: 'file-instrument', folder, interval: '1h' }));
    const good = await sim.writeNext({ format: 'csv' });
    const bad = await sim.writeNext({ format: 'csv', fault: 'truncated' });
    await until('two events', () => events.length >= 2);
    expect(events.map((e) => [e.kind, 'file' in e ? e.file : undefined])).toEqual([
      ['file-taken', good.name],
      ['file-rejected', bad.name],
    ]);
    expect(stored).toHaveLength(good.results.length);
  });
});
