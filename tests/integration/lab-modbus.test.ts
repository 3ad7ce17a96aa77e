// A lab analyzer on Modbus TCP (the project's simulator): a result counter and a block with the
// sample id and one value per analyte. Every result is captured once; a jump of the counter is a
// gap; a counter reset is a new series, not old results; garbled sample-id text is refused and the
// result is taken once it reads well; a restart does not take a result twice.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createModbusTcpSimulator, LabAnalyzerDevice } from '../../drivers/modbus/simulator.js';
import type { LabResult } from '../../drivers/common/result.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { parseSite } from '../../config/load.js';
import { subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lab results from a Modbus register block', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('captures each result once, reports a gap and a counter reset, refuses garbled sample ids without losing the result, and survives a restart', async () => {
    const device = new LabAnalyzerDevice(4);
    const modbusPort = await freePort();
    const sim = createModbusTcpSimulator({ port: modbusPort, devices: new Map([[2, device]]) });
    await sim.start();
    cleanup.push(() => sim.stop());
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-lab-modbus-'));
    const yaml = async () =>
      [
        'version: 1',
        `gateway: { id: gw-lab, site: lab-site, data_dir: ${dataDir} }`,
        `mqtt: { port: ${await freePort()} }`,
        `connections: [{ id: lab-plc, type: modbus-tcp, host: 127.0.0.1, port: ${modbusPort}, timeout: 1s }]`,
        'equipment:',
        '  - id: LA-1',
        '    category: lab_analyzer',
        '    connection: lab-plc',
        '    unit_id: 2',
        '    poll_interval: 100ms',
        '    points: [{ name: result_counter, address: "hr:0", type: uint16 }]',
        '    results:',
        '      trigger: result_counter',
        '      sample_id: { address: "hr:10", length: 10 }',
        '      analytes:',
        '        - { name: GLU, address: "hr:30", type: float32, unit: mmol/L, reference: { lo: 3.9, hi: 6.1 } }',
        '        - { name: CHOL, address: "hr:32", type: float32, unit: mmol/L }',
        '        - { name: TG, address: "hr:34", type: float32, unit: mmol/L }',
        '',
      ].join('\n');
    const captured: LabResult[] = [];
    const start = async (): Promise<Gateway> => {
      const gw = createGateway(parseSite(await yaml(), { env: {} }), silent);
      gw.results.onResults((r) => captured.push(...r));
      await gw.start();
      return gw;
    };
    let gw = await start();
    cleanup.push(() => gw.stop());
    const sub = await subscribe(gw.mqttUrl(), 'gw/lab-site/LA-1/results');
    cleanup.push(() => sub.close());
    const stats = () => gw.driverStats()[0]!.stats;

    for (let k = 0; k < 3; k++) {
      device.produce();
      await until(`result ${k + 1}`, () => captured.length === 3 * (k + 1));
    }
    // Three results the gateway never saw: the counter jumps by three.
    device.skip(3);
    await until('the result after the gap', () => captured.length === 12);
    expect(stats()).toMatchObject({ resultGaps: 1, resultsMissed: 2 });

    // The analyzer restarts: its counter starts again, and its next result is new, not a repeat.
    device.reset();
    await until('the reset to be seen', () => stats().counterResets === 1);
    device.produce();
    await until('the first result of the new series', () => captured.length === 15);

    // Garbled sample id: refused (and logged) at every poll until it reads well; then taken once.
    device.produce();
    device.garbleSampleId();
    await until('a refused block', () => (stats().resultBlockErrors ?? 0) >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(captured).toHaveLength(15);
    device.repairSampleId();
    await until('the repaired result', () => captured.length === 18);

    // A restart on the same data folder takes nothing twice.
    await gw.stop();
    gw = await start();
    await new Promise((r) => setTimeout(r, 600));
    expect(captured).toHaveLength(18);
    device.produce();
    await until('a result after the restart', () => captured.length === 21);

    // Exactly what the analyzer produced (and the gateway could see), each once, with its sample id.
    const expected = device.produced.flatMap((p) =>
      Object.entries(p.values).map(([analyte, value]) => ({ sampleId: p.sampleId, analyte, value })),
    );
    expect(captured.map((r) => ({ sampleId: r.sampleId, analyte: r.analyte, value: Math.round((r.value as number) * 100) / 100 }))).toEqual(
      expected,
    );
    expect(new Set(captured.map((r) => r.resultId)).size).toBe(captured.length);
    expect(captured[0]).toMatchObject({ instrument: 'LA-1', unit: 'mmol/L', status: 'final', resultId: 'LA-1:0.1:GLU' });
    expect(captured.find((r) => r.sampleId === device.produced.at(-1)!.sampleId)!.resultId).toMatch(/^LA-1:1\.\d+:GLU$/);
    const glu = captured.filter((r) => r.analyte === 'GLU');
    for (const r of glu) expect(r.flags).toEqual([(r.value as number) < 3.9 ? 'L' : (r.value as number) > 6.1 ? 'H' : 'N']);
    expect(sub.messages.length).toBeGreaterThanOrEqual(18);
  });
});
