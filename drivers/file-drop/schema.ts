import { resolve } from 'node:path';
import { z } from 'zod';
import { duration, identifier, pointName, size } from '../common/primitives.js';
import { parseJsonPath, parseJsonRecordsPath, parseXmlPath } from './paths.js';
import { isTimeZone } from '../common/time-zone.js';
import { timeFormatProblem } from './time.js';

const positive = { error: 'expected more than 0' };

/** Where a field is in a record: a CSV column's header name or number (from 1), or an XML/JSON path. */
const field = z
  .union([z.string().min(1), z.int().min(1)], { error: 'expected a column name, a column number (from 1) or a path' })
  .meta({ examples: ['样本号', 3, 'Sample/@id'] });

const optionalField = (description: string) => field.optional().meta({ description });

export const FORMATS = ['csv', 'tsv', 'xml', 'json'] as const;
export const ENCODINGS = ['utf-8', 'gbk', 'gb18030'] as const;
/** Names never taken, whatever the pattern: files being written under a temporary name. */
export const DEFAULT_IGNORE = ['*.tmp', '*.part', '~*', '.*'];

const csvOptions = z
  .strictObject({
    delimiter: z
      .string()
      .length(1, { error: 'expected one character' })
      .optional()
      .meta({ description: 'Field delimiter. Default: `,` for csv, a tab for tsv.', examples: [',', ';', '\t'] }),
    quote: z
      .string()
      .length(1, { error: 'expected one character' })
      .default('"')
      .meta({ description: 'Quote character around fields that hold delimiters or line ends; doubled inside one.', examples: ['"'] }),
    header: z
      .boolean()
      .default(true)
      .meta({
        description:
          '`true`: the first line (after skip_lines) names the columns and the mapping refers to them by name (or number); `false`: there is none and the mapping gives column numbers, from 1.',
        examples: [true, false],
      }),
    skip_lines: z
      .int()
      .min(0)
      .max(1000)
      .default(0)
      .meta({ description: 'Lines before the header (or the first row): an instrument name, an export date...', examples: [0, 2] }),
    decimal: z
      .enum(['.', ','])
      .default('.')
      .meta({
        description: 'Decimal separator of numbers (`,` in files from Chinese and European locales: `5,21`).',
        examples: ['.', ','],
      }),
    encoding: z
      .enum(ENCODINGS)
      .default('utf-8')
      .meta({
        description:
          'Character encoding. Chinese instrument software often writes GBK (or GB18030). A file that starts with a UTF-8 byte order mark is read as UTF-8 whatever is declared (the mark says so), and the mark is dropped.',
        examples: ['utf-8', 'gbk'],
      }),
  })
  .prefault({})
  .meta({ description: 'How a CSV or TSV file is written (format csv or tsv).' });

