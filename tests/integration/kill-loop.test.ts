// kill -9 at many random instants: the gateway process is killed again and again while rules churn,
// lab results arrive and the platform takes what it is sent. Whatever instant the kill hits (a commit,
// a delivery, a result half-stored, a start), every alarm event that was published and every lab
// result the analyzer was told was taken reaches the platform, once after de-duplication, and each
// risk level change is sent under its own number exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createAstmAnalyzer } from '../../drivers/astm/simulator.js';
import { incidentOf } from '../../gateway/platform/contract.js';
import { createPlatformInbox } from '../../gateway/platform/inbox.js';
import { Outbox } from '../../gateway/platform/outbox.js';
import { GatewayStore, STORE_FILE } from '../../gateway/store.js';
import type { AlarmEvent } from '../../rules/types.js';
import { CLI, ROOT } from '../helpers/cli.js';
import { retained, subscribe } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';
import { BOILER_POINTS } from '../helpers/site.js';

const SECRET = 'kill-loop-secret-0123456789';
const KILLS = 12;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('kill -9 at random instants', () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await Promise.resolve(cleanup.pop()!()).catch(() => undefined);
  });

  it(`loses no alarm event and no lab result over ${KILLS} kills`, async () => {
    const mosquitto = inject('mosquitto');
    const site = `kill-loop-${Date.now()}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-kill-loop-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const inboxPort = await freePort();
    const astmPort = await freePort();
    const file = join(dataDir, 'site.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        `gateway: { id: ${site}, site: ${site}, data_dir: ${dataDir} }`,
        'mqtt:',
        `  broker: ${mosquitto.url}`,
        '  reconnect: { initial_delay: 200ms, max_delay: 1s }',
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        '  timeout: 2s',
        '  retry: { initial_delay: 200ms, max_delay: 1s }',
        'rules:',
        // The simulated boiler's pressure wanders around 1.25 MPa: these raise and clear every few polls.
        ...[1.22, 1.24, 1.25, 1.26, 1.28].map(
          (t, k) => `  - { id: p${k}, equipment: B-07, when: steam_pressure > ${t}, level: yellow, message: "Pressure above ${t}" }`,
        ),
        'connections:',
        '  - { id: sim, type: sim, seed: 5 }',
        `  - { id: lab, type: astm-tcp, port: ${astmPort} }`,
        'equipment:',
        `  - { id: B-07, code: "10003101012019000117", connection: sim, model: steam-boiler, poll_interval: 100ms, points: [${BOILER_POINTS.map((p) => `{ name: ${p} }`).join(', ')}] }`,
        '  - { id: LA-1, category: lab_analyzer, connection: lab }',
        '',
      ].join('\n'),
    );
    const inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    // What the gateway published, seen from outside it: every event there was committed before.
    const published = await subscribe(mosquitto.url, `gw/${site}/+/alarms`, { clean: true });
    cleanup.push(() => published.close());
    const analyzer = createAstmAnalyzer({
      type: 'astm-analyzer',
      host: '127.0.0.1',
      port: astmPort,
      name: 'ChemAnalyzer',
      interval: 200,
      samples: 2,
      seed: 9,
    });
    await analyzer.start();
    cleanup.push(() => analyzer.stop());

    let child: ChildProcess | undefined;
    cleanup.push(() => child?.kill('SIGKILL'));
    const run = () => (child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-c', file], { cwd: ROOT, stdio: 'ignore' }));
    const kill = async () => {
      const exited = new Promise((r) => child!.once('exit', r));
      child!.kill('SIGKILL');
      await exited;
    };
    // Every other kill hits a start (any instant of its first seconds); the others come at a random
    // instant after that run published its first alarm event, among commits and deliveries.
    const seed = Date.now() % 100_000;
    let state = seed;
    const random = () => (state = (state * 48_271) % 2_147_483_647) / 2_147_483_647;
    console.log(`kill-loop seed ${seed}`);
    let busyRuns = 0;
    for (let k = 0; k < KILLS; k++) {
      run();
      if (k % 2 === 0) {
        await sleep(300 + random() * 3000);
      } else {
        const seen = published.messages.length;
        await until(`run ${k} to publish an alarm event`, () => published.messages.length > seen, 30_000);
        busyRuns++;
        await sleep(random() * 2000);
      }
      await kill();
    }
    expect(busyRuns).toBe(KILLS / 2);
    run();
    // The last run goes on until it has published and captured more, then everything must arrive.
    const before = { events: published.messages.length, results: analyzer.sent.length };
    await until('the last run to publish alarm events', () => published.messages.length >= before.events + 5, 30_000);
    await until('the last run to take lab results', () => analyzer.sent.length >= before.results + 2, 30_000);
    const events = () => published.messages.map((m) => JSON.parse(m.payload) as AlarmEvent);
    const expectedIncidents = () =>
      new Set(
        events()
          .filter((e) => incidentOf(e, undefined, site) !== undefined)
          .map((e) => e.eventId),
      );
    const arrived = () => new Set(inbox.incidents.map((i) => i.eventId));
    const resultKey = (r: { sampleId: string; analyte: string }) => `${r.sampleId}/${r.analyte}`;
    await until('every published incident event at the platform', () => [...expectedIncidents()].every((id) => arrived().has(id)), 60_000);
    await until(
      'every acknowledged lab result at the platform',
      () => analyzer.sent.every((r) => inbox.results.some((x) => resultKey(x) === resultKey(r))),
      60_000,
    );
    // Nothing left open that is not: the platform's open incidents are the gateway's active alarms.
    const activeIncidents = async () => {
      const text = await retained(mosquitto.url, `gw/${site}/alarms/active`);
      const list = text ? (JSON.parse(text) as { alarms: Array<{ incidentId: string; state: string }> }).alarms : [];
      return list
        .filter((a) => a.state !== 'out_of_service')
        .map((a) => a.incidentId)
        .sort();
    };
    const openAtPlatform = () =>
      inbox
        .openIncidents(100_000)
        .map((i) => i.incidentId)
        .sort();
    let agreed = false;
    for (let k = 0; k < 100 && !agreed; k++) {
      agreed = JSON.stringify(await activeIncidents()) === JSON.stringify(openAtPlatform());
      if (!agreed) await sleep(100);
    }
    if (!agreed) expect(openAtPlatform()).toEqual(await activeIncidents());
    await kill();

    expect(expectedIncidents().size).toBeGreaterThan(KILLS);
    expect(analyzer.sent.length).toBeGreaterThan(0);
    // Risk changes: what the platform took and what the outbox still holds are each equipment's
    // changes 1..n as its persisted state counts them, once each, every one starting where the one before ended,
    // all under the same store epoch across the kill loop.
    const store = new GatewayStore(join(dataDir, STORE_FILE));
    const outbox = new Outbox(store);
    const held = outbox.list('pending').map((r) => JSON.parse(r.incident) as { schema: string });
    const risk = new Map<string, { n: number; from: string; to: string }>();
    const epoch = store.epoch();
    const prefix = (equipment: string) => `risk-${site}-${epoch}-${equipment}-`;
    for (const b of [...inbox.risks, ...held.filter((x) => x.schema === 'gw.risk.v1')] as Array<(typeof inbox.risks)[number]>) {
      expect(b.eventId.startsWith(prefix(b.equipment.id)), b.eventId).toBe(true);
      risk.set(b.eventId, { n: Number(b.eventId.slice(prefix(b.equipment.id).length)), from: b.previousLevel, to: b.level });
    }
    const states = store.loadRisk() as Map<string, { level: string; changes: number }>;
    outbox.close();
    store.close();
    expect(states.get('B-07')?.changes).toBeGreaterThan(0);
    for (const [equipment, state] of states) {
      const changes = [...risk]
        .filter(([id]) => id.startsWith(prefix(equipment)))
        .map(([, c]) => c)
        .sort((a, b) => a.n - b.n);
      expect(changes.map((c) => c.n)).toEqual(Array.from({ length: state.changes }, (_, k) => k + 1));
      changes.forEach((c, k) => expect(c.from).toBe(k === 0 ? 'blue' : changes[k - 1]!.to));
      if (changes.length > 0) expect(changes.at(-1)!.to).toBe(state.level);
    }
    // Once each: no event or result came twice under two ids, and seqs were never reused.
    const seqs = [...inbox.incidents, ...inbox.results, ...inbox.risks].map((x) => x.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(new Set(inbox.results.map(resultKey)).size).toBe(inbox.results.length);
  }, 240_000);
});
