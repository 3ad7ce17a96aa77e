// The embedded broker's decisions, without a socket: who is loopback, what each role may subscribe
// to, receive and publish, and the publish bucket.
import { describe, expect, it } from 'vitest';
import {
  anonymousAllowed,
  anonymousFilters,
  filtersOverlap,
  FLOOD_WINDOW_MS,
  GATEWAY_GRANT,
  isLoopbackPeer,
  isValidTopicFilter,
  mayPublish,
  mayReceive,
  maySubscribe,
  PublishBucket,
  roleFilters,
  topicMatches,
  type Grant,
} from '../../../../gateway/mqtt/acl.js';
import { hashPassword, newMqttUser } from '../../../../gateway/mqtt/users.js';
import { ConfigError } from '../../../../config/errors.js';
import { testSite } from '../../../helpers/site.js';

const base = 'gw/site-1';
const grant = (role: 'reader' | 'lab' | 'writer'): Grant => ({
  name: role,
  gateway: false,
  subscribe: roleFilters(role, 'gw', 'site-1'),
  publish: [],
});
const custom: Grant = { name: 'lims', gateway: false, subscribe: ['lims/#'], publish: ['lims/orders/#', '#'] };

describe('peer addresses', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1'])('%s is loopback', (a) => {
    expect(isLoopbackPeer(a)).toBe(true);
    expect(anonymousAllowed('loopback', a)).toBe(true);
    expect(anonymousAllowed('off', a)).toBe(false);
  });
  it.each(['10.0.0.5', '192.168.1.20', '::ffff:10.0.0.5', 'fe80::1', '128.0.0.1', '1127.0.0.1', '::2', '', undefined])('%s is not', (a) => {
    expect(isLoopbackPeer(a)).toBe(false);
    expect(anonymousAllowed('loopback', a)).toBe(false);
  });
});

describe('topic filters', () => {
  it.each([
    ['#', true],
    ['a/+/b', true],
    ['a/#', true],
    ['+', true],
    ['a/b#', false],
    ['a/#/b', false],
    ['a+/b', false],
    ['', false],
  ])('%s valid: %s', (f, ok) => expect(isValidTopicFilter(f)).toBe(ok));

  it('matches as a broker does, $ topics apart', () => {
    expect(topicMatches('gw/+/x', 'gw/a/x')).toBe(true);
    expect(topicMatches('gw/#', 'gw')).toBe(true);
    expect(topicMatches('gw/+', 'gw/a/b')).toBe(false);
    expect(topicMatches('#', '$SYS/broker/clients')).toBe(false);
    expect(topicMatches('$SYS/#', '$SYS/x/new/clients')).toBe(true);
  });

  it('overlap', () => {
    expect(filtersOverlap('#', `${base}/+/telemetry`)).toBe(true);
    expect(filtersOverlap('gw/+/B-07/#', `${base}/+/telemetry`)).toBe(true);
    expect(filtersOverlap(`${base}/+/results`, `${base}/+/telemetry`)).toBe(false);
    expect(filtersOverlap('gw/site-1', 'gw/site-1/#')).toBe(true);
    expect(filtersOverlap('#', '$SYS/#')).toBe(false);
    expect(filtersOverlap('lims/#', 'gw/#')).toBe(false);
  });
});

describe('roles', () => {
  it('a reader subscribes to the site with # and receives telemetry, status and alarms, never lab results nor $SYS', () => {
    const r = grant('reader');
    for (const f of ['#', `${base}/#`, `${base}/B-07/telemetry`, `gw/+/+/status`, `${base}/alarms/active`])
      expect(maySubscribe(r, f), f).toBe(true);
    for (const f of [`${base}/+/results`, '$SYS/#', 'lims/#', 'gw/other-site/#']) expect(maySubscribe(r, f), f).toBe(false);
    for (const t of [
      `${base}/B-07/telemetry`,
      `${base}/B-07/status`,
      `${base}/B-07/alarms`,
      `${base}/alarms/active`,
      `${base}/alarms/health`,
      `${base}/gateway/status`,
    ])
      expect(mayReceive(r, t), t).toBe(true);
    for (const t of [`${base}/AN-1/results`, '$SYS/abc/new/clients', 'lims/orders', 'gw/other-site/B-07/telemetry'])
      expect(mayReceive(r, t), t).toBe(false);
  });

  it('an anonymous client on loopback reads the whole site, lab results included, and nothing else; it publishes nothing', () => {
    const a: Grant = { name: 'anonymous', gateway: false, subscribe: anonymousFilters('gw', 'site-1'), publish: [] };
    for (const t of [`${base}/B-07/telemetry`, `${base}/AN-1/results`, `${base}/alarms/active`, `${base}/gateway/status`])
      expect(mayReceive(a, t), t).toBe(true);
    for (const t of ['$SYS/abc/new/clients', 'lims/orders', 'gw/other-site/B-07/telemetry']) expect(mayReceive(a, t), t).toBe(false);
    expect(maySubscribe(a, '$SYS/#')).toBe(false);
    expect(mayPublish(a, 'lims/orders', base)).toBe(false);
  });

  it('a lab user reads results only; a writer telemetry and alarms, shared subscriptions included', () => {
    expect(maySubscribe(grant('lab'), `${base}/+/results`)).toBe(true);
    expect(mayReceive(grant('lab'), `${base}/B-07/telemetry`)).toBe(false);
    const w = grant('writer');
    expect(maySubscribe(w, `$share/influx/${base}/+/telemetry`)).toBe(true);
    expect(maySubscribe(w, `$share/influx/${base}/+/results`)).toBe(false);
    expect(maySubscribe(w, '$share//#')).toBe(false);
    expect(mayReceive(w, `${base}/B-07/alarms`)).toBe(true);
    expect(mayReceive(w, `${base}/B-07/status`)).toBe(false);
  });

  it('nobody but the gateway publishes under the site or $SYS, whatever its filters say; roles publish nothing', () => {
    for (const role of ['reader', 'lab', 'writer'] as const) expect(mayPublish(grant(role), 'lims/orders', base)).toBe(false);
    expect(mayPublish(custom, 'lims/orders/1', base)).toBe(true);
    expect(mayPublish(custom, 'anything/else', base)).toBe(true);
    for (const t of [`${base}/alarms/active`, `${base}/B-07/telemetry`, `${base}/gateway/status`, base, '$SYS/x/new/clients'])
      expect(mayPublish(custom, t, base), t).toBe(false);
    expect(mayPublish(custom, 'gw/site-10/x', base)).toBe(true);
    expect(mayPublish(GATEWAY_GRANT, `${base}/alarms/active`, base)).toBe(true);
    expect(maySubscribe(GATEWAY_GRANT, '$SYS/#')).toBe(true);
  });
});

