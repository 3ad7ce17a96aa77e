// A log line that may come once per message or per value (a bad payload, a refused packet, an
// oversized value) comes at most once per interval instead: the first at once, then one per interval
// saying how many were not logged. What it counts is counted elsewhere, every time.

export function rateLimited(intervalMs = 60_000): (log: (notLogged: number) => void, now?: number) => void {
  let last = -Infinity;
  let skipped = 0;
  return (log, now = Date.now()) => {
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    last = now;
    const n = skipped;
    skipped = 0;
    log(n);
  };
}
