// The HL7 v2 parser and encoder: delimiters from MSH, segments on CR (LF, CRLF), repetitions,
// components, subcomponents, escape sequences, MSH-18 character sets (GB18030 with Chinese names),
// times, and the ACKs written back in the message's version and charset.
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { buildAck, headerOf, headerOfBytes } from '../../../../drivers/hl7/ack.js';
import {
  DEFAULT_DELIMITERS,
  ERROR_CODES,
  escape,
  Hl7Error,
  hl7Time,
  parseHl7Time,
  parseMessage,
  parseText,
  unescape,
} from '../../../../drivers/hl7/hl7-message.js';

const d = DEFAULT_DELIMITERS;

describe('escape sequences', () => {
  it.each([
    ['a\\F\\b', 'a|b'],
    ['a\\S\\b', 'a^b'],
    ['a\\T\\b', 'a&b'],
    ['a\\R\\b', 'a~b'],
    ['C:\\E\\temp', 'C:\\temp'],
    ['line 1\\.br\\line 2', 'line 1\nline 2'],
    ['\\H\\bold\\N\\ text', 'bold text'],
    ['\\X41\\\\X4243\\', 'ABC'],
    ['\\XE891A1\\', '葡'],
    ['\\Zlocal\\x', 'x'],
    ['\\.in+4\\indented', 'indented'],
    // An escape character without its closing one, or one that opens no known sequence, is text.
    ['C:\\temp', 'C:\\temp'],
    ['a\\Q\\b', 'a\\Q\\b'],
    ['trailing\\', 'trailing\\'],
  ])('%s reads as %j', (raw, text) => {
    expect(unescape(raw, d)).toBe(text);
  });

  it('\\X..\\ bytes are read in the message charset; bytes not valid in it are refused, not replacement characters', () => {
    const gb = iconv.encode('糖', 'gb18030').toString('hex').toUpperCase();
    expect(unescape(`\\X${gb}\\`, d, 'gb18030')).toBe('糖');
    expect(() => unescape('GL\\XFF\\U', d, 'utf-8')).toThrow('an escape \\XFF\\ is not valid UTF-8 text');
    expect(() => unescape(`\\X${gb}\\`, d, 'utf-8')).toThrow(Hl7Error);
    expect(unescape('\\XFF\\', d, 'latin1')).toBe('\u00ff');
  });

  it('escape and unescape are inverse, with the message delimiters', () => {
    const text = 'a|b^c&d~e\\f\rg';
    expect(unescape(escape(text, d), d)).toBe(text.replace('\r', '\n'));
    const other = { field: '#', component: '%', repetition: '*', escape: '/', subcomponent: '@' };
    expect(unescape(escape('x#y%z/w', other), other)).toBe('x#y%z/w');
  });
});

const MSG = [
  'MSH|^~\\&|Analyzer|Lab|LIS|Hosp|20261203101500||ORU^R01^ORU_R01|MSG00001|P|2.5.1|||||CHN|UNICODE UTF-8',
  'PID|1||PAT-1^^^LAB^MR~ALT-9^^^X||Doe^Jane',
  'OBR|1|PL-1|S-00001|CHEM^Chemistry|||20261203101000',
  'OBX|1|NM|GLU^Glucose^L||5.6|mmol/L|3.9-6.1|H~A|||F|||20261203101200',
  'NTE|1||comment with \\F\\ pipe and \\S\\ caret',
].join('\r');

