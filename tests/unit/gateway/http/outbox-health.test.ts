// The outbox and health plugins alone, behind auth, through inject().
import { afterEach, describe, expect, it } from 'vitest';
import { healthPlugin, type HealthOptions } from '../../../../gateway/http/plugins/health.js';
import { outboxPlugin } from '../../../../gateway/http/plugins/outbox.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

let t: PluginApp;
afterEach(() => t.app.close());

describe('outbox plugin', () => {
  const dead = [{ seq: 7, eventId: 'e-7', answer: '422 refused', incident: '{"incidentId":"i-1"}' }];
  const outbox = () => {
    const retried: Array<number[] | undefined> = [];
    return {
      retried,
      box: {
        stats: () => ({ pending: 2, dead: 1 }),
        list: () => dead,
        retry: (seqs?: number[]) => (retried.push(seqs), seqs ? seqs.length : dead.length),
      },
    };
  };

  it('lists pending and dead letters to a viewer; only an admin sends them again, and it is audited', async () => {
    const o = outbox();
    t = await pluginApp((app) => app.register(outboxPlugin, { outbox: () => o.box as never, audit: { append: (e) => t.audit.push(e) } }));
    const list = await t.app.inject({ url: '/api/outbox', headers: as('viewer') });
    expect(list.json()).toEqual({
      pending: 2,
      dead: 1,
      deadLetters: [{ seq: 7, eventId: 'e-7', answer: '422 refused', body: { incidentId: 'i-1' } }],
    });
    const refused = await t.app.inject({ method: 'POST', url: '/api/outbox/retry', headers: as('operator'), payload: {} });
    expect([refused.statusCode, refused.json().code]).toEqual([403, 'GW_HTTP_FORBIDDEN']);
    const retry = await t.app.inject({ method: 'POST', url: '/api/outbox/retry', headers: as('admin'), payload: { seq: 7 } });
    expect(retry.json()).toEqual({ retried: 1 });
    expect(o.retried).toEqual([[7]]);
    expect(t.audit).toContainEqual({ who: 'admin-user', action: 'outbox retry', target: 'seq 7', outcome: '1 back in the queue' });
  });

  it('answers 404 with GW_HTTP_NO_PLATFORM on a site without a platform, and 400 with its code for a bad seq', async () => {
    t = await pluginApp((app) => app.register(outboxPlugin, { outbox: () => undefined, audit: { append: () => {} } }));
    const none = await t.app.inject({ url: '/api/outbox', headers: as('viewer') });
    expect([none.statusCode, none.json().code]).toEqual([404, 'GW_HTTP_NO_PLATFORM']);
    const bad = await t.app.inject({ method: 'POST', url: '/api/outbox/retry', headers: as('admin'), payload: { seq: -1 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toMatch(/^GW_HTTP_/);
  });
});

describe('health plugin', () => {
  const metrics = {
    contentType: 'text/plain; version=0.0.4',
    metrics: async () => 'gateway_up 1\n',
  } as unknown as HealthOptions['metrics'];

  it('is ready when every component is, and says which are not with GW_HTTP_NOT_READY otherwise', async () => {
    let store = true;
    t = await pluginApp((app) =>
      app.register(healthPlugin, { metrics, ready: () => ({ store: { ok: store }, mqtt: { ok: true, detail: { connected: true } } }) }),
    );
    expect((await t.app.inject({ url: '/health' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: '/ready' })).json()).toEqual({
      ready: true,
      components: { store: { ok: true }, mqtt: { ok: true, detail: { connected: true } } },
    });
    store = false;
    const waiting = await t.app.inject({ url: '/ready' });
    expect(waiting.statusCode).toBe(503);
    expect(waiting.json()).toMatchObject({ ready: false, code: 'GW_HTTP_NOT_READY', error: 'not ready: store' });
  });

  it('gives /metrics to a viewer only', async () => {
    t = await pluginApp((app) => app.register(healthPlugin, { metrics, ready: () => ({}) }));
    expect((await t.app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const m = await t.app.inject({ url: '/metrics', headers: as('viewer') });
    expect([m.statusCode, m.body]).toEqual([200, 'gateway_up 1\n']);
  });
});
