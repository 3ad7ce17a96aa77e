// A point's `pattern` applied to a peer's payload under a time limit. A regular expression can take
// exponential time on input that nearly matches (`^(\w+\s?)+$` on 30 bytes blocks for seconds), and
// no check of its text catches every such pattern; V8 does stop a running expression when a vm
// script's timeout expires, so each match runs as a small script in a context of its own.
import vm from 'node:vm';
import { PATTERN_TIMEOUT_MS } from './schema.js';

/** A match: the first capture group (undefined when the group took no part), or `null` when the pattern did not match. */
export type PatternResult = { ok: true; value: string | undefined | null } | { ok: false; reason: string };

/** A function applying `source` to a text, refusing with a reason when it takes longer than `timeoutMs`. */
export function timedPattern(source: string, timeoutMs = PATTERN_TIMEOUT_MS): (input: string) => PatternResult {
  // One context and one compiled script per pattern, made once: a run then costs about 0.1 ms (the watchdog thread), not a new context.
  const context = vm.createContext({ re: new RegExp(source), input: '' });
  const script = new vm.Script('{ const m = re.exec(input); m === null ? null : m[1]; }');
  return (input) => {
    context.input = input;
    try {
      return { ok: true, value: script.runInContext(context, { timeout: timeoutMs }) as string | undefined | null };
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT')
        return { ok: false, reason: `pattern took over ${timeoutMs} ms` };
      throw err;
    } finally {
      // The payload is not kept alive by the context until the next message.
      context.input = '';
    }
  };
}
