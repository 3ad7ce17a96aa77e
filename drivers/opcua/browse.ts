// `gateway browse`: the variables under a node, with NodeId, data type and value, and ready-to-paste
// point entries.
import {
  AttributeIds,
  BrowseDirection,
  type ClientSession,
  DataType,
  type DataValue,
  MessageSecurityMode,
  NodeClass,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
} from 'node-opcua';
import type { OpcuaConnection } from './schema.js';
import type { Logger } from 'pino';
import { routeLibraryLogs, TOO_LARGE } from './driver.js';
import { BoundedTransport, transportLimits, variantSize } from './values.js';

export interface BrowsedVariable {
  nodeId: string;
  path: string;
  dataType: string;
  value: unknown;
  status: string;
}

const SERVER_OBJECT = 'ns=0;i=2253';
// The server's own bounds on the nodes of one Browse and one Read (OperationLimits, 0 = none), and
// ours: many controllers refuse a request over theirs (BadTooManyOperations) and a huge address space
// must not make one huge request either.
const MAX_NODES_PER_BROWSE = 'ns=0;i=11710';
const MAX_NODES_PER_READ = 'ns=0;i=11705';
const BROWSE_BATCH = 100;
const READ_BATCH = 500;
/** Nodes browsed in all, whatever the depth: an address space of 100,000 objects is not walked whole. */
const MAX_BROWSED = 5000;

