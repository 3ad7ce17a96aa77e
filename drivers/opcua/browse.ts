// `gateway browse`: the variables under a node, with NodeId, data type and value, and ready-to-paste
// point entries.
import {
  AttributeIds,
  BrowseDirection,
  type ClientSession,
  DataType,
  MessageSecurityMode,
  NodeClass,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
} from 'node-opcua';
import type { OpcuaConnection } from './schema.js';
import type { Logger } from 'pino';
import { routeLibraryLogs } from './driver.js';
import { BoundedTransport, transportLimits, variantSize } from './values.js';

export interface BrowsedVariable {
  nodeId: string;
  path: string;
  dataType: string;
  value: unknown;
  status: string;
}

const SERVER_OBJECT = 'ns=0;i=2253';

/**
 * Breadth-first below `start`, at most `depth` levels and `limit` variables; the Server object is
 * skipped unless asked for. A value over `maxValueSize` is shown by its size, not printed.
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
  let level: Array<{ nodeId: string; path: string }> = [{ nodeId: start, path: '' }];
  for (let d = 0; d < depth && level.length > 0 && found.length < limit; d++) {
    const results = await session.browse(
      level.map((n) => ({
        nodeId: n.nodeId,
        browseDirection: BrowseDirection.Forward,
        includeSubtypes: true,
        nodeClassMask: NodeClass.Object | NodeClass.Variable,
        resultMask: 63,
        referenceTypeId: 'HierarchicalReferences',
      })),
    );
    const next: typeof level = [];
    results.forEach((r, k) => {
      for (const ref of r.references ?? []) {
        const id = ref.nodeId.toString();
        if (seen.has(id) || (id === SERVER_OBJECT && start !== SERVER_OBJECT)) continue;
        seen.add(id);
        const path = `${level[k]!.path}/${ref.browseName.namespaceIndex}:${ref.browseName.name}`;
        if (ref.nodeClass === NodeClass.Variable) found.push({ nodeId: id, path });
        next.push({ nodeId: id, path });
      }
    });
    level = next;
  }
  const vars = found.slice(0, limit);
  if (vars.length === 0) return [];
  const attrs = await session.read(
    vars.flatMap((v) => [
      { nodeId: v.nodeId, attributeId: AttributeIds.DataType },
      { nodeId: v.nodeId, attributeId: AttributeIds.Value },
    ]),
  );
  return vars.map((v, k) => {
    const typeId = attrs[2 * k]!.value.value as { value?: number; namespace?: number } | null;
    const value = attrs[2 * k + 1]!;
    const dataType =
      typeId && typeId.namespace === 0 && typeof typeId.value === 'number' && DataType[typeId.value]
        ? DataType[typeId.value]!
        : String(typeId ?? '?');
    const size = variantSize(value.value);
    if (size > maxValueSize)
      return { ...v, dataType, value: `(value of ${size} bytes, at most ${maxValueSize})`, status: value.statusCode.name };
    return { ...v, dataType, value: value.value?.value, status: value.statusCode.name };
  });
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