describe('publish bucket', () => {
  it('lets a second of burst and then the rate through, drops the rest, and disconnects a client that keeps at it', () => {
    const bucket = new PublishBucket(10, 0);
    const verdicts = Array.from({ length: 15 }, () => bucket.take(0));
    expect(verdicts.filter((v) => v === 'ok')).toHaveLength(10);
    expect(verdicts.filter((v) => v === 'drop')).toHaveLength(5);
    expect(bucket.take(100)).toBe('ok'); // a tenth of a second brings one back
    // 10 s of the rate (100) dropped within FLOOD_WINDOW_MS: the next drop disconnects.
    let t = 200;
    let last = bucket.take(t);
    for (let i = 0; i < 95 && last !== 'disconnect'; i++) last = bucket.take(t);
    expect(last).toBe('drop');
    for (let i = 0; i < 10 && last !== 'disconnect'; i++) last = bucket.take(t);
    expect(last).toBe('disconnect');
    // A client that slows down again starts a new window.
    t += FLOOD_WINDOW_MS + 1000;
    expect(bucket.take(t)).toBe('ok');
  });
});

describe('new users', () => {
  it('makes a strong password and the site-file lines with its hash', () => {
    const u = newMqttUser('historian', 'reader');
    expect(u.password.length).toBeGreaterThanOrEqual(40);
    expect(u.hash).toBe(hashPassword(u.password));
    expect(u.yaml).toContain(`hash: "${u.hash}"`);
    expect(u.yaml).not.toContain(u.password);
    expect(newMqttUser('historian', 'reader').password).not.toBe(u.password);
    expect(() => newMqttUser('$gateway', 'reader')).toThrow(/not valid/);
    expect(() => newMqttUser('x', 'admin')).toThrow(/reader, lab, writer, custom/);
  });
});

describe('mqtt.users in the site file', () => {
  const problems = (mqttExtra: string[]): string[] => {
    try {
      testSite({ mqttExtra });
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };
  const hash = hashPassword('x');

  it('accepts users of every role, custom filters and a certificate-only user with a TLS ca', () => {
    expect(
      problems([
        'users:',
        `  - { name: a, role: reader, hash: "${hash}" }`,
        `  - { name: b, role: custom, hash: "${hash}", subscribe: ["lims/#"], publish: ["lims/+/orders"] }`,
        '  - { name: c, role: lab }',
        'tls: { port: 8883, cert: s.pem, key: s.key, ca: ca.pem, client_certificates: optional }',
      ]),
    ).toEqual([]);
  });

  it('reports every mistake with its path', () => {
    expect(
      problems([
        'users:',
        `  - { name: a, role: reader, hash: "${hash}" }`,
        `  - { name: a, role: admin, hash: "secret" }`,
        `  - { name: "$gateway", role: custom, hash: "${hash}", subscribe: ["a/#/b"], publish: ["x+"] }`,
        `  - { name: d, role: reader, hash: "${hash}", publish: ["x"] }`,
        '  - { name: e, role: reader }',
        'tls: { port: 8883, cert: s.pem, key: s.key, client_certificates: required }',
      ]),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^mqtt\.users\[1\]\.role: /),
        expect.stringMatching(/^mqtt\.users\[1\]\.hash: expected sha256:/),
        expect.stringMatching(/^mqtt\.users\[2\]\.name: expected a user name/),
        expect.stringMatching(/^mqtt\.users\[2\]\.subscribe\[0\]: expected an MQTT topic filter/),
        expect.stringMatching(/^mqtt\.users\[2\]\.publish\[0\]: expected an MQTT topic filter/),
        expect.stringMatching(/^mqtt\.users\[3\]\.role: only a custom user/),
        expect.stringMatching(/^mqtt\.tls\.client_certificates: client certificates need a ca/),
      ]),
    );
    expect(problems(['users:', `  - { name: a, role: reader, hash: "${hash}" }`, `  - { name: a, role: lab, hash: "${hash}" }`])).toEqual([
      expect.stringMatching(/^mqtt\.users\[1\]\.name: user "a" is listed twice/),
    ]);
    expect(problems(['users:', '  - { name: e, role: reader }'])).toEqual([
      expect.stringMatching(/^mqtt\.users\[0\]\.hash: a user without a hash can only log in by client certificate/),
    ]);
    expect(problems(['anonymous: everyone'])).toEqual([expect.stringMatching(/^mqtt\.anonymous: /)]);
  });
});