describe('parsing', () => {
  it('reads fields, repetitions, components and subcomponents by the MSH delimiters', () => {
    const m = parseText(MSG, 'utf-8');
    expect(m).toMatchObject({ type: 'ORU', event: 'R01', controlId: 'MSG00001', version: '2.5.1', charset: 'utf-8' });
    expect(m.msh.raw(1)).toBe('|');
    expect(m.msh.raw(2)).toBe('^~\\&');
    expect(m.msh.get(3)).toBe('Analyzer');
    const pid = m.segments[1]!;
    expect(pid.repetitions(3)).toHaveLength(2);
    expect(pid.get(3, 1, 1, 1)).toBe('ALT-9');
    expect(pid.get(5, 2)).toBe('Jane');
    const obx = m.segments[3]!;
    expect(obx.get(8, 1, 1, 0)).toBe('H');
    expect(obx.get(8, 1, 1, 1)).toBe('A');
    expect(m.segments[4]!.get(3)).toBe('comment with | pipe and ^ caret');
  });

  it('takes segments ended by LF or CRLF as by CR', () => {
    for (const sep of ['\n', '\r\n', '\r\r'])
      expect(parseText(MSG.replaceAll('\r', sep), 'utf-8').segments.map((s) => s.name)).toEqual(['MSH', 'PID', 'OBR', 'OBX', 'NTE']);
  });

  it('reads other delimiters than |^~\\&', () => {
    const m = parseText('MSH#%*/@#App#Fac###20261203##ORU%R01#C1#P#2.3.1\rOBX#1#ST#X%Name##a/F/b#u', 'utf-8');
    expect(m.controlId).toBe('C1');
    expect(m.type).toBe('ORU');
    expect(m.segments[1]!.get(3, 2)).toBe('Name');
    expect(m.segments[1]!.get(5)).toBe('a#b');
  });

  it('skips a UTF-8 byte order mark and line ends before MSH, in the message and in the header an ACK echoes', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`\r\n${MSG}`)]);
    expect(parseMessage(bytes, 'utf-8').controlId).toBe('MSG00001');
    expect(headerOfBytes(bytes).controlId).toBe('MSG00001');
  });

  it.each([
    ['', 'the message is empty'],
    ['PID|1', 'does not start with an MSH segment'],
    ['MSH|^~', 'do not declare the field separator'],
    ['MSH|^^\\&|A', 'not distinct'],
    [`${MSG}\rMSH|^~\\&|B`, 'more than one MSH segment'],
    ['MSH|^~\\&|A\rob|1', 'segment 2 has no segment name'],
  ])('refuses %j: %s', (text, reason) => {
    expect(() => parseText(text, 'utf-8')).toThrow(reason);
    try {
      parseText(text, 'utf-8');
    } catch (err) {
      expect(err).toBeInstanceOf(Hl7Error);
    }
  });
});

describe('character sets', () => {
  const chinese = (charset: string) =>
    [
      `MSH|^~\\&|分析仪|检验科||GATEWAY|20261203101500||ORU^R01|C-GB|P|2.5.1|||||CHN|${charset}`,
      'OBR|1||S-1|CHEM^生化|||20261203101000',
      'OBX|1|NM|GLU^葡萄糖^L||5.2|mmol/L|3.9-6.1|N|||F',
    ].join('\r');

  it('decodes GB18030 by MSH-18, Chinese names before and after it', () => {
    const bytes = iconv.encode(chinese('GB 18030-2000'), 'gb18030');
    const m = parseMessage(bytes, 'utf-8');
    expect(m.charset).toBe('gb18030');
    expect(m.msh.get(3)).toBe('分析仪');
    expect(m.segments[2]!.get(3, 2)).toBe('葡萄糖');
  });

  it('a GBK character whose second byte is | before MSH-18 is refused, not read with its fields moved', () => {
    // 亅 in GBK is 0x81 0x7C: its second byte is the field separator.
    expect([...iconv.encode('亅', 'gbk')]).toEqual([0x81, 0x7c]);
    const bytes = iconv.encode(chinese('GBK').replace('分析仪', '亅'), 'gbk');
    expect(() => parseMessage(bytes, 'utf-8')).toThrow(/MSH-18 read as|character set/);
  });

  it('an empty MSH-18 means the connection default', () => {
    const bytes = iconv.encode(chinese(''), 'gb18030');
    expect(parseMessage(bytes, 'gb18030').segments[2]!.get(3, 2)).toBe('葡萄糖');
    // Read as UTF-8, GB18030 bytes are not valid text: refused, never shown with replacement characters.
    expect(() => parseMessage(bytes, 'utf-8')).toThrow('is not valid UTF-8 text');
  });

  it('reads UTF-8, ASCII and 8859/1; refuses a character set it does not know', () => {
    expect(parseMessage(Buffer.from(chinese('UNICODE UTF-8')), 'latin1').segments[2]!.get(3, 2)).toBe('葡萄糖');
    expect(parseMessage(Buffer.from(MSG.replace('UNICODE UTF-8', 'ASCII')), 'utf-8').charset).toBe('latin1');
    const latin = parseMessage(Buffer.from(MSG.replace('UNICODE UTF-8', '8859/1').replace('Glucose', 'Glucosé'), 'latin1'), 'utf-8');
    expect(latin.segments[3]!.get(3, 2)).toBe('Glucosé');
    expect(() => parseMessage(Buffer.from(MSG.replace('UNICODE UTF-8', 'ISO IR87')), 'utf-8')).toThrow(
      /character set "ISO IR87" is not supported/,
    );
  });
});

