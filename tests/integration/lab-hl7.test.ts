// HL7 v2 over MLLP, over real TCP: the project's analyzer simulator (GB18030, Chinese analyte names,
// control samples) sends to a real gateway, and each result reaches MQTT and the platform inbox once;
// hand-made frames split across packets, two in one packet, noise before VT, a bad message (AE), a
// duplicate control id (AA, taken once), an over-long message (AR) and a frame that never ends (the
// other connection goes on). The driver alone, with a store that fails: AR, and once the store works
// again the message sent again is taken, once; in connect mode the gateway dials the sender.
import net from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import iconv from 'iconv-lite';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSite } from '../../config/load.js';
import { createHl7Driver } from '../../drivers/hl7/driver.js';
import { parseMessage, type Segment } from '../../drivers/hl7/hl7-message.js';
import { frame, MllpReceiver } from '../../drivers/hl7/mllp.js';
import { hl7ConnectionSchema } from '../../drivers/hl7/schema.js';
import { createHl7Analyzer } from '../../drivers/hl7/simulator.js';
import type { LabResult } from '../../drivers/common/result.js';
import type { LabEvent } from '../../drivers/types.js';
import { createPlatformInbox, type PlatformInbox } from '../../gateway/platform/inbox.js';
import { createGateway, type Gateway } from '../../gateway/runtime.js';
import { ROOT } from '../helpers/cli.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { freePort } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
const SECRET = 'lab-secret-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** An ORU^R01 with one OBX per value, for sample `sample`. */
function oru(controlId: string, sample: string, values: Array<string | number>, extra: string[] = []): string {
  return [
    `MSH|^~\\&|Bench|LAB||GATEWAY|20261203101500+0800||ORU^R01|${controlId}|P|2.3.1`,
    `OBR|1||${sample}|CHEM|||20261203101000+0800`,
    ...values.map((v, k) => `OBX|${k + 1}|NM|A${k + 1}^Analyte ${k + 1}||${v}|mmol/L|1-2|N|||F`),
    ...extra,
    '',
  ].join('\r');
}

/** A sender over a raw socket: writes what it is given, however cut, and collects the ACKs (MSA-1, MSA-2, MSA-3). */
async function sender(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const receiver = new MllpReceiver({ maxMessageSize: 1 << 20, receiveTimeoutMs: 60_000 });
  const acks: Array<{ code: string; controlId: string; text: string; err: Segment | undefined; version: string }> = [];
  socket.on('data', (d: Buffer) => {
    for (const e of receiver.receive(d, Date.now())) {
      if (e.kind !== 'frame') continue;
      const m = parseMessage(e.bytes, 'utf-8');
      const msa = m.segments.find((s) => s.name === 'MSA')!;
      acks.push({
        code: msa.get(1),
        controlId: msa.get(2),
        text: msa.get(3),
        err: m.segments.find((s) => s.name === 'ERR'),
        version: m.version,
      });
    }
  });
  return {
    acks,
    socket,
    /** Writes the pieces one by one, a little apart, so that they arrive as separate packets. */
    async write(...pieces: Buffer[]) {
      for (const p of pieces) {
        socket.write(p);
        if (pieces.length > 1) await sleep(30);
      }
    },
    close: () => socket.destroy(),
  };
}

