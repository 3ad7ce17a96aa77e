// The auth plugin alone, in front of a few routes of each role: who gets in, who gets 401, 403 and
// 429 with their codes, and how many audit lines refused requests may write.
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_REFUSAL_LINES_PER_MINUTE } from '../../../../gateway/http/plugins/auth.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

const routes = (app: FastifyInstance) =>
  app.register(async (api) => {
    api.get('/open', async () => ({ ok: true }));
    api.get('/read', { config: { role: 'viewer' } }, async (req) => ({ who: req.who }));
    api.post('/act', { config: { role: 'operator' } }, async (req) => ({ who: req.who }));
  });

let t: PluginApp;
afterEach(() => t.app.close());

describe('auth plugin', () => {
  it('lets a token of the role in, names its holder, and leaves open routes open', async () => {
    t = await pluginApp(routes);
    expect((await t.app.inject({ url: '/open' })).json()).toEqual({ ok: true });
    expect((await t.app.inject({ url: '/read', headers: as('viewer') })).json()).toEqual({ who: 'viewer-user' });
    expect((await t.app.inject({ method: 'POST', url: '/act', headers: as('admin') })).json()).toEqual({ who: 'admin-user' });
    expect(t.audit).toEqual([]);
  });

  it('answers no token and a wrong token with 401 GW_HTTP_UNAUTHORIZED, and a role too low with 403 GW_HTTP_FORBIDDEN', async () => {
    t = await pluginApp(routes);
    const none = await t.app.inject({ url: '/read' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json()).toEqual({ error: 'a Bearer token is needed (Authorization: Bearer <token>)', code: 'GW_HTTP_UNAUTHORIZED' });
    const wrong = await t.app.inject({ url: '/read', headers: { authorization: 'Bearer guess' } });
    expect(wrong.json()).toEqual({ error: 'unknown token', code: 'GW_HTTP_UNAUTHORIZED' });
    const low = await t.app.inject({ method: 'POST', url: '/act', headers: as('viewer') });
    expect(low.statusCode).toBe(403);
    expect(low.json()).toEqual({ error: 'viewer-user is a viewer; this needs operator', code: 'GW_HTTP_FORBIDDEN' });
    // One line for the address's first refusal; the second is counted for the next.
    expect(t.audit).toEqual([{ who: 'ip:127.0.0.1', action: 'login', target: '/read', outcome: 'refused: no token' }]);
  });

  it('answers the eleventh wrong token within a minute with 429, and still lets a valid token from the address in', async () => {
    t = await pluginApp(routes);
    const guess = (remoteAddress: string) => t.app.inject({ url: '/read', remoteAddress, headers: { authorization: 'Bearer guess' } });
    for (let k = 0; k < 10; k++) expect((await guess('10.0.0.1')).statusCode).toBe(401);
    const r = await guess('10.0.0.1');
    expect(r.statusCode).toBe(429);
    expect(r.headers['retry-after']).toBe('60');
    expect(r.json()).toMatchObject({ code: 'GW_HTTP_TOO_MANY_WRONG_TOKENS' });
    expect((await t.app.inject({ url: '/read', remoteAddress: '10.0.0.1', headers: as('viewer') })).statusCode).toBe(200);
    expect((await guess('10.0.0.2')).statusCode).toBe(401);
    // A minute later the address may guess again.
    t.clock.now += 60_001;
    expect((await guess('10.0.0.1')).statusCode).toBe(401);
  });

  it('writes at most one line per address per minute, with the count of the others at the next line or at close', async () => {
    t = await pluginApp(routes);
    for (let k = 0; k < 5; k++) await t.app.inject({ url: '/read', remoteAddress: '10.0.0.9' });
    expect(t.audit).toHaveLength(1);
    await t.app.close();
    expect(t.audit).toEqual([
      expect.objectContaining({ who: 'ip:10.0.0.9', outcome: 'refused: no token' }),
      expect.objectContaining({ who: 'ip:10.0.0.9', detail: '4 more refused since the last line for this address' }),
    ]);
  });

  it('bounds the audit lines of refused requests from many addresses, counts the rest and journals the count', async () => {
    t = await pluginApp(routes);
    const addresses = 3 * MAX_REFUSAL_LINES_PER_MINUTE;
    for (let k = 0; k < addresses; k++) await t.app.inject({ url: '/read', remoteAddress: `10.1.${k >> 8}.${k & 255}` });
    expect(t.audit).toHaveLength(MAX_REFUSAL_LINES_PER_MINUTE);
    // What was not journaled is in the log, once (rate-limited), with the count so far.
    const warned = t.logs.filter((l) => /over 100 audit lines a minute/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, unjournaled: 1 });
    // The next minute's first line journals how many were left out; the addresses' own lines follow.
    t.clock.now += 60_000;
    await t.app.inject({ url: '/read', remoteAddress: '10.2.0.1' });
    expect(t.audit.slice(MAX_REFUSAL_LINES_PER_MINUTE)).toEqual([
      {
        who: 'ip:*',
        action: 'login',
        outcome: 'refused',
        detail: `${addresses - MAX_REFUSAL_LINES_PER_MINUTE} refused requests not journaled one by one (over 100 lines a minute)`,
      },
      expect.objectContaining({ who: 'ip:10.2.0.1', outcome: 'refused: no token' }),
    ]);
    // Whatever the number of addresses, a minute holds at most the budget, the count's line included.
    for (let k = 0; k < addresses; k++) await t.app.inject({ url: '/read', remoteAddress: `10.3.${k >> 8}.${k & 255}` });
    expect(t.audit).toHaveLength(2 * MAX_REFUSAL_LINES_PER_MINUTE);
    await t.app.close();
    expect(t.audit.at(-1)).toMatchObject({
      who: 'ip:*',
      detail: `${addresses - (MAX_REFUSAL_LINES_PER_MINUTE - 2)} refused requests not journaled one by one (over 100 lines a minute)`,
    });
  });
});