describe('times', () => {
  it.each([
    ['20261203101500', new Date(2026, 11, 3, 10, 15, 0).toISOString()],
    ['202612031015', new Date(2026, 11, 3, 10, 15).toISOString()],
    ['20261203', new Date(2026, 11, 3).toISOString()],
    ['20261203101500.25+0800', '2026-12-03T02:15:00.250Z'],
    ['20261203101500-0130', '2026-12-03T11:45:00.000Z'],
  ])('%s', (text, iso) => {
    expect(parseHl7Time(text)!.toISOString()).toBe(iso);
  });

  it('an empty time is none; one that is not a time is invalid', () => {
    expect(parseHl7Time('')).toBeUndefined();
    // An offset over 14 hours or with 60 minutes or more is no offset: refused, not read as a wrong instant.
    for (const bad of [
      '2026-12-03',
      '20261303',
      '20260231',
      '20261203246000',
      '0099',
      '20261203101500+9999',
      '20261203101500-0075',
      '20261203101500+1500',
    ])
      expect(Number.isNaN(parseHl7Time(bad)!.getTime()), bad).toBe(true);
  });

  it.each([
    ['20261203101500', 'Asia/Shanghai', '2026-12-03T02:15:00.000Z'],
    ['20261203101500', 'UTC', '2026-12-03T10:15:00.000Z'],
    // Either side of a daylight saving change: 02:30 in Berlin is CET (+1) on 29 March before 02:00, CEST (+2) after.
    ['20260329013000', 'Europe/Berlin', '2026-03-29T00:30:00.000Z'],
    ['20260329033000', 'Europe/Berlin', '2026-03-29T01:30:00.000Z'],
    ['20261025013000', 'America/New_York', '2026-10-25T05:30:00.000Z'],
    // An offset in the message wins over the site's zone.
    ['20261203101500+0000', 'Asia/Shanghai', '2026-12-03T10:15:00.000Z'],
  ])('%s in %s', (text, zone, iso) => {
    expect(parseHl7Time(text, zone)!.toISOString()).toBe(iso);
  });
});

