// `gateway grafana export` on the demo site: the dashboards it writes are checked against Grafana's
// published types (@grafana/schema, by the TypeScript compiler on the JSON files as written), and
// every InfluxQL query of every panel runs against the test InfluxDB holding the demo's data, written
// as the gateway writes it (its own line-protocol encoders), with Grafana's macros filled in as
// Grafana does. Flux cannot run here (the test InfluxDB is 1.x): its queries are checked for the
// bucket, measurements and fields the gateway writes.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadSiteFile } from '../../config/load.js';
import type { SiteConfig } from '../../config/schema.js';
import { encodeAlarms, encodeResults, encodeRisk, encodeTelemetry } from '../../gateway/influx/line-protocol.js';
import { loadTemplates } from '../../config/templates.js';
import { stableUid } from '../../gateway/grafana/dashboards.js';
import { exportTree } from '../../gateway/grafana/export.js';
import type { GatewayDashboard } from '../../gateway/grafana/model.js';
import type { AlarmEvent } from '../../rules/types.js';
import { gatewayAsync, ROOT } from '../helpers/cli.js';
import { packagesBeyond, traceSync } from '../helpers/modules.js';

const influx = inject('influxdb');
const db = `grafana_${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'gw-grafana-'));
const NOW = Date.now();
const FROM = NOW - 30 * 60_000;

/** The demo site with an influx section of each api (the demo has them commented out). */
function demoWith(influxSection: string): string {
  const demo = readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8');
  const file = join(dir, `site-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, demo.replace(/^http:\n/m, `${influxSection}\nhttp:\n`));
  return file;
}
const V1 = `influx:\n  api: v1\n  url: ${influx.url}\n  database: ${db}\n  username: reader\n  password: \${GRAFANA_TEST_PASSWORD}`;
const V2 = `influx:\n  api: v2\n  url: ${influx.url}\n  token: \${GRAFANA_TEST_TOKEN}\n  org: plant\n  bucket: telemetry`;
const SECRETS = { GRAFANA_TEST_PASSWORD: 'pw-never-in-a-file-1', GRAFANA_TEST_TOKEN: 'token-never-in-a-file-2' };

function readTree(out: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const sub of ['provisioning/datasources', 'provisioning/dashboards', 'dashboards'])
    for (const f of readdirSync(join(out, sub)).sort()) files.set(`${sub}/${f}`, readFileSync(join(out, sub, f), 'utf8'));
  return files;
}
const dashboardsOf = (tree: Map<string, string>) =>
  [...tree].filter(([k]) => k.startsWith('dashboards/')).map(([, v]) => JSON.parse(v) as GatewayDashboard);

async function query(
  q: string,
): Promise<{ series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>; error?: string }> {
  const res = await fetch(`${influx.url}/query?db=${db}&epoch=ms&q=${encodeURIComponent(q)}`, {
    method: q.startsWith('CREATE') ? 'POST' : 'GET',
  });
  const body = (await res.json()) as { results: Array<{ series?: never; error?: string }>; error?: string };
  if (body.error) return { error: body.error };
  return body.results[0]!;
}

/**
 * The level of each measured value written (`<equipment>/<point>`): each equipment's and point's its
 * own, so a panel that shows another point's or another equipment's values is caught.
 */
const levels = new Map<string, number>();