describe('lab results over HL7 v2 (MLLP)', () => {
  let gw: Gateway;
  let inbox: PlatformInbox;
  let sub: Subscriber;
  let hl7Port: number;
  const captured: LabResult[] = [];
  const cleanup: Array<() => Promise<unknown>> = [];
  const stats = () => gw.driverStats().find((d) => d.connection === 'hl7-1')!.stats;

  beforeAll(async () => {
    const inboxPort = await freePort();
    inbox = createPlatformInbox({ port: inboxPort, secret: SECRET, print: () => {} });
    await inbox.start();
    cleanup.push(() => inbox.stop());
    hl7Port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-hl7-'));
    const site = parseSite(
      [
        'version: 1',
        `gateway: { id: gw-test, site: test-site, data_dir: ${dataDir}, timezone: Asia/Shanghai }`,
        `mqtt: { port: ${await freePort()} }`,
        'platform:',
        `  url: http://127.0.0.1:${inboxPort}/`,
        `  secret: ${SECRET}`,
        '  retry: { initial_delay: 200ms, max_delay: 1s }',
        `connections: [{ id: hl7-1, type: hl7-mllp, port: ${hl7Port}, max_message_size: 64KiB }]`,
        'equipment:',
        '  - { id: LA-5, name: Chemistry analyzer (HL7), category: lab_analyzer, connection: hl7-1 }',
        '',
      ].join('\n'),
      { env: {} },
    );
    gw = createGateway(site, silent);
    cleanup.push(() => gw.stop());
    gw.results.onResults((r) => captured.push(...r));
    await gw.start();
    sub = await subscribe(gw.mqttUrl(), 'gw/test-site/LA-5/results');
    cleanup.push(() => sub.close());
  }, 30_000);

  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined);
  });

  it('the analyzer simulator (GB18030, controls, frames split): every result once on MQTT and at the platform, Chinese names intact', async () => {
    const analyzer = createHl7Analyzer({
      type: 'hl7-analyzer',
      host: '127.0.0.1',
      port: hl7Port,
      name: 'ChemHL7',
      version: '2.5.1',
      charset: 'gb18030',
      interval: 100,
      samples: 2,
      seed: 5,
      fault: 'split',
    });
    await analyzer.start();
    await until('three messages acknowledged', () => analyzer.messages() >= 3);
    await analyzer.stop();
    const sent = analyzer.sent.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort();
    // Two patient samples of three analytes and two control levels of GLU per message.
    expect(sent.length).toBeGreaterThanOrEqual(3 * 8);

    await until('every result on MQTT', () => sub.messages.length >= sent.length);
    const onMqtt = sub.messages.map((m) => JSON.parse(m.payload) as LabResult);
    expect(onMqtt.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort()).toEqual(sent);
    expect(new Set(onMqtt.map((r) => r.resultId)).size).toBe(sent.length);
    expect(onMqtt.find((r) => r.analyte === 'GLU' && r.sampleId.startsWith('S-'))!.raw).toContain('GLU^葡萄糖^L');
    expect(onMqtt.filter((r) => r.control).map((r) => r.sampleId.slice(0, 4))).toEqual(expect.arrayContaining(['QC1-', 'QC2-']));
    expect(onMqtt.filter((r) => r.control).every((r) => /^QC\d-/.test(r.sampleId))).toBe(true);

    await until('every result at the platform', () => inbox.results.length >= sent.length);
    expect(inbox.results.map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`).sort()).toEqual(sent);
    const validate = new Ajv().compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'platform-contract.schema.json'), 'utf8')) as object);
    for (const r of inbox.results) expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    expect(analyzer.stats()).toMatchObject({ ae: 0, ar: 0, resent: 0 });
    expect(stats()).toMatchObject({ errors: 0, rejected: 0, aborted: 0, garbageBytes: 0 });
  });

  it('the simulator faults: two messages in one packet, a bad message before each (AE), each sent twice (AA, taken once)', async () => {
    const analyzer = createHl7Analyzer({
      type: 'hl7-analyzer',
      host: '127.0.0.1',
      port: hl7Port,
      name: 'FaultHL7',
      version: '2.3.1',
      interval: 50,
      samples: 1,
      seed: 9,
      fault: 'two-in-one',
    });
    const before = captured.length;
    await analyzer.start();
    try {
      await until('two messages in one packet', () => analyzer.messages() >= 2);
      analyzer.fault('bad-message');
      await until('an AE', () => analyzer.stats().ae >= 1);
      analyzer.fault('duplicate');
      await until('a control id acknowledged twice', () => {
        const ids = analyzer.stats().acknowledged;
        return ids.length > new Set(ids).size;
      });
    } finally {
      await analyzer.stop();
    }
    const acknowledged = analyzer.stats().acknowledged;
    // The duplicate fault's message was acknowledged twice, under its one control id.
    expect(acknowledged.length).toBeGreaterThan(new Set(acknowledged).size);
    await until('the results captured', () => captured.length - before >= analyzer.sent.length);
    await sleep(200);
    expect(
      captured
        .slice(before)
        .map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`)
        .sort(),
    ).toEqual(analyzer.sent.map((r) => `${r.sampleId}/${r.analyte}=${r.value}`).sort());
    expect(analyzer.stats()).toMatchObject({ ar: 0, resent: 0 });
  });

  it('a frame in pieces (VT alone, FS apart from CR), two in one packet, noise before VT: each answered AA in order, once', async () => {
    const before = captured.length;
    const garbage = stats().garbageBytes!;
    const s = await sender(hl7Port);
    cleanup.push(async () => s.close());
    const one = frame(Buffer.from(oru('SPLIT-1', 'P-1', [1.5, 1.6])));
    await s.write(one.subarray(0, 1), one.subarray(1, 40), one.subarray(40, one.length - 1), one.subarray(one.length - 1));
    await until('the ACK of the split message', () => s.acks.length === 1);
    expect(s.acks[0]).toMatchObject({ code: 'AA', controlId: 'SPLIT-1', version: '2.3.1' });

    await s.write(Buffer.concat([frame(Buffer.from(oru('PAIR-1', 'P-2', [1.1]))), frame(Buffer.from(oru('PAIR-2', 'P-3', [1.2])))]));
    await until('both ACKs', () => s.acks.length === 3);
    expect(s.acks.slice(1).map((a) => `${a.code} ${a.controlId}`)).toEqual(['AA PAIR-1', 'AA PAIR-2']);

    // This one's times have no offset: they are in the site's time zone (UTC+8), 10:10 there.
    await s.write(Buffer.concat([Buffer.from('\r\nhello?\r\n'), frame(Buffer.from(oru('NOISE-1', 'P-4', [1.3]).replaceAll('+0800', '')))]));
    await until('the ACK after the noise', () => s.acks.length === 4);
    expect(s.acks[3]).toMatchObject({ code: 'AA', controlId: 'NOISE-1' });
    await until('the noise counted', () => stats().garbageBytes! - garbage === 10);
    expect(captured.slice(before).map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`)).toEqual([
      'P-1/A1=1.5',
      'P-1/A2=1.6',
      'P-2/A1=1.1',
      'P-3/A1=1.2',
      'P-4/A1=1.3',
    ]);
    expect(captured.slice(before).map((r) => r.resultAt)).toEqual(Array(5).fill('2026-12-03T02:10:00.000Z'));
  });

  it('a bad message is answered AE with the reason and the place; a duplicate control id is answered AA and taken once, one reused for other results takes them', async () => {
    const before = captured.length;
    const errors = stats().errors!;
    const duplicates = stats().duplicates!;
    const s = await sender(hl7Port);
    cleanup.push(async () => s.close());
    await s.write(frame(Buffer.from(oru('BAD-1', 'P-9', [1.0, 'high']))));
    await until('the AE', () => s.acks.length === 1);
    expect(s.acks[0]).toMatchObject({ code: 'AE', controlId: 'BAD-1', text: 'OBX 2: OBX-5 "high" is not a number (OBX-2 is NM)' });
    // 2.3.1: ERR-1 is segment^sequence^field^code&text.
    expect([0, 1, 2].map((k) => s.acks[0]!.err!.get(1, k + 1))).toEqual(['OBX', '2', '5']);
    expect(s.acks[0]!.err!.get(1, 4, 1)).toBe('102');
    // Nothing of it is taken, not even its good OBX.
    expect(stats().errors).toBe(errors + 1);

    const twice = frame(iconv.encode(oru('DUP-1', 'P-10', [1.9]).replace('|2.3.1', '|2.3.1||||||GB 18030-2000'), 'gb18030'));
    await s.write(twice);
    await until('the first AA', () => s.acks.length === 2);
    await s.write(twice);
    await until('the second AA', () => s.acks.length === 3);
    expect(s.acks.slice(1).map((a) => `${a.code} ${a.controlId}`)).toEqual(['AA DUP-1', 'AA DUP-1']);
    await sleep(200);
    expect(captured.slice(before).map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`)).toEqual(['P-10/A1=1.9']);
    await until('the duplicate on MQTT once', () => sub.messages.some((m) => m.payload.includes('"P-10"')));
    await sleep(300);
    expect(sub.messages.filter((m) => m.payload.includes('"P-10"'))).toHaveLength(1);
    expect(stats().duplicates).toBe(duplicates + 1);

    // The control id used again for other results (an analyzer whose counter started again): taken, not lost.
    await s.write(frame(Buffer.from(oru('DUP-1', 'P-11', [2.1]))));
    await until('the third AA', () => s.acks.length === 4);
    expect(s.acks[3]).toMatchObject({ code: 'AA', controlId: 'DUP-1' });
    await until('the other results under DUP-1 captured', () => captured.some((r) => r.sampleId === 'P-11'));
    expect(captured.slice(before).map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`)).toEqual(['P-10/A1=1.9', 'P-11/A1=2.1']);
    expect(stats().duplicates).toBe(duplicates + 1);
  });

  it('an over-long message is answered AR and the next one taken; a frame that never ends does not hold up another connection', async () => {
    const s = await sender(hl7Port);
    cleanup.push(async () => s.close());
    const oversize = stats().oversizeMessages!;
    const big = oru(
      'BIG-1',
      'P-20',
      Array.from({ length: 2000 }, () => 1.5),
    );
    expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
    await s.write(Buffer.concat([frame(Buffer.from(big)), frame(Buffer.from(oru('AFTER-1', 'P-21', [1.4])))]));
    await until('two ACKs', () => s.acks.length === 2);
    expect(s.acks.map((a) => `${a.code} ${a.controlId}`)).toEqual(['AR BIG-1', 'AR AFTER-1'.replace('AR', 'AA')]);
    expect(s.acks[0]!.text).toMatch(/longer than max_message_size/);
    expect(stats().oversizeMessages).toBe(oversize + 1);

    // One connection begins a frame and stops; another's messages are answered meanwhile.
    const stuck = await sender(hl7Port);
    cleanup.push(async () => stuck.close());
    await stuck.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(oru('STUCK-1', 'P-22', [1]).repeat(100))]));
    await s.write(frame(Buffer.from(oru('MEANWHILE-1', 'P-23', [1.7]))));
    await until('the ACK meanwhile', () => s.acks.length === 3);
    expect(s.acks[2]).toMatchObject({ code: 'AA', controlId: 'MEANWHILE-1' });
    expect(stuck.acks).toEqual([]);
  });
});

describe('the HL7 driver and its store', () => {
  const instrument = { id: 'LA-6', category: 'lab_analyzer', connection: 'hl7-x', poll_interval: 1000 };

  it('answers AR while the store fails, and takes the message sent again once it works: nothing lost, nothing twice', async () => {
    const port = await freePort();
    const stored = new Map<string, LabResult>();
    const events: LabEvent[] = [];
    let failing = true;
    const driver = createHl7Driver(hl7ConnectionSchema.parse({ id: 'hl7-x', type: 'hl7-mllp', port }), instrument, {
      log: silent,
      sink: () => {},
      dataDir: tmpdir(),
      results: (results) => {
        if (failing) throw new Error('SQLITE_FULL: database or disk is full');
        for (const r of results) stored.set(r.resultId, r);
      },
      labEvents: (e) => events.push(e),
    });
    await driver.init();
    await driver.start();
    try {
      const s = await sender(port);
      const message = frame(Buffer.from(oru('STORE-1', 'P-30', [1.1, 1.2])));
      await s.write(message);
      await until('the AR', () => s.acks.length === 1);
      expect(s.acks[0]).toMatchObject({ code: 'AR', controlId: 'STORE-1' });
      expect(stored.size).toBe(0);
      expect(events).toEqual([expect.objectContaining({ kind: 'message-refused', instrument: 'LA-6', controlId: 'STORE-1' })]);
      failing = false;
      await s.write(message);
      await s.write(message);
      await until('two AAs', () => s.acks.length === 3);
      expect(s.acks.map((a) => a.code)).toEqual(['AR', 'AA', 'AA']);
      expect([...stored.values()].map((r) => `${r.sampleId}/${r.analyte}=${String(r.value)}`)).toEqual(['P-30/A1=1.1', 'P-30/A2=1.2']);
      expect(driver.stats!()).toMatchObject({ accepted: 2, rejected: 1, storeFailures: 1, results: 4 });
      s.close();
    } finally {
      await driver.stop();
    }
  });

  it('a sender that does not read its ACKs while it floods frames: each answered once it reads, no listener piled up per frame', async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const driver = createHl7Driver(hl7ConnectionSchema.parse({ id: 'hl7-x', type: 'hl7-mllp', port }), instrument, {
      log: silent,
      sink: () => {},
      dataDir: tmpdir(),
      results: () => {},
    });
    await driver.init();
    await driver.start();
    try {
      const s = await sender(port);
      // Not read: the gateway's ACKs (AE, the frames are no messages) fill the socket's buffers.
      s.socket.pause();
      const n = 20_000;
      s.socket.write(Buffer.from('\x0bX\x1c\x0d'.repeat(n)));
      await until('every frame read', () => driver.stats!().errors === n);
      s.socket.resume();
      await until('every ACK received', () => s.acks.length === n, 30_000);
      expect(new Set(s.acks.map((a) => a.code))).toEqual(new Set(['AE']));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      s.close();
    } finally {
      process.off('warning', onWarning);
      await driver.stop();
    }
  });

  it('a sender connecting again for each bad message does not get a new allowance of warnings each time', async () => {
    const port = await freePort();
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const driver = createHl7Driver(hl7ConnectionSchema.parse({ id: 'hl7-x', type: 'hl7-mllp', port }), instrument, {
      log,
      sink: () => {},
      dataDir: tmpdir(),
      results: () => {},
    });
    await driver.init();
    await driver.start();
    try {
      for (let k = 0; k < 40; k++) {
        const s = await sender(port);
        await s.write(frame(Buffer.from(oru(`BAD-${k}`, 'P-50', ['high']))));
        await until('the AE', () => s.acks.length === 1);
        s.close();
      }
      expect(driver.stats!()).toMatchObject({ errors: 40 });
      const warnings = lines.filter((l) => l.level >= 40);
      expect(warnings.length).toBeGreaterThan(0);
      expect(warnings.length).toBeLessThanOrEqual(10);
      // Connection lines too: 20 a minute, whatever the fields.
      expect(lines.filter((l) => /connected/.test(l.msg)).length).toBeLessThanOrEqual(20);
    } finally {
      await driver.stop();
    }
  });

  it('empty frames (a sender keeping its connection alive) are not answered nor counted as refused messages', async () => {
    const port = await freePort();
    const events: LabEvent[] = [];
    const driver = createHl7Driver(hl7ConnectionSchema.parse({ id: 'hl7-x', type: 'hl7-mllp', port }), instrument, {
      log: silent,
      sink: () => {},
      dataDir: tmpdir(),
      results: () => {},
      labEvents: (e) => events.push(e),
    });
    await driver.init();
    await driver.start();
    try {
      const s = await sender(port);
      await s.write(Buffer.from('\x0b\x1c\x0d\x0b\r\x1c\x0d'), frame(Buffer.from(oru('KEEP-1', 'P-40', [1.5]))));
      await until('the ACK', () => s.acks.length === 1);
      await sleep(100);
      expect(s.acks.map((a) => `${a.code} ${a.controlId}`)).toEqual(['AA KEEP-1']);
      expect(events).toEqual([]);
      expect(driver.stats!()).toMatchObject({ emptyFrames: 2, errors: 0, accepted: 1 });
      s.close();
    } finally {
      await driver.stop();
    }
  });

  it('listen mode: a connection over max_connections is closed as it arrives; a silent one after idle_timeout', async () => {
    const port = await freePort();
    const driver = createHl7Driver(
      hl7ConnectionSchema.parse({ id: 'hl7-x', type: 'hl7-mllp', port, max_connections: 1, idle_timeout: '1s' }),
      instrument,
      { log: silent, sink: () => {}, dataDir: tmpdir(), results: () => {} },
    );
    await driver.init();
    await driver.start();
    try {
      const first = await sender(port);
      const closed = (s: { socket: net.Socket }) => new Promise((r) => s.socket.once('close', r));
      const firstClosed = closed(first);
      const second = await sender(port);
      await closed(second);
      expect(driver.stats!()).toMatchObject({ rejectedConnections: 1 });
      await firstClosed;
      await until('the idle connection gone', () => driver.stats!().open === 0);
      expect(driver.stats!()).toMatchObject({ idleClosed: 1, rejectedConnections: 1 });
    } finally {
      await driver.stop();
    }
  });

  it('connect mode, nobody listening: attempts go on with backoff, logged once, no connection counted', async () => {
    const lines: Array<{ msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
    const port = await freePort();
    const driver = createHl7Driver(
      hl7ConnectionSchema.parse({
        id: 'hl7-x',
        type: 'hl7-mllp',
        mode: 'connect',
        port,
        reconnect: { initial_delay: '50ms', max_delay: '100ms' },
      }),
      instrument,
      { log, sink: () => {}, dataDir: tmpdir(), results: () => {} },
    );
    await driver.init();
    await driver.start();
    try {
      const unreachable = () => lines.filter((l) => l.msg === 'HL7 peer not reachable; connecting again with backoff');
      await until('the first attempt refused', () => unreachable().length > 0);
      // Several more attempts (50-100 ms apart), none of them logged.
      await sleep(800);
      expect(unreachable()).toHaveLength(1);
      expect(lines.filter((l) => /disconnected/.test(l.msg))).toEqual([]);
      expect(driver.stats!()).toMatchObject({ connections: 0 });
    } finally {
      await driver.stop();
    }
  });

  it('connect mode: the gateway dials the sender, and dials again after the sender closes', async () => {
    const received: string[] = [];
    const acks: string[] = [];
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      const receiver = new MllpReceiver({ maxMessageSize: 1 << 20, receiveTimeoutMs: 60_000 });
      socket.on('data', (d: Buffer) => {
        for (const e of receiver.receive(d, Date.now()))
          if (e.kind === 'frame') {
            acks.push(parseMessage(e.bytes, 'utf-8').segments[1]!.get(2));
            // The sender closes after each ACK; the gateway must come back for the next message.
            socket.destroy();
          }
      });
      socket.on('error', () => {});
      socket.write(frame(Buffer.from(oru(`DIAL-${connections}`, `P-4${connections}`, [2]))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const driver = createHl7Driver(
      hl7ConnectionSchema.parse({
        id: 'hl7-x',
        type: 'hl7-mllp',
        mode: 'connect',
        port,
        reconnect: { initial_delay: '100ms', max_delay: '200ms' },
      }),
      instrument,
      { log: silent, sink: () => {}, dataDir: tmpdir(), results: (r) => void received.push(...r.map((x) => x.sampleId)) },
    );
    await driver.init();
    await driver.start();
    try {
      await until('two messages over two connections', () => acks.length >= 2);
      expect(acks.slice(0, 2)).toEqual(['DIAL-1', 'DIAL-2']);
      expect(received.slice(0, 2)).toEqual(['P-41', 'P-42']);
      expect(driver.stats!().connections).toBeGreaterThanOrEqual(2);
    } finally {
      await driver.stop();
      await new Promise((r) => server.close(r));
    }
  });
});
