// The mqtt-in driver through a real gateway, against real Mosquittos: devices publish JSON and text,
// the gateway turns it into readings (values, units, scaling, source times) and refuses what does
// not fit (malformed, oversized, wrong type) into bad readings with reasons and counters.
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import type { Reading } from '../../drivers/types.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { startMosquitto, type RunningMosquitto } from '../helpers/processes.js';

/** The gateway's warnings and errors, as JSON lines. */
const logs: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(line) });
const SITE = 'mqtt-in-site';
const SECURE_USER = { name: 'gateway', password: 'secure-broker-password' };

describe('mqtt-in driver', () => {
  let plain: RunningMosquitto;
  let secure: RunningMosquitto;
  /** A broker that refuses the subscription of one topic, as a broker's permissions would. */
  let guarded: { broker: Aedes; server: Server; url: string };
  let gw: Gateway;
  let device: MqttClient;
  let secureDevice: MqttClient;
  let telemetry: Subscriber;
  const readings: Reading[] = [];

  /** Resolves with the first reading (from `since` on) that matches. */
  const reading = async (match: (r: Reading) => boolean, what: string, since = 0, timeoutMs = 8000): Promise<Reading> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = readings.slice(since).find(match);
      if (found) return found;
      if (Date.now() > until)
        throw new Error(
          `No ${what} within ${timeoutMs} ms; last: ${JSON.stringify(readings.slice(-4).map((r) => [r.equipment, r.point, r.value, r.quality, r.reason]))}`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const stats = (connection = 'sensors') => gw.driverStats().find((d) => d.connection === connection)!.stats;
  /** Polls `ok` until it holds, up to 8 s. */
  const until = async (ok: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`No ${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** When the retained messages were published, before the gateway started. */
  let retainedAt = 0;

  beforeAll(async () => {
    [plain, secure] = await Promise.all([
      startMosquitto(),
      startMosquitto({ tls: true, users: { [SECURE_USER.name]: SECURE_USER.password } }),
    ]);
    const broker = await Aedes.createBroker({
      // No grant (null) is a refusal: the SUBACK carries 0x80 for it.
      authorizeSubscribe: (_client, sub, done) => done(null, sub.topic.startsWith('denied/') ? (null as never) : sub),
    });
    const server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    guarded = { broker, server, url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}` };
    // Retained messages the broker has before the gateway subscribes, as after any reconnect: one
    // without a time, one with a recent time, one with an hour-old time.
    const publisher = await mqtt.connectAsync(plain.url);
    retainedAt = Date.now();
    await publisher.publishAsync('retained/no-time', JSON.stringify({ value: 7 }), { retain: true, qos: 1 });
    await publisher.publishAsync('retained/timed', JSON.stringify({ value: 8, time: retainedAt }), { retain: true, qos: 1 });
    await publisher.publishAsync('retained/old', JSON.stringify({ value: 9, time: retainedAt - 3_600_000 }), { retain: true, qos: 1 });
    await publisher.endAsync();
    const yaml = [
      'version: 1',
      `gateway: { id: gw-mqtt-in, site: ${SITE}, data_dir: ${mkdtempSync(join(tmpdir(), 'gw-data-'))} }`,
      `mqtt: { broker: '${plain.url}', reconnect: { initial_delay: 200ms, max_delay: 1s } }`,
      'simulators:',
      `  - { type: mqtt-sensor-publisher, port: ${plain.port}, sensor_topic: sim/sensor, interval: 100ms, fault: malformed, fault_every: 3 }`,
      'connections:',
      `  - { id: sensors, type: mqtt-in, url: '${plain.url}', reconnect: { initial_delay: 200ms, max_delay: 500ms } }`,
      `  - id: secure`,
      `    type: mqtt-in`,
      `    url: '${secure.url}'`,
      `    ca: ${secure.caFile}`,
      `    username: ${SECURE_USER.name}`,
      `    password: ${SECURE_USER.password}`,
      '    protocol_version: 5',
      `  - { id: guarded, type: mqtt-in, url: '${guarded.url}' }`,
      'equipment:',
      '  - id: BR-ENV',
      '    category: other',
      '    connection: sensors',
      '    topic: zigbee2mqtt/boiler-room-sensor',
      '    timestamp: { path: last_seen, format: iso8601 }',
      '    points:',
      '      - { name: temperature, unit: °C }',
      '      - { name: humidity, unit: "%" }',
      '      - { name: occupancy, type: boolean }',
      '  - id: FP-1',
      '    category: other',
      '    connection: sensors',
      '    topic: tele/+/SENSOR',
      '    points:',
      '      - { name: power, path: ENERGY.Power, unit: W }',
      '      - { name: energy_total, path: "ENERGY.Total", scale: 1000, unit: Wh }',
      '      - { name: phase_2, path: "ENERGY.Voltage[1]", unit: V }',
      '      - { name: relay, topic: stat/feed-pump/POWER, pattern: "^(ON|OFF)$", type: boolean }',
      '  - id: FR-2',
      '    category: other',
      '    connection: sensors',
      '    topic: vendor/fridges/FR-2',
      '    timestamp: { path: ts, format: epoch_ms }',
      '    quality: { path: status, good: [ok], uncertain: [defrost], bad: [sensor_fault] }',
      '    stale_after: 800ms',
      '    points:',
      '      - { name: temperature, path: "probes[0].t", scale: 0.1, offset: -0.5, unit: °C }',
      '  - id: SIM-ENV',
      '    category: other',
      '    connection: sensors',
      '    topic: sim/sensor',
      '    points: [{ name: temperature, unit: °C }, { name: linkquality }]',
      '  - id: SEC-1',
      '    category: other',
      '    connection: secure',
      '    topic: secure/meter',
      '    points: [{ name: value, unit: kW }]',
      '  - id: RET-1',
      '    category: other',
      '    connection: sensors',
      '    topic: retained/+',
      '    points:',
      '      - { name: no_time, path: value, topic: retained/no-time }',
      '      - { name: timed, path: value, topic: retained/timed, timestamp: { path: time, format: epoch_ms } }',
      '      - { name: old, path: value, topic: retained/old, timestamp: { path: time, format: epoch_ms } }',
      // Patterns that backtrack exponentially on input that nearly matches; the schema lets them through.
      '  - id: PAT-1',
      '    category: other',
      '    connection: sensors',
      '    topic: plain/hostile',
      '    points:',
      '      - { name: words, pattern: "^(\\\\w+\\\\s?)+$", type: string }',
      '      - { name: same, pattern: "^(a|a)*$", type: string }',
      '  - id: DENIED-1',
      '    category: other',
      '    connection: guarded',
      '    topic: denied/meter',
      '    points: [{ name: value }]',
      '  - id: ALLOWED-1',
      '    category: other',
      '    connection: guarded',
      '    topic: allowed/meter',
      '    points: [{ name: value }]',
      '',
    ].join('\n');
    gw = createGateway(parseSite(yaml, { env: {} }), logger);
    gw.pipeline.onBatch((batch) => readings.push(...batch));
    await gw.start();
    telemetry = await subscribe(plain.url, `gw/${SITE}/+/telemetry`);
    device = await mqtt.connectAsync(plain.url, { reconnectPeriod: 200 });
    secureDevice = await mqtt.connectAsync(secure.url, {
      ca: (await import('node:fs')).readFileSync(secure.caFile!),
      username: SECURE_USER.name,
      password: SECURE_USER.password,
    });
    // The subscriptions are made once the driver is connected: wait for them before publishing.
    const until = Date.now() + 10_000;
    while ((stats().connected !== 1 || stats('guarded').connected !== 1) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
  });

  afterAll(async () => {
    await telemetry?.close();
    await device?.endAsync(true);
    await secureDevice?.endAsync(true);
    await gw?.stop();
    await Promise.all([plain?.stop(), secure?.stop()]);
    if (guarded) {
      await new Promise((r) => guarded.server.close(r));
      await new Promise<void>((r) => guarded.broker.close(() => r()));
    }
  });

  it('turns JSON and text payloads into readings with values, units, scaling and source times', async () => {
    const lastSeen = '2026-05-01T12:00:00.500+02:00';
    await device.publishAsync(
      'zigbee2mqtt/boiler-room-sensor',
      JSON.stringify({ temperature: 27.4, humidity: '51.5', occupancy: 'ON', battery: 97, last_seen: lastSeen }),
    );
    const temperature = await reading((r) => r.equipment === 'BR-ENV' && r.point === 'temperature', 'BR-ENV temperature');
    expect(temperature).toMatchObject({ value: 27.4, quality: 'good', sourceTs: Date.parse(lastSeen) });
    expect(temperature.reason).toBeUndefined();
    expect(await reading((r) => r.equipment === 'BR-ENV' && r.point === 'humidity', 'humidity')).toMatchObject({ value: 51.5 });
    expect(await reading((r) => r.equipment === 'BR-ENV' && r.point === 'occupancy', 'occupancy')).toMatchObject({ value: true });

    // A wildcard filter, nested paths, an array index, scaling; the relay on a topic of its own, as text.
    await device.publishAsync(
      'tele/feed-pump/SENSOR',
      JSON.stringify({ ENERGY: { Power: 352, Total: 1520.25, Voltage: [229, 231, 230] } }),
    );
    await device.publishAsync('stat/feed-pump/POWER', 'OFF');
    expect(await reading((r) => r.point === 'power', 'power')).toMatchObject({ equipment: 'FP-1', value: 352, quality: 'good' });
    expect(await reading((r) => r.point === 'energy_total', 'energy')).toMatchObject({ value: 1_520_250 });
    expect(await reading((r) => r.point === 'phase_2', 'phase 2')).toMatchObject({ value: 231 });
    expect(await reading((r) => r.point === 'relay', 'relay')).toMatchObject({ equipment: 'FP-1', value: false, quality: 'good' });

    // Through the gateway to its MQTT telemetry, with the unit-bearing values and the source time.
    const message = await telemetry.waitFor((m) => m.topic === `gw/${SITE}/BR-ENV/telemetry`, 5000, 'BR-ENV telemetry');
    const body = JSON.parse(message.payload) as {
      values: Record<string, unknown>;
      quality: Record<string, string>;
      times?: Record<string, number>;
    };
    expect(body.values).toMatchObject({ temperature: 27.4, humidity: 51.5, occupancy: true });
    expect(body.quality.temperature).toBe('good');
    // The source time is in the past (two hours' zone offset on a fixed date), so the message carries it.
    expect(body.times?.temperature).toBe(Date.parse(lastSeen));

    // Over TLS, with a user name and password.
    await secureDevice.publishAsync('secure/meter', JSON.stringify({ value: 12.5 }));
    expect(await reading((r) => r.equipment === 'SEC-1', 'reading over TLS')).toMatchObject({ value: 12.5, quality: 'good' });
  });

  it('refuses malformed, oversized and wrong-type payloads: bad readings with reasons, counted, never a good value', async () => {
    const before = { ...stats() };
    const cases: Array<{ payload: string; reason: RegExp; counter: string }> = [
      { payload: '{"temperature": 2', reason: /^payload is not JSON/, counter: 'parseErrors' },
      {
        payload: JSON.stringify({ temperature: 26, padding: 'x'.repeat(70 * 1024) }),
        reason: /^payload too large \(\d+ bytes, at most 65536\)$/,
        counter: 'refused',
      },
      { payload: JSON.stringify({ temperature: 'warm' }), reason: /^not a number: "warm"$/, counter: 'typeErrors' },
      { payload: JSON.stringify({ temperature: null }), reason: /^no value/, counter: 'typeErrors' },
      // Nesting deeper than a stack can write out again: refused like any other list.
      { payload: `{"temperature": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`, reason: /^not a number: a list$/, counter: 'typeErrors' },
    ];
    for (const c of cases) {
      const since = readings.length;
      await device.publishAsync('zigbee2mqtt/boiler-room-sensor', c.payload);
      const r = await reading((x) => x.equipment === 'BR-ENV' && x.point === 'temperature', `refusal ${c.reason}`, since);
      expect(r).toMatchObject({ value: null, quality: 'bad' });
      expect(r.reason).toMatch(c.reason);
      // Nothing of that message is good.
      const sameMessage = readings.slice(since).filter((x) => x.equipment === 'BR-ENV' && x.ts === r.ts);
      for (const x of sameMessage) expect(x.quality, `${x.point}: ${x.reason}`).not.toBe('good');
    }
    const after = stats();
    expect(after.parseErrors! - before.parseErrors!).toBeGreaterThanOrEqual(1);
    expect(after.refused! - before.refused!).toBe(1);
    expect(after.typeErrors! - before.typeErrors!).toBeGreaterThanOrEqual(3);
    expect(after.errors).toBe(0);

    // A packet whose header announces more than the bound is not buffered at all: the connection is
    // closed (counted as refused), made again, and the next message is read.
    const beforeBig = stats().refused!;
    const reconnectsBefore = stats().reconnects!;
    await device.publishAsync('zigbee2mqtt/boiler-room-sensor', JSON.stringify({ temperature: 1, padding: 'x'.repeat(300 * 1024) }));
    await until(() => stats().refused! > beforeBig, 'the oversized packet refused');
    const sinceBig = readings.length;
    await until(async () => {
      await device.publishAsync('zigbee2mqtt/boiler-room-sensor', JSON.stringify({ temperature: 22.5 }));
      return readings.slice(sinceBig).some((r) => r.equipment === 'BR-ENV' && r.point === 'temperature' && r.value === 22.5);
    }, 'a reading after the connection was made again');
    expect(readings.slice(sinceBig).filter((r) => r.equipment === 'BR-ENV' && r.point === 'temperature' && r.value === 1)).toEqual([]);
    // Closed at the header, not read whole and refused afterwards: the connection was made again.
    expect(stats().reconnects).toBeGreaterThan(reconnectsBefore);

    // A device status mapped to bad drops the value; a source time that cannot be read makes it uncertain.
    let since = readings.length;
    await device.publishAsync('vendor/fridges/FR-2', JSON.stringify({ probes: [{ t: 45 }], status: 'sensor_fault', ts: Date.now() }));
    expect(await reading((r) => r.equipment === 'FR-2', 'fridge fault', since)).toMatchObject({
      value: null,
      quality: 'bad',
      reason: 'device status "sensor_fault"',
    });
    since = readings.length;
    await device.publishAsync('vendor/fridges/FR-2', JSON.stringify({ probes: [{ t: 45 }], status: 'ok', ts: 'now' }));
    const uncertain = await reading((r) => r.equipment === 'FR-2', 'fridge without a time', since);
    expect(uncertain).toMatchObject({ value: 4, quality: 'uncertain' });
    expect(uncertain.reason).toMatch(/not a epoch_ms time/);
    expect(uncertain.sourceTs).toBeUndefined();

    // The publisher simulator's cut-off messages (every third) are refused the same way; the others read.
    since = readings.length;
    await reading((r) => r.equipment === 'SIM-ENV' && r.quality === 'good' && typeof r.value === 'number', 'simulated reading', since);
    await reading(
      (r) => r.equipment === 'SIM-ENV' && r.quality === 'bad' && /^payload is not JSON/.test(r.reason ?? ''),
      'simulated malformed',
      since,
    );
  });

  it('takes a retained message the broker resends on subscribing as uncertain, unless its source time is recent', async () => {
    const noTime = await reading((r) => r.equipment === 'RET-1' && r.point === 'no_time', 'retained without a time');
    expect(noTime).toMatchObject({ value: 7, quality: 'uncertain', reason: 'retained by the broker: of unknown age' });
    expect(noTime.sourceTs).toBeUndefined();
    expect(await reading((r) => r.equipment === 'RET-1' && r.point === 'timed', 'retained with a recent time')).toMatchObject({
      value: 8,
      quality: 'good',
      sourceTs: retainedAt,
    });
    const old = await reading((r) => r.equipment === 'RET-1' && r.point === 'old', 'retained with an old time');
    expect(old).toMatchObject({
      value: 9,
      quality: 'uncertain',
      reason: expect.stringMatching(/^retained by the broker: source time 36\d\d s old$/),
    });
    expect(old.sourceTs).toBeUndefined();
    expect(stats().retained).toBeGreaterThanOrEqual(3);
    // The same message published live is the device speaking now: good.
    const since = readings.length;
    await device.publishAsync('retained/no-time', JSON.stringify({ value: 10 }));
    expect(await reading((r) => r.point === 'no_time', 'live message', since)).toMatchObject({ value: 10, quality: 'good' });
  });

  it('stops a pattern that backtracks too long on a hostile payload, and keeps serving other messages', async () => {
    const before = stats().patternTimeouts!;
    const since = readings.length;
    const started = Date.now();
    // 30 bytes that nearly match both patterns: unbounded, either would block the gateway for minutes.
    await device.publishAsync('plain/hostile', `${'a'.repeat(29)}!`);
    await device.publishAsync('zigbee2mqtt/boiler-room-sensor', JSON.stringify({ temperature: 23.5, last_seen: new Date().toISOString() }));
    for (const point of ['words', 'same'])
      expect(await reading((r) => r.equipment === 'PAT-1' && r.point === point, point, since)).toMatchObject({
        value: null,
        quality: 'bad',
        reason: 'pattern took over 50 ms',
      });
    expect(await reading((r) => r.equipment === 'BR-ENV' && r.value === 23.5, 'the next message', since)).toMatchObject({
      quality: 'good',
    });
    // Two limits of 50 ms and the round trips; generous for a slow machine, far below the unbounded minutes.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stats().patternTimeouts! - before).toBe(2);
    // An ordinary payload still matches.
    await device.publishAsync('plain/hostile', 'aaa');
    expect(await reading((r) => r.equipment === 'PAT-1' && r.point === 'same' && r.quality === 'good', 'match', since)).toMatchObject({
      value: 'a',
    });
  });

  it('turns a device status of bad or uncertain into the quality of its points also in a message without the value', async () => {
    const ok = () => JSON.stringify({ probes: [{ t: 45 }], status: 'ok', ts: Date.now() });
    let since = readings.length;
    await device.publishAsync('vendor/fridges/FR-2', ok());
    await reading((r) => r.equipment === 'FR-2' && r.quality === 'good', 'good fridge reading', since);
    since = readings.length;
    await device.publishAsync('vendor/fridges/FR-2', JSON.stringify({ status: 'sensor_fault' }));
    expect(await reading((r) => r.equipment === 'FR-2' && r.reason !== 'stale', 'fault without a value', since)).toMatchObject({
      value: null,
      quality: 'bad',
      reason: 'device status "sensor_fault"',
    });
    await device.publishAsync('vendor/fridges/FR-2', ok());
    since = readings.length;
    await device.publishAsync('vendor/fridges/FR-2', JSON.stringify({ status: 'defrost' }));
    expect(await reading((r) => r.equipment === 'FR-2' && r.reason !== 'stale' && r.quality !== 'good', 'defrost', since)).toMatchObject({
      value: 4,
      quality: 'uncertain',
      reason: 'device status "defrost"',
    });
  });

  it('refuses an implausible source time (seconds given as milliseconds): uncertain, without the source time', async () => {
    const since = readings.length;
    await device.publishAsync(
      'vendor/fridges/FR-2',
      JSON.stringify({ probes: [{ t: 45 }], status: 'ok', ts: Math.floor(Date.now() / 1000) }),
    );
    const r = await reading((x) => x.equipment === 'FR-2' && x.reason !== 'stale', 'fridge with a time in seconds', since);
    expect(r).toMatchObject({
      value: 4,
      quality: 'uncertain',
      reason: expect.stringMatching(/^implausible epoch_ms time \d+: before 2000-01-01$/),
    });
    expect(r.sourceTs).toBeUndefined();
  });

  it('detects a subscription the broker refuses: counted, its points bad, the others read', async () => {
    const denied = await reading((r) => r.equipment === 'DENIED-1', 'refused subscription');
    expect(denied).toMatchObject({ value: null, quality: 'bad', reason: 'subscription refused by the broker (code 0x80)' });
    expect(stats('guarded').subscribeRefused).toBe(1);
    const meter = await mqtt.connectAsync(guarded.url);
    try {
      await meter.publishAsync('allowed/meter', JSON.stringify({ value: 3 }));
      expect(await reading((r) => r.equipment === 'ALLOWED-1', 'allowed reading')).toMatchObject({ value: 3, quality: 'good' });
    } finally {
      await meter.endAsync(true);
    }
  });

  it('warns at start about equipment none of whose points has stale_after, and only about those', () => {
    const warned = logs
      .map((l) => JSON.parse(l) as { equipment?: string; msg: string })
      .filter((l) => l.msg.startsWith('mqtt-in equipment has no stale_after'))
      .map((l) => l.equipment);
    expect(warned).toContain('BR-ENV');
    expect(warned).toContain('RET-1');
    expect(warned).not.toContain('FR-2');
    expect(new Set(warned).size).toBe(warned.length);
  });

  it('makes a point that stays silent longer than stale_after bad with reason "stale"', async () => {
    const since = readings.length;
    const ts = Date.now() - 1000;
    await device.publishAsync('vendor/fridges/FR-2', JSON.stringify({ probes: [{ t: 42 }], status: 'defrost', ts }));
    const fresh = await reading((r) => r.equipment === 'FR-2', 'fridge reading', since);
    expect(fresh).toMatchObject({ value: 3.7, quality: 'uncertain', reason: 'device status "defrost"', sourceTs: ts });
    const stale = await reading((r) => r.equipment === 'FR-2' && r.reason === 'stale', 'stale fridge', since, 5000);
    expect(stale).toMatchObject({ value: null, quality: 'bad' });
    // Between 800 ms and 800 ms plus a check interval (160 ms) and some slack for a slow machine.
    expect(stale.ts - fresh.ts).toBeGreaterThanOrEqual(800);
    expect(stale.ts - fresh.ts).toBeLessThan(2500);
    expect(stats().stale).toBeGreaterThanOrEqual(1);
  });

  it('marks its points bad while the broker is away and reads again once it is back', async () => {
    const reconnects = stats().reconnects!;
    const since = readings.length;
    await plain.halt!();
    const lost = await reading(
      (r) => r.equipment === 'BR-ENV' && /^not connected to the broker/.test(r.reason ?? ''),
      'connection loss',
      since,
    );
    expect(lost).toMatchObject({ value: null, quality: 'bad' });
    await plain.restart!();
    const until = Date.now() + 10_000;
    while (stats().connected !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(stats().reconnects).toBe(reconnects + 1);
    // The subscriptions are made again on the new session: the device's next message is read.
    const back = readings.length;
    const device2 = await mqtt.connectAsync(plain.url);
    try {
      for (let i = 0; i < 50; i++) {
        await device2.publishAsync(
          'zigbee2mqtt/boiler-room-sensor',
          JSON.stringify({ temperature: 30 + i, last_seen: new Date().toISOString() }),
        );
        if (readings.slice(back).some((r) => r.equipment === 'BR-ENV' && r.quality === 'good')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await reading((r) => r.equipment === 'BR-ENV' && r.quality === 'good', 'reading after the restart', back)).toMatchObject({
        point: 'temperature',
      });
    } finally {
      await device2.endAsync(true);
    }
  });
});
