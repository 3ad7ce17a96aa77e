// Small HTTP pieces the InfluxDB writer and the history query share, free of the InfluxDB client
// library: the HTTP API imports the history query whether or not the site writes to InfluxDB.
import type { InfluxSection } from '../../config/schema.js';

/** At most `max` bytes of an answer's body; the rest is not read, and `cut` says there was more. */
export async function readBounded(res: Response, max: number): Promise<{ text: string; cut: boolean }> {
  const reader = res.body?.getReader();
  if (!reader) return { text: '', cut: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  let cut = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > max) {
      cut = true;
      break;
    }
  }
  await reader.cancel().catch(() => undefined);
  return { text: Buffer.concat(chunks).subarray(0, max).toString('utf8'), cut };
}

/** InfluxDB 1.x credentials as an Authorization header, when the site file gives a user. */
export function v1Authorization(config: Extract<InfluxSection, { api: 'v1' }>): Record<string, string> {
  return config.username !== undefined
    ? { Authorization: `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}` }
    : {};
}
