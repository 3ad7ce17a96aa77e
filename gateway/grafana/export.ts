// `gateway grafana export`: a Grafana provisioning tree made from the site file. Data sources for the
// site's InfluxDB (InfluxQL, Flux or both), a dashboard provider, and the dashboards of
// gateway/grafana/dashboards.ts. Secrets are never written: the data sources read them from Grafana's
// environment (`${INFLUX_TOKEN}`, which Grafana expands in provisioning files).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { SiteConfig } from '../../config/schema.js';
import type { Template } from '../../config/templates.js';
import { buildDashboards, possibleFiles, stableUid, type Exported } from './dashboards.js';
import type { Flavor } from './queries.js';

export type FlavorChoice = Flavor | 'both';

export interface ExportOptions {
  /** The site file's own text: where its secrets come from (`${NAME}`), never their values. */
  siteText: string;
  flavor?: FlavorChoice | undefined;
  /** Where Grafana finds the dashboard files (the provider's path). */
  dashboardsPath?: string | undefined;
  /** The Grafana folder the dashboards go in. */
  folder?: string | undefined;
}

export interface ExportTree {
  /** Path under the output folder to its text. */
  files: Map<string, string>;
  /** Environment variables Grafana needs, each with what it holds. */
  secrets: Array<{ variable: string; holds: string }>;
  flavors: Flavor[];
  /** File names under dashboards/ that an export of this site may make: the only ones it removes. */
  own: Set<string>;
}

export class ExportError extends Error {
  override name = 'ExportError';
}

/** The environment variable a secret of the site file is written as (`${INFLUX_TOKEN}`), else `fallback`. */
function secretVariable(siteText: string, key: 'token' | 'password', fallback: string): string {
  let influx: unknown;
  try {
    influx = (parse(siteText) as { influx?: unknown } | null)?.influx;
  } catch {
    return fallback;
  }
  const value = influx && typeof influx === 'object' ? (influx as Record<string, unknown>)[key] : undefined;
  const m = typeof value === 'string' ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}$/.exec(value.trim()) : null;
  return m ? m[1]! : fallback;
}

/** A literal value of a provisioning file: Grafana expands `$NAME` there, `$$` is a dollar. */
const literal = (s: string) => s.replace(/\$/g, '$$$$');

/**
 * The URL without user and password: those go in the data source's own fields. A URL that cannot be
 * taken apart is refused (the gateway cannot write to it either): written as it is, it would carry
 * any password it holds into a file meant to be copied around.
 */
function plainUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ExportError(
      `influx.url: "${url.replace(/^(https?:\/\/)[^@]*@/, '$1...@')}" is not a URL Grafana or the gateway can use; correct it in the site file`,
    );
  }
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
}