/** The demo's data as the gateway writes it: telemetry of every equipment and point, alarms, risk, lab results. */
function demoLines(config: SiteConfig): string[] {
  const site = config.gateway.site;
  const lines: string[] = [];
  for (let k = 0; k < 20; k++) {
    const ts = FROM + k * 60_000;
    config.equipment.forEach((e, n) => {
      if (e.points.length === 0) return;
      const values: Record<string, number | boolean> = {};
      const quality: Record<string, 'good' | 'uncertain'> = {};
      e.points.forEach((p, i) => {
        // Measured values are numbers; states and codes booleans or whole numbers, as drivers read them.
        levels.set(`${e.id}/${p.name}`, 100 * (n + 1) + i);
        values[p.name] = p.unit ? 100 * (n + 1) + i + 0.3 * Math.sin(k) : i % 2 === 0 ? k % 2 === 0 : k % 4;
        quality[p.name] = 'good';
      });
      // One reading in the run is not good: its own line with the tag point, as for a device fault.
      if (k === 5) quality[e.points[0]!.name] = 'uncertain';
      lines.push(
        ...encodeTelemetry({ ts, values, quality }, { measurement: e.category, site, equipment: e.id, code: e.code as string | undefined })
          .lines,
      );
    });
    const assessed = config.equipment.map((e, i) => ({
      equipment: e.id,
      level: (['blue', 'yellow', 'orange', 'red'] as const)[(i + k) % 4]!,
      score: 3 + i + k,
      likelihood: 2,
      consequence: e.consequence,
      points: 4,
      factors: [{ factor: 'alarm_red', points: 2 }],
      computedAt: ts,
    }));
    lines.push(...encodeRisk(assessed, site));
  }
  // The gateway writes a risk assessment when it changes: this one, red two days ago, still holds.
  lines.push(
    ...encodeRisk(
      [
        {
          equipment: 'V-old',
          level: 'red',
          score: 17,
          likelihood: 4,
          consequence: 4,
          points: 9,
          factors: [],
          computedAt: NOW - 2 * 86_400_000,
        },
      ],
      site,
    ),
  );
  const alarm = (
    equipment: string,
    rule: string,
    level: AlarmEvent['level'],
    type: AlarmEvent['type'],
    state: AlarmEvent['state'],
    ts: number,
  ): AlarmEvent =>
    ({
      eventId: `${rule}-${ts}`,
      incidentId: `${equipment}/${rule}`,
      type,
      state,
      level,
      site,
      equipment,
      rule,
      message: `${rule} on ${equipment}`,
      value: 1,
      ts,
    }) as AlarmEvent;
  lines.push(
    ...encodeAlarms([
      alarm('B-07', 'drum-level-low-low', 'red', 'raised', 'active_unacknowledged', FROM + 60_000),
      alarm('B-07', 'drum-level-low-low', 'red', 'acknowledged', 'active_acknowledged', FROM + 120_000),
      alarm('L-3', 'trapped-passenger', 'red', 'raised', 'active_unacknowledged', FROM + 180_000),
      alarm('B-07', 'drum-level-low-low', 'red', 'cleared', 'normal', FROM + 240_000),
      // An alarm not acknowledged in time escalates: its level changes within one incident.
      alarm('B-07', 'overpressure', 'yellow', 'raised', 'active_unacknowledged', FROM + 250_000),
      alarm('B-07', 'overpressure', 'orange', 'escalated', 'active_unacknowledged', FROM + 260_000),
      alarm('B-07', 'overpressure', 'red', 'acknowledged', 'active_acknowledged', FROM + 270_000),
      alarm('B-07', 'overpressure', 'red', 'cleared', 'normal', FROM + 280_000),
      // Raised two days ago, and still active: long before the dashboard's time range.
      alarm('L-3', 'door-open-too-long', 'yellow', 'raised', 'active_unacknowledged', NOW - 2 * 86_400_000),
    ]),
  );
  lines.push(
    ...encodeResults(
      config.equipment
        .filter((e) => e.category === 'lab_analyzer')
        .map(({ id: instrument }, i) => ({
          resultId: `${instrument}-1`,
          instrument,
          sampleId: `S${i}`,
          analyte: 'GLU',
          value: 5 + i,
          unit: 'mmol/L',
          flags: [],
          status: 'F',
          resultAt: new Date(FROM + 300_000 + i).toISOString(),
        })),
      site,
    ),
  );
  return lines;
}

