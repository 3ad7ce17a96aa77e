// What `gateway init` reads of the device, once: each Modbus point's registers with the driver's own
// decoding (so the value shown is the value the gateway will report), or an OPC UA server's variables
// by browsing. It never retries: a device that does not answer is said in one line, and the file
// is written with placeholders if the user wants it.
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { BrowsedVariable } from '../../drivers/opcua/browse.js';
import { describeValue } from './site-file.js';

/** A point to read: its name, its driver keys (address and type, or node) and the template's unit. */
export interface PointToRead {
  name: string;
  keys: Record<string, unknown>;
  unit?: string | undefined;
}

/** What a scan read of each point (`1.25 MPa`, `read failed: exception 2: illegal data address`), by name. */
/** `answered`: requests the unit answered, an exception included; `valued`: points that gave a value. */
export type ScanResult = { reached: true; reads: Map<string, string>; answered: number; valued: number } | { reached: false; why: string };

/** Reads each Modbus point once, one request per point (a first site has a few dozen at most). */
export async function scanModbus(
  connection: Record<string, unknown>,
  unit: number,
  points: readonly PointToRead[],
  log: Logger,
): Promise<ScanResult> {
  const { modbusRtuConnectionSchema, modbusTcpConnectionSchema, modbusPointSchema } = await import('../../drivers/modbus/schema.js');
  const { createModbusLink } = await import('../../drivers/modbus/link.js');
  const { compilePoint, pointValue } = await import('../../drivers/modbus/points.js');
  const schema = connection.type === 'modbus-rtu' ? modbusRtuConnectionSchema : modbusTcpConnectionSchema;
  const conn = schema.parse({ id: 'init', ...connection });
  const link = createModbusLink(conn, log);
  const where = conn.type === 'modbus-rtu' ? conn.path : `${conn.host}:${conn.port}`;
  try {
    await link.start();
    if (!link.connected) return { reached: false, why: `cannot reach ${where} (${conn.type}): ${link.downReason}` };
    const reads = new Map<string, string>();
    let answered = 0;
    let valued = 0;
    let timeouts = 0;
    for (const p of points) {
      // A unit that answered nothing twice is not there (or not this unit id): the rest would each
      // wait their timeout for the same news.
      if (answered === 0 && timeouts >= 2) {
        reads.set(p.name, 'not read: the unit answered no request');
        continue;
      }
      const parsed = modbusPointSchema.safeParse({ name: p.name, ...p.keys });
      if (!parsed.success) {
        reads.set(p.name, `not read: ${parsed.error.issues[0]!.message}`);
        continue;
      }
      const compiled = compilePoint(parsed.data, 'ABCD');
      try {
        const words = await link.read(unit, compiled.area, compiled.offset, compiled.count);
        answered++;
        const v = pointValue(compiled, words, compiled.offset);
        if (!v.bad) valued++;
        reads.set(p.name, v.bad ? `read, bad: ${v.bad}` : `read ${describeValue(v.value, p.unit)}`);
      } catch (err) {
        const message = (err as Error).message.split('\n')[0]!;
        // An exception is an answer: the device is there, the address is not.
        if (/^exception/.test(message)) answered++;
        if (/^timeout/.test(message)) timeouts++;
        reads.set(p.name, `read failed: ${message}`);
      }
    }
    return { reached: true, reads, answered, valued };
  } finally {
    await link.stop();
  }
}

/** Letters and digits only, lower case: `DoorOpen`, `door_open` and `Door Open` are one name. */
export function looseName(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

/** The browse name at the end of a browse path (`/1:Lift3/1:DoorOpen` → DoorOpen). */
export function browseNameOf(v: BrowsedVariable): string {
  return (v.path.split('/').pop() ?? '').replace(/^\d+:/, '');
}

/**
 * The variable each name stands for, by browse name without regard to case, underscores, dashes and
 * spaces; the first one found (breadth first: nearest the top) where several have the name.
 */
export function matchVariables(names: readonly string[], vars: readonly BrowsedVariable[]): Map<string, BrowsedVariable> {
  const byName = new Map<string, BrowsedVariable>();
  for (const v of vars) {
    const key = looseName(browseNameOf(v));
    if (key && !byName.has(key)) byName.set(key, v);
  }
  const out = new Map<string, BrowsedVariable>();
  for (const n of names) {
    const v = byName.get(looseName(n));
    if (v) out.set(n, v);
  }
  return out;
}

/** For each name, every variable that matchVariables would take for it, nearest the top first. */
export function namesakes(names: readonly string[], vars: readonly BrowsedVariable[]): Map<string, BrowsedVariable[]> {
  const wanted = new Map(names.map((n) => [looseName(n), n]));
  const out = new Map<string, BrowsedVariable[]>();
  for (const v of vars) {
    const name = wanted.get(looseName(browseNameOf(v)));
    if (name !== undefined) out.set(name, [...(out.get(name) ?? []), v]);
  }
  return out;
}

/** The variables of an OPC UA server (5 levels below Objects, 2,000 at most), or why there are none. */
export async function browseServer(
  connection: Record<string, unknown>,
  log: Logger,
): Promise<{ reached: true; vars: BrowsedVariable[] } | { reached: false; why: string }> {
  const { opcuaConnectionSchema } = await import('../../drivers/opcua/schema.js');
  const { browseVariables, withSession } = await import('../../drivers/opcua/browse.js');
  const conn = opcuaConnectionSchema.parse({ id: 'init', type: 'opcua', ...connection });
  try {
    // The client certificate of the data folder the file names (./.data), as `gateway browse` uses.
    const vars = await withSession(conn, join(resolve('.data'), 'pki'), log, (session) =>
      browseVariables(session, 'ns=0;i=85', 5, 2000, conn.max_value_size),
    );
    return { reached: true, vars };
  } catch (err) {
    // node-opcua's messages run over several lines: one line here, of a bounded length.
    const joined = (err as Error).message.replace(/\s*\n\s*/g, ' ').trim();
    const message = joined.length > 300 ? `${joined.slice(0, 300)}...` : joined;
    const hint = message.includes('BadCertificateUntrusted')
      ? ": the server's certificate is not trusted yet; trust it with `gateway certs list` and `gateway certs trust <thumbprint>`, then run gateway init again"
      : '';
    return { reached: false, why: `cannot browse ${conn.endpoint}: ${message}${hint}` };
  }
}
