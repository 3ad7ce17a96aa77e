// Where daily reports are kept: `<data_dir>/reports/daily-<date>.html` and `.json`. The folder is the
// gateway user's alone like the rest of the data folder (reports name equipment, alarms and samples),
// and each file is written whole or not at all (a temporary file renamed over it), so a reader or a
// copy job never sees half a report.
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../data-dir.js';
import { renderDailyReport } from './html.js';
import type { DailyReport } from './types.js';

export const REPORTS_FOLDER = 'reports';

const REPORT_FILE = /^daily-(\d{4}-\d{2}-\d{2})\.(?:html|json)$/;

export function reportsDir(dataDir: string): string {
  return join(dataDir, REPORTS_FOLDER);
}

/** Writes `text` to `file` atomically, mode 0600, flushed to disk before it takes the name. */
export function writeFileAtomic(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', PRIVATE_FILE_MODE);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** Writes the report's page and JSON body into the data folder; returns both paths. */
export function writeDailyReport(dataDir: string, report: DailyReport): { html: string; json: string } {
  const dir = reportsDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // An existing folder keeps the mode it was made with: a copy or a restore may have opened it.
  chmodSync(dir, PRIVATE_DIR_MODE);
  const html = join(dir, `daily-${report.date}.html`);
  const json = join(dir, `daily-${report.date}.json`);
  writeFileAtomic(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(html, renderDailyReport(report));
  return { html, json };
}

/**
 * The page kept for `date`, undefined when there is none (not made yet, or pruned). Only a
 * `YYYY-MM-DD` is looked for: the date may come from a URL, and must not name another file.
 */
export function readDailyReport(dataDir: string, date: string): { html: string } | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  try {
    return { html: readFileSync(join(reportsDir(dataDir), `daily-${date}.html`), 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Deletes the report files of dates before `before` (YYYY-MM-DD); returns how many files went. */
export function pruneDailyReports(dataDir: string, before: string): number {
  let names: string[];
  try {
    names = readdirSync(reportsDir(dataDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let n = 0;
  for (const name of names) {
    const date = REPORT_FILE.exec(name)?.[1];
    if (date !== undefined && date < before) {
      rmSync(join(reportsDir(dataDir), name), { force: true });
      n++;
    }
  }
  return n;
}
