// What `gateway grafana export` writes into its output folder, and what it removes there: only
// dashboard files an export of this very site made, never another site's or anyone else's.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SiteConfig } from '../../../../config/schema.js';
import { loadTemplates } from '../../../../config/templates.js';
import { ExportError, exportTree, writeTree } from '../../../../gateway/grafana/export.js';

const templates = loadTemplates();

/** A site with a boiler, and with a crane too when `crane`: each with its template's points. */
function site(name: string, crane = false, url = 'http://127.0.0.1:8086') {
  const equipment = (id: string, template: string) => {
    const t = templates.get(template)!;
    return { id, template, category: t.category, points: t.points, limits: { ...t.limits }, disabled_rules: [] };
  };
  const config = {
    gateway: { id: 'gw-1', site: name },
    influx: { api: 'v1', url, database: 'telemetry' },
    equipment: [equipment('B-1', 'boiler-steam'), ...(crane ? [equipment('C-1', 'crane')] : [])],
  } as unknown as SiteConfig;
  return { config, text: '' };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'gw-grafana-unit-'));
  dirs.push(d);
  return d;
}
const exported = (name: string, crane = false) => {
  const s = site(name, crane);
  return { site: name, tree: exportTree(s.config, templates, { siteText: s.text }) };
};
const write = (out: string, e: ReturnType<typeof exported>) => writeTree(out, e.site, e.tree);
const dashboards = (out: string) => readdirSync(join(out, 'dashboards')).sort();

describe('gateway grafana export: the output folder', () => {
  it('removes a dashboard of an earlier export of this site that this one no longer makes', () => {
    const out = folder();
    const before = write(out, exported('plant-1', true));
    const after = write(out, exported('plant-1'));
    const gone = before.written.filter((f) => f.startsWith('dashboards/') && !after.written.includes(f));
    expect(gone).toHaveLength(1);
    expect(after.removed).toEqual(gone);
    expect(dashboards(out)).toEqual(after.written.filter((f) => f.startsWith('dashboards/')).map((f) => f.slice(11)));
  });

  it("never removes another site's dashboards, whatever the site is called (a tag of theirs, gateway, overview, a category)", () => {
    for (const name of ['gateway', 'overview', 'crane', 'boiler-steam']) {
      const out = folder();
      write(out, exported('plant-2', true));
      const theirs = dashboards(out);
      const mine = write(out, exported(name));
      expect(mine.removed, name).toEqual([]);
      for (const f of theirs) expect(dashboards(out), name).toContain(f);
    }
  });

  it('never removes a file it did not make, even one named and tagged like its own', () => {
    const out = folder();
    write(out, exported('plant-1'));
    // A copy of an exported dashboard, kept beside them under a name of its own.
    writeFileSync(join(out, 'dashboards', 'gw-plant-1-boiler-mine.json'), JSON.stringify({ tags: ['gateway', 'plant-1', 'boiler'] }));
    expect(write(out, exported('plant-1')).removed).toEqual([]);
    expect(dashboards(out)).toContain('gw-plant-1-boiler-mine.json');
  });
});

describe('gateway grafana export: the data sources', () => {
  it('writes no URL it cannot take apart (its user and password would be written as they are): refused, the secret not repeated', () => {
    for (const url of ['http://reader:s3cret@influx:99999', 'http://reader:s3cret@[::1']) {
      const s = site('plant-1', false, url);
      let error: unknown;
      try {
        exportTree(s.config, templates, { siteText: s.text });
      } catch (err) {
        error = err;
      }
      expect(error, url).toBeInstanceOf(ExportError);
      expect((error as Error).message).toMatch(/^influx\.url: /);
      expect((error as Error).message).not.toContain('s3cret');
    }
    const ok = site('plant-1', false, 'http://reader:s3cret@influx:8086/');
    const text = [...exportTree(ok.config, templates, { siteText: '' }).files.values()].join('\n');
    expect(text).toContain('url: http://influx:8086');
    expect(text).not.toContain('s3cret');
  });
});

describe('gateway grafana export: the secrets it names', () => {
  it('names each environment variable Grafana needs once, with both flavors too', () => {
    const s = site('plant-1');
    const v1 = { ...s.config, influx: { ...s.config.influx!, username: 'reader', password: 'x' } } as SiteConfig;
    const text = 'influx:\n  password: ${INFLUX_PW}\n';
    expect(exportTree(v1, templates, { siteText: text, flavor: 'both' }).secrets.map((x) => x.variable)).toEqual(['INFLUX_PW']);
    const v2 = {
      ...s.config,
      influx: { api: 'v2', url: 'http://127.0.0.1:8086', token: 't', org: 'o', bucket: 'b' },
    } as unknown as SiteConfig;
    expect(exportTree(v2, templates, { siteText: '' }).secrets.map((x) => x.variable)).toEqual(['INFLUX_TOKEN']);
  });
});
