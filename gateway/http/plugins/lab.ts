// Lab results and their quality control: the instruments' latest results (as captured, with their
// QC status), and each control series (instrument, analyte, control level) with its target and its
// runs, for the dashboard's Levey-Jennings charts. The figures come from the lab service
// (gateway/lab/), handed over as a LabApi; both routes read only what it keeps in memory, so an
// answer is small and quick whatever the store holds.
import type { FastifyPluginAsync } from 'fastify';
import type { SiteConfig } from '../../../config/schema.js';
import type { LabResult, ResultQc } from '../../../drivers/common/result.js';
import type { QcApi, QcSeriesView } from '../../lab/qc.js';
import { errorSchema, sendError } from '../errors.js';

export type { QcApi, QcSeriesView, ResultQc };

/** What the HTTP API reads from the lab service. */
export interface LabApi {
  /** The last results the service keeps (a few hundred), newest last. */
  results: { recent(instrument?: string, limit?: number): readonly LabResult[] };
  /**
   * The QC service, when the site evaluates control samples; read at each request, so a service
   * that makes its QC at start can hand it over through a getter.
   */
  readonly qc?: QcApi | undefined;
}

export interface LabOptions {
  config: SiteConfig;
  lab: LabApi;
  now?: () => number;
}

/** The most results one answer gives: about what the lab service keeps in memory. */
export const MAX_RESULTS = 500;
/** The most runs of each control series one answer gives (a Levey-Jennings chart shows 20 to 100). */
export const MAX_RUNS = 1000;

const numberOrNull = { type: ['number', 'null'] } as const;
const qcSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['pending', 'passed', 'accepted', 'warning', 'rejected'] },
    rule: { type: 'string', description: 'The Westgard rule that fired (a control) or that held the analyte (a pending result)' },
    level: { type: 'string', description: 'The control level' },
    rules: { type: 'array', items: { type: 'string' } },
    z: { ...numberOrNull, description: "A control's distance from its target mean, in SDs" },
    since: { type: 'number', description: 'Pending since (epoch ms)' },
  },
} as const;
// `raw` (the record as received) is left out on purpose: a few hundred HL7 messages would make
// the answer megabytes, and the stored result keeps it for audit.
const resultSchema = {
  type: 'object',
  required: ['resultId', 'instrument', 'sampleId', 'analyte', 'value', 'flags', 'status', 'resultAt'],
  properties: {
    resultId: { type: 'string' },
    instrument: { type: 'string' },
    sampleId: { type: 'string' },
    analyte: { type: 'string' },
    value: { type: ['number', 'string', 'null'] },
    unit: { type: 'string' },
    flags: { type: 'array', items: { type: 'string' }, description: 'Abnormal flags as the instrument sent them' },
    status: { type: 'string', description: 'The result status the instrument gave (final, preliminary, correction...)' },
    resultAt: { type: 'string', description: 'ISO 8601' },
    operator: { type: 'string' },
    method: { type: 'string' },
    reference: { type: 'object', properties: { lo: { type: 'number' }, hi: { type: 'number' } } },
    control: {
      type: 'object',
      properties: { level: { type: 'string' } },
      description: 'Present when the result is of a control sample',
    },
    qc: qcSchema,
  },
} as const;
const seriesSchema = {
  type: 'object',
  required: ['instrument', 'analyte', 'level', 'target', 'state', 'points'],
  properties: {
    instrument: { type: 'string' },
    analyte: { type: 'string' },
    level: { type: 'string' },
    unit: { type: 'string' },
    target: { type: 'object', required: ['mean', 'sd'], properties: { mean: { type: 'number' }, sd: { type: 'number' } } },
    state: { type: 'string', enum: ['no-data', 'in-control', 'warning', 'rejected'] },
    rule: { type: 'string', description: 'The rule that fired on the last run' },
    points: {
      type: 'array',
      description: 'The runs, oldest first',
      items: {
        type: 'object',
        required: ['ts', 'sampleId', 'value', 'z', 'status', 'rules'],
        properties: {
          ts: { type: 'number' },
          sampleId: { type: 'string' },
          value: { type: 'number' },
          z: numberOrNull,
          status: { type: 'string', enum: ['accepted', 'warning', 'rejected'] },
          rules: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    truncated: { type: 'boolean', description: 'The series has more runs than `runs`: the last ones are given' },
  },
} as const;
const instrumentQuery = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  description: 'An instrument (equipment id); default: all',
} as const;

/** Two texts in a stable order. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export const labPlugin: FastifyPluginAsync<LabOptions> = async (app, opts) => {
  const { config, lab } = opts;
  const now = opts.now ?? Date.now;
  const known = new Set(config.equipment.map((e) => e.id));

  app.get(
    '/api/lab/results',
    {
      config: { role: 'viewer' },
      schema: {
        summary: `The latest lab results the gateway captured, newest first, with their QC status (at most ${MAX_RESULTS}; those kept in memory)`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            instrument: instrumentQuery,
            limit: { type: 'integer', minimum: 1, maximum: MAX_RESULTS, default: 100 },
            per_instrument: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_RESULTS,
              description: "At most this many of each instrument's newest (a busy instrument does not push a quiet one out)",
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['ts', 'results'],
            properties: { ts: { type: 'number' }, results: { type: 'array', items: resultSchema } },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const { instrument, limit, per_instrument: each } = req.query as { instrument?: string; limit: number; per_instrument?: number };
      if (instrument !== undefined && !known.has(instrument)) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no equipment ${instrument}`);
      // The service gives the newest last; a reader wants the newest first, and at most `limit` of them.
      // With per_instrument, every result the service keeps is looked at, and each instrument's newest taken.
      const wanted = each === undefined ? limit : MAX_RESULTS;
      const newest = lab.results.recent(instrument, wanted).slice(-wanted).reverse();
      if (each === undefined) return { ts: now(), results: newest };
      const taken = new Map<string, number>();
      const results: LabResult[] = [];
      for (const r of newest) {
        const n = taken.get(r.instrument) ?? 0;
        if (n >= each) continue;
        taken.set(r.instrument, n + 1);
        results.push(r);
        if (results.length === limit) break;
      }
      return { ts: now(), results };
    },
  );

  app.get(
    '/api/lab/qc',
    {
      config: { role: 'viewer' },
      schema: {
        summary:
          'Each control series (instrument, analyte, control level): its target mean and SD, its state, and its last runs with their z-scores and the Westgard rules that fired, for a Levey-Jennings chart',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            instrument: instrumentQuery,
            runs: { type: 'integer', minimum: 1, maximum: MAX_RUNS, default: 100, description: 'The last runs of each series' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['ts', 'series'],
            properties: {
              ts: { type: 'number' },
              series: { type: 'array', items: seriesSchema, description: 'Empty when the site evaluates no control samples' },
            },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const { instrument, runs } = req.query as { instrument?: string; runs: number };
      if (instrument !== undefined && !known.has(instrument)) return sendError(reply, 'GW_HTTP_NOT_FOUND', `no equipment ${instrument}`);
      // By instrument, analyte and level, so a chart keeps its place between two reads.
      const series = [...(lab.qc?.series(instrument) ?? [])]
        .sort((a, b) => byText(a.instrument, b.instrument) || byText(a.analyte, b.analyte) || byText(a.level, b.level))
        .map((s) => (s.points.length > runs ? { ...s, points: s.points.slice(-runs), truncated: true } : s));
      return { ts: now(), series };
    },
  );
};
