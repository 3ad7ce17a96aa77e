// The equipment plugin alone (with auth in front): the list with on_change from the driver's answer,
// one equipment's last values from the pipeline's batches, the trend from memory, and the errors.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSite } from '../../../../config/load.js';
import type { Reading } from '../../../../drivers/types.js';
import { equipmentPlugin, equipmentReadings } from '../../../../gateway/http/plugins/equipment.js';
import type { Pipeline } from '../../../../gateway/pipeline.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

const site = parseSite(
  `version: 1
gateway: { id: gw-1, site: s1 }
http: {}
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, poll_interval: 1s, points: [{ name: drum_level, unit: mm }, { name: steam_pressure }] }
  - { id: B-2, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
`,
  { env: {} },
);

let t: PluginApp;
afterEach(() => t.app.close());

/** The plugin over `config`, with a pipeline whose batches the test pushes. */
async function build(o: { reportsOnChange?: (id: string) => boolean; config?: typeof site } = {}) {
  const config = o.config ?? site;
  let push: (batch: Reading[]) => void = () => {};
  const pipeline = {
    onBatch: (l: (batch: Reading[]) => void) => void (push = l),
    status: (id: string) => (id === 'B-1' ? { state: 'degraded', reason: 'pressure: timeout', ts: 1 } : undefined),
  } as unknown as Pipeline;
  const readings = equipmentReadings({ config, history: site.http!.history, pipeline, log: pino({ level: 'silent' }) });
  t = await pluginApp((app) =>
    app.register(equipmentPlugin, {
      config,
      readings,
      pipeline,
      log: pino({ level: 'silent' }),
      reportsOnChange: o.reportsOnChange ?? (() => false),
    }),
  );
  return { push: (batch: Reading[]) => push(batch) };
}

describe('equipment plugin', () => {
  it('lists the equipment with status, and on_change as the driver answers it', async () => {
    await build({ reportsOnChange: (id) => id === 'B-2' });
    const r = await t.app.inject({ url: '/api/equipment', headers: as('viewer') });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual([
      { id: 'B-1', category: 'boiler', status: 'degraded', reason: 'pressure: timeout', poll_interval: 1000, on_change: false },
      { id: 'B-2', category: 'boiler', status: 'unknown', poll_interval: expect.any(Number), on_change: true },
    ]);
  });

  it("serves one equipment's last values and a point's recent readings from the pipeline's batches", async () => {
    const { push } = await build();
    push([
      { equipment: 'B-1', point: 'drum_level', value: 10, quality: 'good', ts: 1000 },
      { equipment: 'B-1', point: 'steam_pressure', value: null, quality: 'bad', reason: 'timeout', ts: 1000 },
    ]);
    push([{ equipment: 'B-1', point: 'drum_level', value: 12, quality: 'good', ts: 2000 }]);
    expect((await t.app.inject({ url: '/api/equipment/B-1', headers: as('viewer') })).json()).toEqual({
      id: 'B-1',
      category: 'boiler',
      status: 'degraded',
      points: [
        { name: 'drum_level', value: 12, unit: 'mm', quality: 'good', ts: 2000 },
        { name: 'steam_pressure', value: null, quality: 'bad', reason: 'timeout', ts: 1000 },
      ],
    });
    const h = await t.app.inject({ url: '/api/equipment/B-1/history?point=drum_level', headers: as('viewer') });
    expect(h.headers['x-history-source']).toBe('memory');
    expect(h.json()).toEqual([
      { ts: 1000, value: 10, quality: 'good' },
      { ts: 2000, value: 12, quality: 'good' },
    ]);
  });

  it('answers an unknown equipment or point with 404 GW_HTTP_NOT_FOUND, a bad query with 400, and no token with 401', async () => {
    await build();
    const none = await t.app.inject({ url: '/api/equipment/X-9', headers: as('viewer') });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ error: 'no equipment X-9', code: 'GW_HTTP_NOT_FOUND' });
    const point = await t.app.inject({ url: '/api/equipment/B-1/history?point=nope', headers: as('viewer') });
    expect(point.json()).toEqual({ error: 'no point nope on equipment B-1', code: 'GW_HTTP_NOT_FOUND' });
    const bad = await t.app.inject({ url: '/api/equipment/B-1/history?point=drum_level&limit=0', headers: as('viewer') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'GW_HTTP_INVALID_REQUEST', error: expect.stringMatching(/limit/) });
    expect((await t.app.inject({ url: '/api/equipment' })).json()).toMatchObject({ code: 'GW_HTTP_UNAUTHORIZED' });
  });
});