describe('ACKs', () => {
  const segmentsOf = (b: Buffer, charset: 'utf-8' | 'gb18030' = 'utf-8') => parseMessage(b, charset).segments;

  it('AA in the message version, delimiters and charset, MSA-2 its control id, a control id of its own', () => {
    const m = parseText(MSG, 'utf-8');
    const ack = parseMessage(buildAck(headerOf(m), 'AA'), 'latin1');
    expect(ack).toMatchObject({ type: 'ACK', version: '2.5.1', charset: 'utf-8' });
    expect(ack.msh.get(3)).toBe('LIS');
    expect(ack.msh.get(5)).toBe('Analyzer');
    expect(ack.controlId).not.toBe('MSG00001');
    expect(ack.controlId.length).toBeLessThanOrEqual(20);
    const msa = ack.segments[1]!;
    expect([msa.name, msa.get(1), msa.get(2)]).toEqual(['MSA', 'AA', 'MSG00001']);
    const again = parseMessage(buildAck(headerOf(m), 'AA'), 'latin1');
    expect(again.controlId).not.toBe(ack.controlId);
  });

  it('AE with the reason in MSA-3 and ERR (2.5: ERR-2/3/8; 2.3.1: ERR-1), in GB18030 for a GB18030 message', () => {
    const m = parseText(MSG.replace('UNICODE UTF-8', 'GB 18030-2000'), 'gb18030');
    const error = new Hl7Error('OBX 1: OBX-5 "高" is not a number (OBX-2 is NM)', ERROR_CODES.dataType, {
      segment: 'OBX',
      sequence: 1,
      field: 5,
    });
    const bytes = buildAck(headerOf(m), 'AE', error);
    const [, msa, err] = segmentsOf(bytes, 'utf-8');
    expect(msa!.get(1)).toBe('AE');
    expect(msa!.get(3)).toBe(error.message);
    expect(err!.get(2, 1)).toBe('OBX');
    expect(err!.get(2, 3)).toBe('5');
    expect(err!.get(3, 1)).toBe('102');
    expect(err!.get(8)).toBe(error.message);
    expect(bytes.includes(iconv.encode('高', 'gb18030'))).toBe(true);

    const old = parseText(MSG.replace('2.5.1', '2.3.1'), 'utf-8');
    const [msh, , err231] = segmentsOf(buildAck(headerOf(old), 'AR', error));
    expect(msh!.get(12)).toBe('2.3.1');
    expect(err231!.get(1, 1)).toBe('OBX');
    expect(err231!.get(1, 4, 1)).toBe('102');
    expect(err231!.get(1, 4, 2)).toBe(error.message);
  });

  it('a reason quoting broken text (a NUL, a character Latin-1 has not) keeps the ACK readable, in any charset', () => {
    // Found by the fuzz test: 痎 written as Latin-1 kept its low byte, and U+010A would have become LF.
    const error = new Hl7Error('segment 4 has no segment name: "\u0000痎\u010aL|||"', ERROR_CODES.segmentSequence);
    for (const header of [headerOfBytes(Buffer.from(MSG)), headerOf(parseText(MSG, 'utf-8'))]) {
      const ack = parseMessage(buildAck(header, 'AE', error), 'utf-8');
      expect(ack.segments.map((s) => s.name)).toEqual(['MSH', 'MSA', 'ERR']);
      expect(ack.segments[1]!.get(2)).toBe('MSG00001');
      expect(['segment 4 has no segment name: "\u0000??L|||"', error.message]).toContain(ack.segments[1]!.get(3));
    }
  });

  it('a message that could not be parsed is still answered with its control id when it has one', () => {
    const header = headerOfBytes(Buffer.from(MSG.replace('UNICODE UTF-8', 'KLINGON')));
    expect(header.controlId).toBe('MSG00001');
    const [, msa] = segmentsOf(buildAck(header, 'AE', new Hl7Error('x', ERROR_CODES.tableValue)));
    expect(msa!.get(2)).toBe('MSG00001');
    expect(headerOfBytes(Buffer.from('garbage')).controlId).toBe('');
  });

  it('MSA-2 is MSH-10 as sent, escapes, components and spaces included: the sender matches it byte for byte', () => {
    for (const sent of ['C\\E\\7', 'C-1&2', 'C-3^x', ' C-4 ']) {
      const text = MSG.replace('|MSG00001|', `|${sent}|`);
      for (const header of [headerOf(parseText(text, 'utf-8')), headerOfBytes(Buffer.from(text.replace('UNICODE UTF-8', 'KLINGON')))]) {
        const [, msa] = segmentsOf(buildAck(header, 'AA'));
        expect(msa!.raw(2)).toBe(sent);
      }
    }
  });
});

describe('times written', () => {
  it('the machine local time with its offset, read back as the same instant', () => {
    const d = new Date(2026, 11, 3, 10, 15, 0);
    expect(hl7Time(d)).toMatch(/^20261203101500[+-]\d{4}$/);
    expect(parseHl7Time(hl7Time(d), 'Pacific/Kiritimati')!.getTime()).toBe(d.getTime());
  });
});
