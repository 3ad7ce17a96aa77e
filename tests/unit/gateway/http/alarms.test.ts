// The alarms plugin alone (with auth in front): the lists, an operator's action recorded in the
// audit journal, a refused action as 409 GW_HTTP_CONFLICT, and the roles and bodies it takes.
import { afterEach, describe, expect, it } from 'vitest';
import type { AlarmService } from '../../../../gateway/alarms/service.js';
import { alarmsPlugin } from '../../../../gateway/http/plugins/alarms.js';
import { RuleActionError } from '../../../../rules/engine.js';
import type { AlarmEvent } from '../../../../rules/types.js';
import { as, pluginApp, type PluginApp } from './plugin-app.js';

const event = (equipment: string, eventId: string) =>
  ({ eventId, equipment, type: 'raised', state: 'active_unacknowledged' }) as unknown as AlarmEvent;
const calls: unknown[][] = [];
const alarms = {
  active: () => [{ key: 'B-1/high', state: 'active_unacknowledged' }],
  history: () => [event('B-1', 'e1'), event('B-2', 'e2'), event('B-1', 'e3')],
  acknowledge: (...args: unknown[]) => {
    calls.push(['acknowledge', ...args]);
    if (args[0] === 'B-1/gone') throw new RuleActionError('B-1/gone has nothing to acknowledge (normal)');
    return [event('B-1', 'e4')];
  },
  shelve: (...args: unknown[]) => (calls.push(['shelve', ...args]), []),
  unshelve: () => [],
  setOutOfService: () => [],
} as unknown as AlarmService;

let t: PluginApp;
afterEach(() => {
  calls.length = 0;
  return t.app.close();
});

describe('alarms plugin', () => {
  it('lists the active alarms and the history, newest first, of one equipment', async () => {
    t = await pluginApp((app) => app.register(alarmsPlugin, { alarms, audit: { append: () => {} } }));
    expect((await t.app.inject({ url: '/api/alarms', headers: as('viewer') })).json()).toEqual([
      { key: 'B-1/high', state: 'active_unacknowledged' },
    ]);
    const h = await t.app.inject({ url: '/api/alarms/history?equipment=B-1&limit=1', headers: as('viewer') });
    expect((h.json() as Array<{ eventId: string }>).map((e) => e.eventId)).toEqual(['e3']);
  });

  it("acknowledges in the holder's name and journals it; a refused action is 409 GW_HTTP_CONFLICT, journaled as refused", async () => {
    const audit: unknown[] = [];
    t = await pluginApp((app) => app.register(alarmsPlugin, { alarms, audit: { append: (e) => audit.push(e) } }));
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/alarms/B-1/high/acknowledge',
      headers: as('operator'),
      payload: { comment: 'seen' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ events: [{ eventId: 'e4' }] });
    expect(calls).toEqual([['acknowledge', 'B-1/high', 'operator-user', 'seen']]);
    const refused = await t.app.inject({ method: 'POST', url: '/api/alarms/B-1/gone/acknowledge', headers: as('operator'), payload: {} });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toEqual({ error: 'B-1/gone has nothing to acknowledge (normal)', code: 'GW_HTTP_CONFLICT' });
    expect(audit).toEqual([
      { who: 'operator-user', action: 'acknowledge', target: 'B-1/high', outcome: 'done', detail: 'seen' },
      { who: 'operator-user', action: 'acknowledge', target: 'B-1/gone', outcome: 'refused: B-1/gone has nothing to acknowledge (normal)' },
    ]);
    // Taking an alarm out of service when it already is: the engine answers nothing, the API 409.
    const again = await t.app.inject({
      method: 'POST',
      url: '/api/alarms/B-1/high/out-of-service',
      headers: as('admin'),
      payload: { comment: 'x' },
    });
    expect(again.json()).toEqual({ error: 'B-1/high is already out of service', code: 'GW_HTTP_CONFLICT' });
  });

  it('refuses a viewer with 403, an admin action without its comment with 400, and a shelve too long with 400', async () => {
    t = await pluginApp((app) => app.register(alarmsPlugin, { alarms, audit: { append: () => {} } }));
    const viewer = await t.app.inject({ method: 'POST', url: '/api/alarms/B-1/high/acknowledge', headers: as('viewer'), payload: {} });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json()).toMatchObject({ code: 'GW_HTTP_FORBIDDEN' });
    const operator = await t.app.inject({
      method: 'POST',
      url: '/api/alarms/B-1/high/out-of-service',
      headers: as('operator'),
      payload: { comment: 'x' },
    });
    expect(operator.statusCode).toBe(403);
    const noComment = await t.app.inject({ method: 'POST', url: '/api/alarms/B-1/high/out-of-service', headers: as('admin'), payload: {} });
    expect(noComment.statusCode).toBe(400);
    expect(noComment.json()).toMatchObject({ code: 'GW_HTTP_INVALID_REQUEST', error: expect.stringMatching(/comment/) });
    const long = await t.app.inject({
      method: 'POST',
      url: '/api/alarms/B-1/high/shelve',
      headers: as('operator'),
      payload: { duration_minutes: 2000 },
    });
    expect(long.json()).toMatchObject({ code: 'GW_HTTP_INVALID_REQUEST', error: expect.stringMatching(/duration_minutes/) });
    expect(calls).toEqual([]);
  });
});
