// What a compiled rule is, as text: two specs with the same fingerprint evaluate alike. A hot reload
// (gateway/reload.ts) keeps every state of a rule whose fingerprint did not change.
import type { RuleSpec } from './types.js';

/**
 * The spec with each compiled expression as its source text, and the equipment's limits: a limit
 * is compiled into the expressions that name it (`steam_pressure >= hi_limit`), so a changed limit
 * changes the rules of its equipment even when their text is the same.
 */
export function specFingerprint(spec: RuleSpec, limits: Readonly<Record<string, unknown>> | undefined): string {
  return JSON.stringify({ spec, limits: limits ?? {} }, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && 'evaluate' in value && 'source' in value)
      return { source: (value as { source: string }).source };
    return value;
  });
}
