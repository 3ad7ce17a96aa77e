// Credentials inside URLs, removed from text before it leaves the process (log lines, API answers,
// messages on the terminal). A site file may carry `https://user:password@host/` or
// `...?token=...` in any URL (platform, MQTT broker, InfluxDB), and those URLs end up in log lines,
// error messages and stack traces: one function here, applied where text leaves, catches them all.

/** What replaces a credential. */
export const REDACTED = '***';

// scheme://userinfo@ -> scheme://***@. The user info runs up to the last `@` before the host's end
// (a password may hold an `@`); quotes and angle brackets end it, so that a URL inside JSON or a
// sentence cannot swallow the text after it. A backslash escape (JSON) is taken whole.
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/?#"'<>\\]|\\.)*@/gi;
// ?name=value or &name=value where the name says it is a credential. The value ends at the next
// parameter, fragment, quote or escape, which stay as they were (JSON stays JSON).
const SECRET_PARAM =
  /([?&;][^=&\s"'<>#?]*?(?:token|passw(?:or)?d|pwd|secret|key|sig(?:nature)?|auth|credential)[^=&\s"'<>#?]*=)[^&;\s#"'<>\\]*/gi;

/**
 * The text with the credentials of every URL in it replaced by `***`: user and password
 * (`scheme://***@host`, user-only forms too) and query parameters named like a token, password,
 * secret, key or signature. Text without `://` or `=` is returned as it is, without a regex run.
 */
export function redact(text: string): string {
  const hasScheme = text.includes('://');
  const hasParam = text.includes('=');
  if (!hasScheme && !hasParam) return text;
  let out = hasScheme ? text.replace(USERINFO, `$1${REDACTED}@`) : text;
  if (hasParam) out = out.replace(SECRET_PARAM, `$1${REDACTED}`);
  return out;
}

/** A URL fit for a log line or an answer: the same as redact(), named for what it takes. */
export const redactUrl = redact;

/**
 * A JSON-like value with every string in it redacted (API answers that carry URLs or error texts).
 * Objects and arrays are copied only where something changed.
 */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v: unknown) => {
      const r = redactDeep(v);
      if (r !== v) changed = true;
      return r;
    });
    return (changed ? out : value) as T;
  }
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = redactDeep(v);
      if (r !== v) changed = true;
      out[k] = r;
    }
    return (changed ? out : value) as T;
  }
  return value;
}