/** Grafana's regex format of a multi-value variable with every value selected. */
const regexOf = (values: string[]) => {
  const escaped = values.map((v) => v.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
};

/**
 * An InfluxQL query as Grafana sends it for the last 30 minutes, every equipment selected; a panel's
 * own relative time (`timeFrom: '30d'`) instead of the dashboard's where it has one.
 */
function asGrafanaSends(text: string, d: GatewayDashboard, panel?: { timeFrom?: string | undefined }): string {
  const variable = d.templating.list.find((v) => v.name === 'equipment');
  const values = typeof variable?.query === 'string' ? variable.query.split(',') : [];
  const days = /^(\d+)d$/.exec(panel?.timeFrom ?? '');
  const from = days ? NOW - Number(days[1]) * 86_400_000 : FROM - 60_000;
  return text
    .replaceAll('$timeFilter', `time >= ${from}ms and time <= ${NOW}ms`)
    .replaceAll('$__interval', '1m')
    .replaceAll('${equipment:regex}', regexOf(values));
}

/**
 * TypeScript diagnostics of `source`, a module beside this test (the dashboards checked against
 * Grafana's types), each as `line: message` with the line from 1.
 */
function typeErrors(source: string): string[] {
  const file = join(ROOT, 'tests', 'integration', '__grafana_check__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file || d.file === undefined)
    .map(
      (d) =>
        `${d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
    );
}

function checkModule(dashboards: unknown[]): string {
  return [
    "import type { Dashboard } from '@grafana/schema';",
    "import type { GatewayDashboard, Json } from '../../gateway/grafana/model.js';",
    ...dashboards.map((d, i) => `export const d${i} = ${JSON.stringify(d)} satisfies GatewayDashboard satisfies Json<Dashboard>;`),
  ].join('\n');
}

let v1: Map<string, string>;
let v1Again: Map<string, string>;
let v2: Map<string, string>;
let config: SiteConfig;
/** The demo with one more equipment of each shipped template it does not use, exported in-process. */
let every: SiteConfig;
let everyTree: Map<string, string>;

/** The demo site with an equipment of every other shipped template, each with all its points and default limits. */
function withEveryTemplate(site: SiteConfig): SiteConfig {
  const used = new Set(site.equipment.map((e) => e.template));
  const extra = [...loadTemplates().values()]
    .filter((t) => !used.has(t.template))
    .map(
      (t) =>
        ({
          id: `X-${t.template}`,
          name: t.name,
          category: t.category,
          template: t.template,
          connection: 'boiler-plc',
          poll_interval: 1000,
          points: t.points.map((p) => ({ name: p.name, ...(p.unit ? { unit: p.unit } : {}) })),
          limits: { ...t.limits },
          disabled_rules: [],
          consequence: 2,
        }) as unknown as SiteConfig['equipment'][number],
    );
  return { ...site, equipment: [...site.equipment, ...extra] };
}

beforeAll(async () => {
  const v1Site = demoWith(V1);
  const v2Site = demoWith(V2);
  const runs = await Promise.all([
    gatewayAsync(['grafana', 'export', '-c', v1Site, '--out', join(dir, 'v1')], SECRETS),
    gatewayAsync(['grafana', 'export', v1Site, '--out', join(dir, 'v1-again')], SECRETS),
    // api: v2 gives both flavors by default: InfluxQL through the bucket's v1 mapping, and Flux.
    gatewayAsync(['grafana', 'export', '-c', v2Site, '--out', join(dir, 'v2')], SECRETS),
  ]);
  for (const r of runs) expect(r.stderr, r.stderr).toBe('');
  expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
  expect(runs[0]!.stdout).toContain('Grafana reads GRAFANA_TEST_PASSWORD from its environment');
  v1 = readTree(join(dir, 'v1'));
  v1Again = readTree(join(dir, 'v1-again'));
  v2 = readTree(join(dir, 'v2'));
  config = loadSiteFile(v1Site, { ...process.env, ...SECRETS });
  every = withEveryTemplate(config);
  everyTree = exportTree(every, loadTemplates(), { siteText: '' }).files;
  expect((await query(`CREATE DATABASE "${db}"`)).error).toBeUndefined();
  const res = await fetch(`${influx.url}/write?db=${db}&precision=ns`, { method: 'POST', body: demoLines(every).join('\n') });
  expect(res.status, await res.text()).toBe(204);
}, 30_000);

afterAll(async () => {
  await query(`DROP DATABASE "${db}"`);
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway grafana export', () => {
  it('writes one dashboard per template the demo uses (by category without one) and the overview, the same bytes each time', () => {
    expect([...v1.keys()].filter((k) => k.startsWith('dashboards/'))).toHaveLength(5);
    const titles = dashboardsOf(v1).map((d) => d.title);
    expect(titles.sort()).toEqual([
      'demo-site: Steam boiler',
      'demo-site: Traction elevator',
      'demo-site: lab analyzer (no template)',
      'demo-site: other (no template)',
      'demo-site: site overview',
    ]);
    expect(v1Again).toEqual(v1);
    const boiler = dashboardsOf(v1).find((d) => d.title?.endsWith('Steam boiler'))!;
    // The demo boiler's points come from its profile: the site's own, with the template's units.
    const drum = boiler.panels.find((p) => p.title === 'drum_level (mm)')!;
    expect(drum.fieldConfig.defaults.unit).toBe('lengthmm');
    // Limits of the template's rules, at the site's values: red below -200, yellow from -200 and from 50.
    expect(drum.fieldConfig.defaults.thresholds?.steps).toEqual([
      { color: 'red', value: null },
      { color: 'yellow', value: -200 },
      { color: 'green', value: -50 },
      { color: 'yellow', value: 50 },
    ]);
    const pressure = boiler.panels.find((p) => p.title === 'steam_pressure (MPa)')!;
    expect(pressure.fieldConfig.defaults.thresholds?.steps).toEqual([
      { color: 'green', value: null },
      { color: 'orange', value: 1.6 },
      { color: 'red', value: 1.632 },
    ]);
    expect(boiler.templating.list[0]).toMatchObject({ name: 'equipment', query: 'B-07' });
  });

  it('keeps secrets out of every file: Grafana reads them from its environment', () => {
    for (const tree of [v1, v2]) for (const text of tree.values()) for (const s of Object.values(SECRETS)) expect(text).not.toContain(s);
    expect(v1.get('provisioning/datasources/gateway.yaml')).toContain('password: ${GRAFANA_TEST_PASSWORD}');
    expect(v2.get('provisioning/datasources/gateway.yaml')).toContain('token: ${GRAFANA_TEST_TOKEN}');
    expect(v2.get('provisioning/datasources/gateway.yaml')).toContain('defaultBucket: telemetry');
    expect(v2.get('provisioning/datasources/gateway.yaml')).toContain('httpHeaderValue1: Token ${GRAFANA_TEST_TOKEN}');
    expect(dashboardsOf(v2).map((d) => d.title)).toContain('demo-site: Steam boiler (Flux)');
    expect(dashboardsOf(v2).map((d) => d.title)).toContain('demo-site: Steam boiler (InfluxQL)');
  });

  it("passes Grafana's published dashboard types (@grafana/schema), and a dashboard that does not is caught", () => {
    const all = [...dashboardsOf(v1), ...dashboardsOf(v2), ...dashboardsOf(everyTree)];
    // The check has teeth: a misspelt key and a wrong enum value are refused. One compilation: the
    // exported dashboards are lines 3 on, the two broken ones the last two lines.
    const bad = structuredClone(all[0]!) as unknown as { panels: Array<{ options: Record<string, unknown> }> };
    bad.panels[0]!.options.tooltip = { mode: 'several', sort: 'none' };
    const bad2 = structuredClone(all[0]!) as unknown as Record<string, unknown>;
    bad2.refreshRate = '5s';
    const errors = typeErrors(checkModule([...all, bad, bad2]));
    const line = (n: number) => errors.filter((e) => e.startsWith(`${n}: `));
    expect(errors.filter((e) => Number(e.split(':')[0]) < 3 + all.length)).toEqual([]);
    expect(line(3 + all.length).join('\n')).toMatch(/several/);
    expect(line(4 + all.length).join('\n')).toMatch(/refreshRate/);
  }, 60_000);

  it("every InfluxQL panel returns the demo's data from the test InfluxDB", async () => {
    let panels = 0;
    for (const d of [...dashboardsOf(v1), ...dashboardsOf(everyTree)]) {
      const variable = d.templating.list.find((v) => v.name === 'equipment');
      const selected = typeof variable?.query === 'string' ? variable.query.split(',') : [];
      for (const p of d.panels) {
        for (const t of p.targets) {
          const r = await query(asGrafanaSends(t.query, d, p));
          const where = `${d.title} / ${p.title}: ${t.query}`;
          expect(r.error, where).toBeUndefined();
          expect(r.series ?? [], where).not.toHaveLength(0);
          const values = r.series!.flatMap((s) => s.values.flatMap((row) => row.slice(1)));
          expect(
            values.some((v) => v !== null),
            where,
          ).toBe(true);
          // A panel of the equipment variable shows those equipment, each as its own series, and no other.
          const shown = r.series!.map((s) => s.tags?.equipment ?? s.tags?.instrument);
          if (selected.length > 0) for (const e of shown) expect(selected, where).toContain(e);
          // A measured point's panel (titled `<point> (<unit>)`) has that equipment's values of that point.
          const point = /^(\w+) \(/.exec(p.title ?? '')?.[1];
          if (point && /^SELECT mean\(/.test(t.query) && !/"lab_result"/.test(t.query))
            for (const s of r.series!) {
              const level = levels.get(`${s.tags?.equipment}/${point}`);
              expect(level, `${where}: ${s.tags?.equipment}`).toBeDefined();
              for (const row of s.values) if (row[1] !== null) expect(Math.abs((row[1] as number) - level!), where).toBeLessThan(0.5);
            }
          panels++;
        }
      }
    }
    // Every point of the demo's equipment has its panel, besides the quality, lab and overview panels;
    // then the same for the demo with every other template (4 more dashboards: hot-water boiler,
    // crane, lab analyzer, pressure vessel).
    const points = (site: SiteConfig) => site.equipment.reduce((n, e) => n + e.points.length, 0);
    expect(panels).toBe(points(config) + 4 + 1 + 6 + points(every) + 8 + 2 + 6);
  }, 30_000);

  it("shows each alarm once in its last state, also one whose level changed (escalated): never an old level's state; also one raised before the time range", async () => {
    const overview = dashboardsOf(v1).find((d) => d.title?.endsWith('site overview'))!;
    const panel = overview.panels.find((p) => p.title === 'Alarms: last state')!;
    const r = await query(asGrafanaSends(panel.targets[0]!.query, overview, panel));
    expect(r.error).toBeUndefined();
    // As Grafana's table shows it: a row per series, its tags as columns beside the values.
    const rows = r.series!.flatMap((s) =>
      s.values.map((v) => ({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) }) as Record<string, unknown>),
    );
    const of = (rule: string) => rows.filter((row) => row.rule === rule);
    expect(of('overpressure')).toMatchObject([
      { equipment: 'B-07', level: 'red', state: 'normal', event: 'cleared', time: FROM + 280_000 },
    ]);
    expect(of('drum-level-low-low')).toMatchObject([{ equipment: 'B-07', level: 'red', state: 'normal' }]);
    expect(of('trapped-passenger')).toMatchObject([{ equipment: 'L-3', level: 'red', state: 'active_unacknowledged' }]);
    // An alarm still active whose last event is older than the dashboard's time range is listed too.
    expect(of('door-open-too-long')).toMatchObject([{ equipment: 'L-3', level: 'yellow', state: 'active_unacknowledged' }]);
    expect(rows).toHaveLength(4);
  });

  it("lists each equipment's risk now, also one last assessed before the time range (the gateway writes a change only)", async () => {
    const overview = dashboardsOf(v1).find((d) => d.title?.endsWith('site overview'))!;
    const panel = overview.panels.find((p) => p.title === 'Risk now')!;
    const r = await query(asGrafanaSends(panel.targets[0]!.query, overview, panel));
    expect(r.error).toBeUndefined();
    const old = r.series!.find((s) => s.tags?.equipment === 'V-old');
    expect(old?.values.map((v) => Object.fromEntries(old.columns.map((c, i) => [c, v[i]])))).toMatchObject([{ level: 'red', score: 17 }]);
    expect(r.series!.map((s) => s.tags?.equipment).sort()).toEqual([...every.equipment.map((e) => e.id), 'V-old'].sort());
  });

  it('every Flux query reads the bucket, a measurement and fields the gateway writes', () => {
    const ds = v2.get('provisioning/datasources/gateway.yaml')!;
    expect(ds).toContain('version: Flux');
    const measurements = new Set([...config.equipment.map((e) => e.category), 'alarm', 'risk', 'lab_result']);
    const fields = new Set([
      ...config.equipment.flatMap((e) => e.points.map((p) => p.name)),
      'quality',
      'value',
      'state',
      'type',
      'message',
      'score',
      'level_code',
      'level',
      'likelihood',
      'consequence',
    ]);
    let n = 0;
    for (const d of dashboardsOf(v2).filter((x) => x.title?.endsWith('(Flux)')))
      for (const p of d.panels)
        for (const t of p.targets) {
          expect(t.query).toMatch(/^from\(bucket: "telemetry"\)\n {2}\|> range\(start: v\.timeRangeStart, stop: v\.timeRangeStop\)/);
          expect(t.query).toContain('r.site == "demo-site"');
          const m = /r\._measurement == "([^"]+)"/.exec(t.query);
          expect(measurements.has(m?.[1] ?? ''), t.query).toBe(true);
          for (const f of t.query.matchAll(/r\._field == "([^"]+)"/g)) expect(fields.has(f[1]!), t.query).toBe(true);
          n++;
        }
    expect(n).toBeGreaterThan(40);
  });

  it("an export again replaces this site's dashboards and removes those it no longer makes, and no one else's", async () => {
    const out = join(dir, 'again');
    const site = demoWith(V1);
    cpSync(join(dir, 'v1'), out, { recursive: true });
    // A dashboard of an earlier export (a template the site no longer uses), one of another site, a
    // file of someone else, and one named and tagged like this site's but not made by an export.
    const crane = `${stableUid('demo-site', 'crane', 'crane', 'influxql')}.json`;
    writeFileSync(join(out, 'dashboards', crane), JSON.stringify({ tags: ['demo-site', 'gateway'] }));
    writeFileSync(join(out, 'dashboards', 'gw-plant-2-crane-00000000.json'), JSON.stringify({ tags: ['gateway', 'plant-2'] }));
    writeFileSync(join(out, 'dashboards', 'gw-demo-site-crane-00000000.json'), JSON.stringify({ tags: ['demo-site', 'gateway'] }));
    writeFileSync(join(out, 'dashboards', 'mine.json'), '{}');
    const second = await gatewayAsync(['grafana', 'export', '-c', site, '--out', out], SECRETS);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`Removed ${join(out, 'dashboards', crane)}`);
    expect(readdirSync(join(out, 'dashboards')).sort()).toEqual(
      [
        ...[...v1.keys()].filter((k) => k.startsWith('dashboards/')).map((k) => k.slice(11)),
        'gw-demo-site-crane-00000000.json',
        'gw-plant-2-crane-00000000.json',
        'mine.json',
      ].sort(),
    );
  }, 30_000);

  it('refuses a site without influx in one line, and --help loads nothing but the argument parser', async () => {
    const [r, none, flavor] = await Promise.all([
      gatewayAsync(['grafana', 'export', '-c', join(ROOT, 'config', 'demo.yaml'), '--out', join(dir, 'none')]),
      gatewayAsync(['grafana', 'export']),
      gatewayAsync(['grafana', 'export', '-c', join(ROOT, 'config', 'demo.yaml'), '--flavor', 'sql']),
    ]);
    expect(flavor.code).toBe(2);
    expect(flavor.stderr).toMatch(/^gateway grafana export: --flavor takes influxql, flux or both, not "sql" \(GW_ERR_USAGE\)\n/);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^influx: the site file has no influx section[^\n]*\n$/);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^gateway grafana export: needs the site file: gateway grafana export -c FILE \(GW_ERR_USAGE\)\n/);
    const help = traceSync([join(ROOT, 'gateway', 'cli.ts'), 'grafana', 'export', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--flavor');
    expect(packagesBeyond(help, traceSync(['--input-type=module', '--eval', '']))).toEqual(['@commander-js/extra-typings', 'commander']);
  }, 30_000);
});
