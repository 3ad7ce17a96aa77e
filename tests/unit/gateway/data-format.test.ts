// The telemetry queues carry their format in PRAGMA user_version: a queue of release 0.1.0 (0) is
// taken and marked, one from a newer gateway is refused with one line, its chunks untouched.
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../config/errors.js';
import { checkDataFolderFormats, SPARKPLUG_QUEUE_FORMAT } from '../../../gateway/data-format.js';
import { ReadingQueue } from '../../../gateway/sparkplug/queue.js';
import { Spool, SPOOL_FORMAT } from '../../../gateway/spool.js';
import { GatewayStore, SCHEMA_VERSION, STORE_FILE } from '../../../gateway/store.js';

const log = pino({ level: 'silent' });

describe('spool format', () => {
  it('takes a queue of release 0.1.0 (user_version 0) and marks it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-format-')), 'mqtt-queue.db');
    const old = new Database(file);
    old.exec(
      'CREATE TABLE chunk (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, lines INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL)',
    );
    old.prepare('INSERT INTO chunk (text, lines, bytes, created_at) VALUES (?, 1, 3, 0)').run('a 1');
    old.close();
    const spool = new Spool({ file, maxBytes: 1e6, log });
    expect(spool.takeFrom(0, 10).map((c) => c.text)).toEqual(['a 1']);
    spool.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SPOOL_FORMAT);
    db.close();
  });

  it('refuses a queue written by a newer gateway, with the file and what to do, and leaves it as it was', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-format-')), 'influx-spool.db');
    new Spool({ file, maxBytes: 1e6, log }).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SPOOL_FORMAT + 1}`);
    db.close();
    let error: unknown;
    try {
      new Spool({ file, maxBytes: 1e6, log });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('GW_ERR_STORE');
    expect((error as GatewayError).message).toBe(
      `${file}: format ${SPOOL_FORMAT + 1} was written by a newer gateway (this one reads up to ${SPOOL_FORMAT}). Run that newer version, or move the file away to start with an empty one (the telemetry waiting in it is then lost).`,
    );
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SPOOL_FORMAT + 1);
    after.close();
  });

  it('marks the Sparkplug queue, and the folder check refuses each file of a newer format before anything opens it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-format-'));
    new GatewayStore(join(dir, STORE_FILE)).close();
    new Spool({ file: join(dir, 'mqtt-queue.db'), maxBytes: 1e6, log }).close();
    new Spool({ file: join(dir, 'influx-spool-writer-1.db'), maxBytes: 1e6, log }).close();
    new ReadingQueue(join(dir, 'sparkplug-queue.db'), 100, () => {}).close();
    const versionOf = (name: string) => {
      const db = new Database(join(dir, name), { readonly: true });
      try {
        return db.pragma('user_version', { simple: true });
      } finally {
        db.close();
      }
    };
    expect(versionOf('sparkplug-queue.db')).toBe(SPARKPLUG_QUEUE_FORMAT);
    expect(() => checkDataFolderFormats(dir)).not.toThrow();
    for (const [name, known] of [
      [STORE_FILE, SCHEMA_VERSION],
      ['mqtt-queue.db', SPOOL_FORMAT],
      ['influx-spool-writer-1.db', SPOOL_FORMAT],
      ['sparkplug-queue.db', SPARKPLUG_QUEUE_FORMAT],
    ] as const) {
      const db = new Database(join(dir, name));
      db.pragma(`user_version = ${known + 1}`);
      db.close();
      expect(() => checkDataFolderFormats(dir), name).toThrow(`${join(dir, name)}: `);
      expect(() => checkDataFolderFormats(dir), name).toThrow(
        `${known + 1} was written by a newer gateway (this one reads up to ${known})`,
      );
      const back = new Database(join(dir, name));
      back.pragma(`user_version = ${known}`);
      back.close();
    }
  });
});
