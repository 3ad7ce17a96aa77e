// What the soak test (tests/integration/soak.test.ts) and the soak benchmark (bench/soak.ts) share:
// a live-stream client that reads the way the dashboard does, a least-squares slope, and the
// memory figures of a process read from /proc.
import { readFileSync } from 'node:fs';

/** One client of /api/stream: it reads and parses every event, as the dashboard does, until closed. */
export interface LiveStream {
  /** Readings and alarm events parsed so far. */
  counts(): { readings: number; alarms: number; bytes: number };
  /** Times the stream ended or failed and was opened again (the gateway drops a client that falls 1 MiB behind). */
  reconnects(): number;
  close(): void;
}

/**
 * Opens the live stream with a Bearer token and reads it: events split on blank lines, data parsed as
 * JSON. A stream that ends is opened again after 2 s, as the dashboard does.
 */
export function openLiveStream(base: string, token: string): LiveStream {
  const controller = new AbortController();
  const counts = { readings: 0, alarms: 0, bytes: 0 };
  let reconnects = 0;
  const onChunk = (chunk: string) => {
    const event = /^event: (.+)$/m.exec(chunk)?.[1];
    const data = /^data: (.+)$/m.exec(chunk)?.[1];
    if (!event || !data) return;
    const parsed = JSON.parse(data) as unknown;
    if (event === 'readings') counts.readings += (parsed as unknown[]).length;
    else if (event === 'alarm') counts.alarms++;
  };
  void (async () => {
    for (let first = true; !controller.signal.aborted; first = false) {
      if (!first) {
        reconnects++;
        await new Promise((r) => setTimeout(r, 2000));
      }
      try {
        const res = await fetch(`${base}/api/stream`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
        if (!res.ok || !res.body) continue;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          counts.bytes += value.byteLength;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            onChunk(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // Aborted at the end, or the connection broke: the loop opens it again unless aborted.
      }
    }
  })();
  return { counts: () => ({ ...counts }), reconnects: () => reconnects, close: () => controller.abort() };
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxy / sxx;
}

/** Resident memory now (VmRSS) and at its peak so far (VmHWM), in bytes, from /proc/PID/status. */
export function residentMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** utime + stime of a process in seconds, from /proc/PID/stat (Linux's USER_HZ is 100). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