const xmlOptions = z
  .strictObject({
    record: z
      .string()
      .min(1)
      .superRefine((p, ctx) => {
        try {
          parseXmlPath(p, { absolute: true });
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .meta({
        description:
          'Path from the root element to the element that is one record (one result, or one sample in a wide mapping): element names separated by `/`, `*` for any name; namespace prefixes are ignored.',
        examples: ['Results/Sample/Analyte', 'Export/*/Result'],
      }),
    encoding: z
      .enum(ENCODINGS)
      .optional()
      .meta({
        description:
          'Character encoding, when the file\'s XML declaration does not say it (or says it wrongly). Default: the declaration\'s (`<?xml version="1.0" encoding="GBK"?>`), else UTF-8.',
        examples: ['gbk'],
      }),
  })
  .meta({ description: 'Where the records are in an XML file (format xml).' });

const jsonOptions = z
  .strictObject({
    records: z
      .string()
      .default('')
      .superRefine((p, ctx) => {
        try {
          parseJsonRecordsPath(p);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .meta({
        description:
          "Where the array of records is: empty (the file is an array), a dotted path (`data.results`), or arrays inside arrays (`samples[].results`: each sample's results; a field path `../id` then reads the sample).",
        examples: ['', 'data.results', 'samples[].results'],
      }),
  })
  .prefault({})
  .meta({ description: 'Where the records are in a JSON file (format json). A JSON file is read whole: keep max_file_size small.' });

const wideAnalyte = z
  .strictObject({
    analyte: z
      .string()
      .min(1)
      .meta({ description: 'The analyte (test code) of the results in this column.', examples: ['GLU', '葡萄糖'] }),
    value: field.meta({ description: 'Where its value is: a column name or number, or a path.', examples: ['GLU', 5, 'Glucose/@value'] }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Its unit.', examples: ['mmol/L'] }),
  })
  .meta({ description: 'One analyte of a wide layout: a column (or path) per analyte.' });

const mapping = z
  .strictObject({
    sample_id: field.meta({
      description: 'Where the sample id is (a column name or number, or a path).',
      examples: ['样本号', 1, '../@id'],
    }),
    analyte: optionalField('Where the analyte (test code or name) is; leave out for a wide layout (`analytes`).'),
    value: optionalField("Where the result's value is; leave out for a wide layout (`analytes`)."),
    unit: optionalField('Where the unit is.'),
    analytes: z.array(wideAnalyte).min(1).optional().meta({
      description:
        'A wide layout: each record (row) holds several analytes, one per column. Each listed column gives one result; an empty cell gives none (not measured). Instead of analyte, value and unit.',
    }),
    value_type: z
      .enum(['number', 'auto', 'text'])
      .default('number')
      .meta({
        description:
          '`number`: every value must be a number (a file with one that is not is rejected); `auto`: numbers are numbers and other text (`<0.1`, `Positive`, `阴性`) is kept as text; `text`: every value as written.',
        examples: ['number', 'auto'],
      }),
    time: optionalField("Where the result's time is. Without it, a result's time is the file's modification time."),
    time_format: z
      .string()
      .default('iso')
      .superRefine((f, ctx) => {
        const problem = timeFormatProblem(f);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .meta({
        description:
          '`iso` (2026-12-03T10:20:00, a space for the T, with or without a zone), `epoch_s`, `epoch_ms`, or a pattern of YYYY, YY, MM, M, DD, D, HH, H, mm, ss, SSS and literal text.',
        examples: ['iso', 'YYYY/MM/DD HH:mm:ss', 'DD.MM.YYYY HH:mm', 'YYYY年MM月DD日 HH:mm:ss'],
      }),
    time_zone: z
      .string()
      .refine(isTimeZone, { error: 'expected an IANA time zone name such as Asia/Shanghai or UTC' })
      .optional()
      .meta({
        description:
          "Time zone of times written without one (an ISO time with Z or an offset keeps it). Default: the site's, gateway.timezone (itself the machine's by default).",
        examples: ['Asia/Shanghai', 'UTC'],
      }),
    status: optionalField('Where the result status is (`F`/`final`, `P`/`preliminary`, `C`/`correction`...). Default: final.'),
    flags: optionalField('Where the abnormal flags are (`H`, `L`, `N`, `A`...; several separated by spaces, commas or ~).'),
    operator: optionalField('Where the operator is.'),
    method: optionalField('Where the method is.'),
    control: optionalField(
      'Where the instrument marks a quality-control sample: a record whose cell there is not empty, 0, N, no, false or 否 is a control.',
    ),
    control_level: optionalField('Where the control level is (`1`, `2`, `high`...); a record with one is a control.'),
    reference_lo: optionalField('Where the low end of the reference range is.'),
    reference_hi: optionalField('Where the high end of the reference range is.'),
  })
  .meta({
    description: 'Which field of a record is what. In a CSV a column name (header: true) or number (from 1); in XML and JSON a path.',
  });

export const fileDropConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['uts-files'] }),
    type: z.literal('file-drop').meta({ description: 'An instrument whose software writes result files into a folder.' }),
    folder: z
      .string()
      .min(1)
      .meta({
        description: 'The folder the instrument writes into: local, or a mounted share (SMB, NFS).',
        examples: ['/srv/exports/uts-1'],
      }),
    pattern: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .transform((p) => (typeof p === 'string' ? [p] : p))
      .meta({
        description:
          'Names of the files to take: `*` any text, `?` one character; case is ignored (`*.csv` takes RESULT.CSV). One or several.',
        examples: ['*.csv', ['*.xml', '*.XML']],
      }),
    ignore: z
      .array(z.string().min(1))
      .default(DEFAULT_IGNORE)
      .meta({
        description:
          'Names never taken, even when they match the pattern: files being written under a temporary name, to be renamed into place when complete.',
        examples: [DEFAULT_IGNORE],
      }),
    stable_for: duration.prefault('2s').meta({
      description:
        "A file is taken once its size and modification time have not changed for this long (it is complete). With a ready_marker, the marker decides instead. Must be longer than the writer's longest pause.",
      'x-examples': ['2s', '30s'],
    }),
    ready_marker: z
      .string()
      .regex(/^\.[\w.-]+$/, { error: 'expected a suffix such as .done or .ok' })
      .optional()
      .meta({
        description:
          'A file is taken only once a sidecar named after it with this suffix exists (`run-7.csv.done`), whatever its age; the marker goes with its file to the archive.',
        examples: ['.done', '.ok'],
      }),
    poll_interval: duration
      .refine((ms) => ms >= 100, { error: 'expected at least 100ms' })
      .prefault('1s')
      .meta({
        description: 'How often the folder is scanned. A scan, not change notifications: it works on mounted shares, where those do not.',
        'x-examples': ['1s', '10s'],
      }),
    max_files_per_scan: z
      .int()
      .min(1)
      .max(10_000)
      .default(50)
      .meta({ description: 'Files taken per scan, at most (oldest first); the rest wait for the next scan.', examples: [50] }),
    archive: z
      .union([z.string().min(1), z.literal(false)])
      .optional()
      .meta({
        description:
          'Where a file goes once its results are stored (a name already there gets a suffix, never overwritten); `false`: left where it is (taken once all the same: the gateway remembers files by their content). Default: `<folder>/archive`.',
        examples: ['/srv/exports/uts-1/archive', false],
      }),
    rejected: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'Where a file that cannot be read goes, with `<name>.reason` beside it. Default: `<folder>/rejected`.',
        examples: ['/srv/exports/uts-1/rejected'],
      }),
    max_file_size: size
      .refine((n) => n > 0, positive)
      .optional()
      .meta({
        description: 'Larger files are rejected unread. Default: 1GiB, and 16MiB for json (a JSON file is read whole; at most 64MiB).',
        'x-examples': ['1GiB', '16MiB'],
      }),
    format: z.enum(FORMATS).meta({ description: 'How the instrument writes its results.', examples: ['csv', 'xml'] }),
    csv: csvOptions,
    xml: xmlOptions.optional(),
    json: jsonOptions,
    mapping,
  })
  .superRefine((c, ctx) => {
    const issue = (path: Array<string | number>, message: string) => ctx.addIssue({ code: 'custom', path, message });
    const m = c.mapping;
    if (m.analytes) {
      for (const k of ['analyte', 'value', 'unit'] as const)
        if (m[k] !== undefined)
          issue(['mapping', k], 'a wide layout (analytes) gives the analyte, value and unit per column: leave this out');
    } else {
      if (m.analyte === undefined) issue(['mapping', 'analyte'], 'required (or analytes, for a wide layout)');
      if (m.value === undefined) issue(['mapping', 'value'], 'required (or analytes, for a wide layout)');
    }
    const fields: Array<[Array<string | number>, string | number]> = [];
    for (const [k, v] of Object.entries(m))
      if (typeof v === 'string' || typeof v === 'number')
        if (!['value_type', 'time_format', 'time_zone'].includes(k)) fields.push([[k], v]);
    m.analytes?.forEach((a, i) => fields.push([['analytes', i, 'value'], a.value]));
    const tabular = c.format === 'csv' || c.format === 'tsv';
    for (const [path, v] of fields) {
      if (tabular) {
        if (!c.csv.header && typeof v !== 'number') issue(['mapping', ...path], 'header is false: expected a column number (from 1)');
      } else if (typeof v === 'number') {
        issue(['mapping', ...path], `expected a path in the ${c.format} record, not a column number`);
      } else {
        try {
          if (c.format === 'xml') parseXmlPath(v);
          else parseJsonPath(v);
        } catch (err) {
          issue(['mapping', ...path], (err as Error).message);
        }
      }
    }
    if (c.format === 'xml' && !c.xml) issue(['xml'], 'format xml needs xml.record: the path to the record element');
    if (c.format !== 'xml' && c.xml) issue(['xml'], `applies to format xml, not ${c.format}`);
    const names = m.analytes?.map((a) => a.analyte) ?? [];
    names.forEach((a, i) => {
      if (names.indexOf(a) !== i) issue(['mapping', 'analytes', i, 'analyte'], `"${a}" is listed twice`);
    });
    // The archive and rejected folders are not scanned: the watched folder itself cannot be one.
    // Resolved as the driver resolves them: `./x/`, `x/.` and `/abs/x` are one folder (archiving into
    // the watched folder would take each file again, as `run-7-2.csv`, `run-7-2-2.csv`... forever).
    const same = (p: string) => resolve(p) === resolve(c.folder);
    if (typeof c.archive === 'string' && same(c.archive)) issue(['archive'], 'must be another folder than the one watched');
    if (c.rejected !== undefined && same(c.rejected)) issue(['rejected'], 'must be another folder than the one watched');
    if (c.format === 'json' && c.max_file_size !== undefined && c.max_file_size > 64 * 1024 ** 2)
      issue(['max_file_size'], 'a JSON file is read whole: expected at most 64MiB');
  })
  .meta({ title: 'file-drop connection' });

export const fileDropPointSchema = z
  .strictObject({
    name: pointName.meta({
      description: 'Point name, unique within the equipment: an analyte whose results are also readings.',
      examples: ['GLU'],
    }),
    unit: z
      .string()
      .optional()
      .meta({ description: 'Engineering unit.', examples: ['mmol/L'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'file-drop point' });

export const fileDropEquipmentSchema = z
  .strictObject({
    points: z.array(fileDropPointSchema).default([]).meta({
      description:
        'An instrument that writes files sends results, not polled points; a point named after an analyte makes its results readings too.',
    }),
  })
  .meta({ title: 'equipment on a file-drop connection' });

export type FileDropConnection = z.output<typeof fileDropConnectionSchema>;
export type FileDropMapping = FileDropConnection['mapping'];

/** Ways the simulated instrument can misbehave (`none`: every file written whole, then renamed into place). */
export const FILE_FAULTS = ['none', 'slow', 'truncated', 'mixed'] as const;
export type FileFault = (typeof FILE_FAULTS)[number];

/** The simulated file-exporting instrument: writes result files into a folder. */
export const fileInstrumentSimulatorSchema = z
  .strictObject({
    type: z.literal('file-instrument').meta({
      description:
        'An instrument whose software exports result files: CSV in GBK with Chinese analyte names and decimal commas, and XML, in turn.',
    }),
    folder: z
      .string()
      .min(1)
      .meta({ description: 'Where it writes (the folder of a file-drop connection).', examples: ['./.data/lab-files'] }),
    interval: duration
      .refine((ms) => ms > 0, positive)
      .prefault('30s')
      .meta({ description: 'Time between files.', 'x-examples': ['30s'] }),
    samples: z
      .int()
      .min(1)
      .max(10_000)
      .default(3)
      .meta({ description: 'Samples per file.', examples: [3] }),
    controls: z
      .boolean()
      .default(true)
      .meta({
        description: 'Each file also holds control samples (ids QC1-... and QC2-..., levels 1 and 2), for quality control.',
        examples: [true],
      }),
    formats: z
      .array(z.enum(['csv', 'xml']))
      .min(1)
      .default(['csv', 'xml'])
      .meta({ description: 'The formats it writes, in turn.', examples: [['csv', 'xml'], ['csv']] }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated values and faults.', examples: [1] }),
    fault: z
      .enum(FILE_FAULTS)
      .default('none')
      .meta({
        description:
          'How it writes: `none` (each file whole under a temporary name, then renamed into place); `slow` (appended in chunks over fault_duration under its final name: the stable_for rule must wait); `truncated` (cut in the middle of a row: the gateway must reject it); `mixed` (seeded: mostly none, sometimes slow, sometimes truncated).',
        examples: ['none', 'mixed'],
      }),
    fault_duration: duration.prefault('3s').meta({ description: 'How long a slow file takes to write.', 'x-examples': ['3s'] }),
  })
  .meta({ title: 'File-exporting instrument simulator' });

export type FileInstrumentConfig = z.output<typeof fileInstrumentSimulatorSchema>;