/** The server's limit where it gives one under ours, else ours. */
async function operationLimits(session: ClientSession): Promise<{ browse: number; read: number }> {
  const bound = (v: unknown, ours: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v < ours ? v : ours);
  try {
    const [b, r] = await session.read([
      { nodeId: MAX_NODES_PER_BROWSE, attributeId: AttributeIds.Value },
      { nodeId: MAX_NODES_PER_READ, attributeId: AttributeIds.Value },
    ]);
    return { browse: bound(b?.value.value, BROWSE_BATCH), read: bound(r?.value.value, READ_BATCH) };
  } catch {
    // A server without the Server object's capabilities: our bounds.
    return { browse: BROWSE_BATCH, read: READ_BATCH };
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Breadth-first below `start`, at most `depth` levels, `limit` variables and MAX_BROWSED nodes
 * browsed, in requests within the server's operation limits; the Server object is skipped unless
 * asked for. A value over `maxValueSize` is shown by its size, not printed.
 */
export async function browseVariables(
  session: ClientSession,
  start = 'ns=0;i=85',
  depth = 4,
  limit = 2000,
  maxValueSize = 64 * 1024,
): Promise<BrowsedVariable[]> {
  const found: Array<Omit<BrowsedVariable, 'dataType' | 'value' | 'status'>> = [];
  const seen = new Set<string>([start]);
  const limits = await operationLimits(session);
  let browsed = 0;
  let level: Array<{ nodeId: string; path: string }> = [{ nodeId: start, path: '' }];
  for (let d = 0; d < depth && level.length > 0 && found.length < limit && browsed < MAX_BROWSED; d++) {
    level = level.slice(0, MAX_BROWSED - browsed);
    browsed += level.length;
    const next: typeof level = [];
    for (const part of chunks(level, limits.browse)) {
      // Enough variables: the rest of the level is not asked for.
      if (found.length >= limit) break;
      const results = await session.browse(
        part.map((n) => ({
          nodeId: n.nodeId,
          browseDirection: BrowseDirection.Forward,
          includeSubtypes: true,
          nodeClassMask: NodeClass.Object | NodeClass.Variable,
          resultMask: 63,
          referenceTypeId: 'HierarchicalReferences',
        })),
      );
      results.forEach((r, k) => {
        for (const ref of r.references ?? []) {
          const id = ref.nodeId.toString();
          if (seen.has(id) || (id === SERVER_OBJECT && start !== SERVER_OBJECT)) continue;
          seen.add(id);
          const path = `${part[k]!.path}/${ref.browseName.namespaceIndex}:${ref.browseName.name}`;
          if (ref.nodeClass === NodeClass.Variable && found.length < limit) found.push({ nodeId: id, path });
          // What lies below is walked only as far as the bound on nodes browsed goes.
          if (next.length < MAX_BROWSED) next.push({ nodeId: id, path });
        }
      });
    }
    level = next;
  }
  const vars = found.slice(0, limit);
  if (vars.length === 0) return [];
  const types: DataValue[] = [];
  for (const part of chunks(vars, limits.read))
    types.push(...(await session.read(part.map((v) => ({ nodeId: v.nodeId, attributeId: AttributeIds.DataType })))));
  const values: Array<DataValue | string> = [];
  for (const part of chunks(vars, limits.read))
    values.push(
      ...(await readValues(
        session,
        part.map((v) => v.nodeId),
      )),
    );
  return vars.map((v, k) => {
    const typeId = types[k]!.value.value as { value?: number; namespace?: number } | null;
    const value = values[k]!;
    const dataType =
      typeId && typeId.namespace === 0 && typeof typeId.value === 'number' && DataType[typeId.value]
        ? DataType[typeId.value]!
        : String(typeId ?? '?');
    if (typeof value === 'string') return { ...v, dataType, value: '(value over max_message_size)', status: value };
    const size = variantSize(value.value);
    if (size > maxValueSize)
      return { ...v, dataType, value: `(value of ${size} bytes, at most ${maxValueSize})`, status: value.statusCode.name };
    return { ...v, dataType, value: value.value?.value, status: value.statusCode.name };
  });
}

/**
 * The values of these variables; a Read refused for its size as a whole is read in halves, down to
 * the one variable that does not fit, which gets the refusal's name instead of its value.
 */
async function readValues(session: ClientSession, nodeIds: string[]): Promise<Array<DataValue | string>> {
  try {
    return await session.read(nodeIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
  } catch (err) {
    const tooLarge = TOO_LARGE.exec((err as Error).message)?.[0];
    if (!tooLarge) throw err;
    if (nodeIds.length === 1) return [tooLarge];
    const half = Math.ceil(nodeIds.length / 2);
    return [...(await readValues(session, nodeIds.slice(0, half))), ...(await readValues(session, nodeIds.slice(half)))];
  }
}

/** snake_case point name from a browse name: `DoorOpen` → door_open. */
export function pointNameFor(browseName: string): string {
  const name = browseName
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
  return /^[a-z_]/.test(name) ? name : `p_${name}`;
}

export function formatVariables(vars: BrowsedVariable[], asPoints: boolean): string[] {
  if (asPoints) {
    return vars.map(
      (v) => `      - { name: ${pointNameFor(v.path.split('/').pop()!.replace(/^\d+:/, ''))}, node: "${v.nodeId}" }   # ${v.dataType}`,
    );
  }
  return vars.map(
    (v) => `${v.nodeId.padEnd(34)} ${v.dataType.padEnd(10)} ${v.status === 'Good' ? JSON.stringify(v.value) : v.status}   ${v.path}`,
  );
}

/** Connects once (no retries), opens a session, runs `work` in it, and closes both (`gateway browse`, `gateway init`). */
export async function withSession<T>(
  conn: OpcuaConnection,
  pkiDir: string,
  log: Logger,
  work: (session: ClientSession) => Promise<T>,
): Promise<T> {
  routeLibraryLogs(log);
  const certificates = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: false });
  await certificates.initialize();
  const policy = conn.security_policy ?? (conn.security_mode === 'None' ? 'None' : 'Basic256Sha256');
  const client = OPCUAClient.create({
    applicationName: 'special-equipment-gateway',
    securityMode: MessageSecurityMode[conn.security_mode],
    securityPolicy: SecurityPolicy[policy],
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    defaultTransactionTimeout: conn.request_timeout,
    // The handshake within the request timeout too: a port that takes the connection and says nothing
    // (a Modbus port given for an OPC UA one) is given up after seconds, not the library's 60.
    transportTimeout: conn.request_timeout,
    clientCertificateManager: certificates,
    transportSettings: transportLimits(conn.max_message_size),
    transportFactory: { create: () => new BoundedTransport(transportLimits(conn.max_message_size)) },
  });
  try {
    await client.connect(conn.endpoint);
    const u = conn.user;
    const session = await client.createSession(
      u.type === 'username'
        ? { type: UserTokenType.UserName, userName: u.username, password: u.password }
        : { type: UserTokenType.Anonymous },
    );
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  } finally {
    await client.disconnect();
    await certificates.dispose();
  }
}

/** Connects once (no retries), browses, and returns the lines to print. */
export async function browseEndpoint(
  conn: OpcuaConnection,
  pkiDir: string,
  opts: { node?: string | undefined; depth: number; asPoints: boolean; log: Logger },
): Promise<string[]> {
  return withSession(conn, pkiDir, opts.log, async (session) => {
    const vars = await browseVariables(session, opts.node ?? 'ns=0;i=85', opts.depth, 2000, conn.max_value_size);
    return vars.length ? formatVariables(vars, opts.asPoints) : ['No variables found'];
  });
}
