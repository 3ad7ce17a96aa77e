// A laboratory result: a discrete record, not telemetry. It must arrive exactly once, with its sample
// id, so its id is stable: the same result read twice has the same resultId.
import { createHash } from 'node:crypto';

export interface LabResult {
  /** Stable: instrument + the instrument's own result sequence number, or a hash of the content. */
  resultId: string;
  instrument: string;
  sampleId: string;
  analyte: string;
  value: number | string | null;
  unit?: string;
  /** Abnormal flags as the instrument sent them (`H`, `L`, `N`, `A`...). */
  flags: string[];
  /** `final`, `preliminary`, `correction`... */
  status: string;
  /** ISO 8601. */
  resultAt: string;
  operator?: string;
  method?: string;
  /** Reference range, when the instrument sent one or the site file gives one. */
  reference?: { lo?: number; hi?: number };
  /**
   * The instrument marked it as a quality-control sample (an ASTM/HL7 QC flag, a file's QC column),
   * with the control's level when it said (`1`, `2`, `high`...). The gateway's QC also recognises
   * control samples by their sample id (the site file's pattern).
   */
  control?: { level?: string };
  /** What the gateway's quality control says of it (gateway/lab/qc.ts); absent where QC has nothing to say. */
  qc?: ResultQc;
  /** The record(s) as received, for audit. */
  raw?: string;
}

/**
 * A result's quality-control status. A control sample's own: `accepted`, `warning` (1-2s) or
 * `rejected`, with its level, the Westgard rules that fired and its z-score. A patient or sample
 * result of an analyte with control targets: `pending` while the analyte's last control of some level
 * was rejected (the rule, since when, epoch ms), `passed` once its controls have passed.
 */
export interface ResultQc {
  status: 'accepted' | 'warning' | 'rejected' | 'pending' | 'passed';
  level?: string;
  rules?: string[];
  z?: number;
  rule?: string;
  since?: number;
}

/** A result id from the instrument's own sequence number. */
export function resultIdFromSequence(instrument: string, sequence: string | number, analyte: string): string {
  return `${instrument}:${sequence}:${analyte}`;
}

/** A result id from the content, for instruments without a result sequence number. */
export function resultIdFromContent(r: Omit<LabResult, 'resultId' | 'raw'>): string {
  const key = JSON.stringify([r.instrument, r.sampleId, r.analyte, r.value, r.unit ?? '', r.resultAt, r.status]);
  return `${r.instrument}:${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}
