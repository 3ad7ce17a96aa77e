// MQTT topic filters as the equipment entries write them, and matching a received topic against
// them: the driver checks every message itself rather than trusting the broker to send only what
// was subscribed.

/** Why `filter` is not a valid MQTT topic filter, or undefined when it is one. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'an empty topic filter';
  if (Buffer.byteLength(filter) > 1024) return 'a topic filter of at most 1024 bytes';
  if (filter.includes('\u0000')) return 'a topic filter without NUL characters';
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return '"#" only as the whole last level (sensors/#)';
    if (level.includes('+') && level !== '+') return '"+" only as a whole level (sensors/+/state)';
  }
  return undefined;
}

/** A topic a message was published to never has wildcards (a broker that sends one is refused). */
export function isTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
}

/** Whether `topic` matches `filter` (MQTT 3.1.1 4.7; a filter starting with a wildcard does not match `$` topics). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
