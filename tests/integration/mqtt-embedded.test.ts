// The default backbone: the embedded aedes broker, used by plain outside clients.
import { pino } from 'pino';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../config/errors.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { expectBoilerTelemetry } from '../helpers/contract.js';
import { LIMS_USER, loginAs, mqttUsersYaml, subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { testSite } from '../helpers/site.js';

const silent = pino({ level: 'silent' });

describe('embedded broker', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  const started = async (port: number, mqttExtra: string[] = []): Promise<Gateway> => {
    const gw = createGateway(testSite({ port, mqttExtra }), silent);
    await gw.start();
    cleanup.push(() => gw.stop());
    return gw;
  };
  const track = (s: Subscriber) => {
    cleanup.push(() => s.close());
    return s;
  };

  it('serves the telemetry contract to a plain MQTT client', async () => {
    const port = await freePort();
    const from = Date.now();
    const gw = await started(port);
    expect(gw.mqttUrl()).toBe(`mqtt://127.0.0.1:${port}`);
    const sub = track(await subscribe(`mqtt://127.0.0.1:${port}`, 'gw/#'));
    // Retained statuses reach a client that subscribes after the gateway started.
    const status = await sub.waitFor((m) => m.topic === 'gw/test-site/gateway/status');
    expect(status.retain).toBe(true);
    expect(JSON.parse(status.payload)).toMatchObject({ state: 'online' });
    const eqStatus = await sub.waitFor((m) => m.topic === 'gw/test-site/B-07/status');
    expect(JSON.parse(eqStatus.payload)).toMatchObject({ state: 'online' });
    const telemetry = await sub.waitFor((m) => m.topic === 'gw/test-site/B-07/telemetry');
    expect(telemetry.retain).toBe(false);
    expectBoilerTelemetry(telemetry.payload, { from, to: Date.now() });
  });

  it('carries messages between outside clients too (users allowed to)', async () => {
    const port = await freePort();
    await started(port, mqttUsersYaml([LIMS_USER]));
    const lims = track(await subscribe(`mqtt://127.0.0.1:${port}`, 'lims/#', loginAs(LIMS_USER)));
    const other = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, loginAs(LIMS_USER));
    cleanup.push(() => other.endAsync());
    await other.publishAsync('lims/orders', 'S-001', { qos: 1 });
    expect((await lims.waitFor((m) => m.topic === 'lims/orders')).payload).toBe('S-001');
  });

  it('asks every client for the configured user and password', async () => {
    const port = await freePort();
    await started(port, ['username: gateway', 'password: s3cret']);
    const url = `mqtt://127.0.0.1:${port}`;
    await expect(mqtt.connectAsync(url, { reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password|Not authorized/i);
    await expect(mqtt.connectAsync(url, { reconnectPeriod: 0, username: 'gateway', password: 'wrong' })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    const sub = track(await subscribe(url, 'gw/#', { username: 'gateway', password: 's3cret' }));
    await sub.waitFor((m) => m.topic.endsWith('/telemetry'));
  });

  it('refuses to start on a port in use, with a code and a hint', async () => {
    const port = await freePort();
    await started(port);
    const second = createGateway(testSite({ port }), silent);
    const err = await second.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'GW_ERR_BROKER_LISTEN' });
    expect((err as Error).message).toMatch(/127\.0\.0\.1:\d+: EADDRINUSE \(another broker runs there\? set MQTT_PORT or mqtt\.port\)/);
  });
});
