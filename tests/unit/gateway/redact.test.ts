// Credentials inside URLs never leave the process: the one redaction, on plain text, JSON log lines
// (messages, fields, stacks) and API answers.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../gateway/log.js';
import { redact, redactDeep } from '../../../gateway/redact.js';

describe('redact', () => {
  it.each([
    ['https://user:s3cr3t@platform.example.org/api', 'https://***@platform.example.org/api'],
    ['mqtts://gw:p@ss@broker:8883', 'mqtts://***@broker:8883'],
    ['mqtt://tokenonly@broker', 'mqtt://***@broker'],
    [
      'http://influx:8086/write?db=plant&u=admin&p=x&token=abc123&precision=ns',
      'http://influx:8086/write?db=plant&u=admin&p=x&token=***&precision=ns',
    ],
    [
      'https://h/x?api_key=K1&Signature=S2&X-Amz-Signature=S3&access_token=T4#f',
      'https://h/x?api_key=***&Signature=***&X-Amz-Signature=***&access_token=***#f',
    ],
    ['https://h/x?password=pw;secret=s', 'https://h/x?password=***;secret=***'],
    ['connect to https://a:b@h1/ failed, then mqtt://c:d@h2:1883 too', 'connect to https://***@h1/ failed, then mqtt://***@h2:1883 too'],
  ])('%s', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it('leaves text without credentials as it is, the same string', () => {
    for (const text of [
      'https://platform.example.org/api?db=plant',
      'steam_pressure > 1.25',
      'a=b',
      'mailto:someone@example.org',
      'user@example.org wrote https://h/p',
    ]) {
      expect(redact(text)).toBe(text);
    }
    const plain = 'no url here';
    expect(redact(plain)).toBe(plain);
  });

  it('keeps a JSON line valid JSON, even with an escaped quote next to a secret', () => {
    const line = JSON.stringify({
      msg: 'Failed',
      url: 'https://u:p"w@h/?token=a"b&c=1',
      err: { stack: 'Error: at https://x:y@h\n  at f' },
    });
    const out = redact(line);
    const parsed = JSON.parse(out) as { url: string; err: { stack: string } };
    expect(out).not.toMatch(/u:p|token=a|x:y/);
    expect(parsed.url).toBe('https://***@h/?token=***"b&c=1');
    expect(parsed.err.stack).toContain('https://***@h');
  });

  it('walks API answers and copies only what changed', () => {
    const unchanged = { a: ['x', { b: 1 }], c: null };
    expect(redactDeep(unchanged)).toBe(unchanged);
    expect(redactDeep({ detail: [{ answer: 'POST https://gw:pw@p/ failed' }], n: 3 })).toEqual({
      detail: [{ answer: 'POST https://***@p/ failed' }],
      n: 3,
    });
  });

  it('reaches every part of a log line: message, fields, bindings, error message and stack', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger({ pretty: false, destination }).child({ broker: 'mqtt://bind:ings@b' });
    // Secrets no path of a checkout or a stack frame can contain by chance.
    const err = new Error('getaddrinfo ENOTFOUND https://e:m@h/?secret=Sq7Zsecret');
    log.warn({ url: 'https://f:i@h/', err }, 'Cannot reach https://m:s@h/?token=Tq7Ztoken');
    expect(lines).toHaveLength(1);
    for (const secret of ['bind:ings', 'e:m@', 'Sq7Zsecret', 'f:i@', 'm:s@', 'Tq7Ztoken']) expect(lines[0]).not.toContain(secret);
    const parsed = JSON.parse(lines[0]!) as { msg: string; broker: string; err: { stack: string } };
    expect(parsed.msg).toBe('Cannot reach https://***@h/?token=***');
    expect(parsed.broker).toBe('mqtt://***@b');
    expect(parsed.err.stack).toContain('https://***@h/?secret=***');
  });
});