export function exportTree(config: SiteConfig, templates: ReadonlyMap<string, Template>, o: ExportOptions): ExportTree {
  const influx = config.influx;
  if (!influx)
    throw new ExportError(
      'influx: the site file has no influx section, so the gateway writes nothing Grafana could read; add one (docs/configuration.md)',
    );
  const site = config.gateway.site;
  const choice = o.flavor ?? (influx.api === 'v1' ? 'influxql' : 'both');
  const flavors: Flavor[] = choice === 'both' ? ['influxql', 'flux'] : [choice];
  const secrets: ExportTree['secrets'] = [];
  const datasources: Array<Record<string, unknown>> = [];
  const uids = new Map<Flavor, string>();
  const url = literal(plainUrl(influx.url));
  // InfluxDB 1.x answers Flux with the bucket database/retention-policy.
  const bucket = influx.api === 'v1' ? `${influx.database}/${influx.retention_policy ?? 'autogen'}` : influx.bucket;
  // Each flavor's data source reads the same secret.
  const secret =
    influx.api === 'v1'
      ? influx.password !== undefined
        ? secretVariable(o.siteText, 'password', 'INFLUX_PASSWORD')
        : undefined
      : secretVariable(o.siteText, 'token', 'INFLUX_TOKEN');
  if (secret)
    secrets.push({
      variable: secret,
      holds:
        influx.api === 'v1'
          ? `the password of InfluxDB user ${influx.username ?? ''}`
          : `an InfluxDB API token that may read bucket ${influx.bucket}`,
    });
  for (const flavor of flavors) {
    const uid = stableUid(site, `${flavor}-datasource`);
    uids.set(flavor, uid);
    const ds: Record<string, unknown> = {
      name: `${site} ${flavorName(flavor)}`,
      uid,
      type: 'influxdb',
      access: 'proxy',
      url,
      editable: false,
    };
    if (influx.api === 'v1') {
      if (flavor === 'influxql') {
        ds.jsonData = { dbName: literal(influx.database), httpMode: 'GET' };
        if (influx.username !== undefined) ds.user = literal(influx.username);
        if (secret) ds.secureJsonData = { password: `\${${secret}}` };
      } else {
        // InfluxDB 1.8 answers Flux (flux-enabled = true) with the bucket database/retention-policy and
        // the token user:password.
        ds.jsonData = { version: 'Flux', organization: '-', defaultBucket: literal(bucket) };
        if (influx.username !== undefined) ds.secureJsonData = { token: `${literal(influx.username)}:${secret ? `\${${secret}}` : ''}` };
      }
    } else {
      if (flavor === 'influxql') {
        // InfluxQL on InfluxDB 2.x and 3.x: the bucket's database mapping (DBRP), the token in a header.
        ds.jsonData = { dbName: literal(influx.bucket), httpMode: 'GET', httpHeaderName1: 'Authorization' };
        ds.secureJsonData = { httpHeaderValue1: `Token \${${secret}}` };
      } else {
        ds.jsonData = { version: 'Flux', organization: literal(influx.org), defaultBucket: literal(influx.bucket) };
        ds.secureJsonData = { token: `\${${secret}}` };
      }
    }
    datasources.push(ds);
  }

  const files = new Map<string, string>();
  files.set(
    'provisioning/datasources/gateway.yaml',
    `# Generated by gateway grafana export from the site file of ${site}: the InfluxDB data sources of its
# dashboards. Secrets are Grafana's environment variables, expanded when Grafana reads this file.
${stringify({ apiVersion: 1, datasources }, { lineWidth: 0 })}`,
  );
  const folder = o.folder ?? `Gateway ${site}`;
  const path = o.dashboardsPath ?? `/var/lib/grafana/dashboards/${site}`;
  files.set(
    'provisioning/dashboards/gateway.yaml',
    `# Generated by gateway grafana export: Grafana loads the dashboards of site ${site} from the folder
# below (copy the export's dashboards/ there); an export written again replaces them (same uids).
${stringify(
  {
    apiVersion: 1,
    providers: [
      {
        name: `gateway-${site}`,
        orgId: 1,
        folder: literal(folder),
        type: 'file',
        disableDeletion: false,
        allowUiUpdates: false,
        updateIntervalSeconds: 30,
        options: { path: literal(path), foldersFromFilesStructure: false },
      },
    ],
  },
  { lineWidth: 0 },
)}`,
  );
  const retentionPolicy = influx.api === 'v1' ? influx.retention_policy : undefined;
  const exported: Exported[] = [];
  for (const flavor of flavors)
    exported.push(
      ...buildDashboards({
        config,
        templates,
        flavor,
        datasourceUid: uids.get(flavor)!,
        bucket,
        retentionPolicy,
        titleSuffix: flavors.length > 1 ? ` (${flavorName(flavor)})` : '',
      }),
    );
  for (const d of exported) files.set(`dashboards/${d.file}`, `${JSON.stringify(sortedKeys(d.dashboard), null, 2)}\n`);
  return { files, secrets, flavors, own: possibleFiles(site, templates) };
}

const flavorName = (flavor: Flavor) => (flavor === 'influxql' ? 'InfluxQL' : 'Flux');

/** Keys in order at every level: the same dashboard is the same text. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/**
 * Writes the tree under `out`, each file whole (a temporary file renamed over it). A dashboard file of
 * an earlier export of this site that this one no longer makes (a template no longer used) is
 * removed, so Grafana drops it: only a file named as one of this site's own (`tree.own`) and tagged
 * as one. Tags alone are not enough: a site called `gateway` or `overview` has another site's tags.
 * Returns the files written and removed, relative to `out`.
 */
export function writeTree(out: string, site: string, tree: ExportTree): { written: string[]; removed: string[] } {
  const written: string[] = [];
  for (const [rel, text] of [...tree.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const file = join(out, rel);
    mkdirSync(join(file, '..'), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    // Readable by Grafana's own user: nothing secret is in them.
    writeFileSync(temp, text, { mode: 0o644 });
    try {
      renameSync(temp, file);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    written.push(rel);
  }
  const removed: string[] = [];
  const dir = join(out, 'dashboards');
  for (const name of readdirSync(dir).sort()) {
    const rel = `dashboards/${name}`;
    if (!tree.own.has(name) || tree.files.has(rel)) continue;
    let tags: unknown;
    try {
      tags = (JSON.parse(readFileSync(join(dir, name), 'utf8')) as { tags?: unknown }).tags;
    } catch {
      continue;
    }
    if (Array.isArray(tags) && tags.includes('gateway') && tags.includes(site)) {
      rmSync(join(dir, name));
      removed.push(rel);
    }
  }
  return { written, removed };
}
