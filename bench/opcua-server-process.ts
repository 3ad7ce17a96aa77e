// Child process of the OPC UA benchmark: a server with N variables whose values change every
// second, in its own process so the gateway's CPU is measured apart. Prints its port, then serves.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, OPCUACertificateManager, OPCUAServer, Variant } from 'node-opcua';
import { freePort } from '../drivers/common/free-port.js';

const count = Number(process.argv[2] ?? 10_000);
const port = await freePort();
const pki = mkdtempSync(join(tmpdir(), 'gw-bench-ua-'));
const server = new OPCUAServer({
  port,
  host: '127.0.0.1',
  hostname: '127.0.0.1',
  resourcePath: '/bench',
  serverCertificateManager: new OPCUACertificateManager({ rootFolder: pki, automaticallyAcceptUnknownCertificate: true }),
  serverCapabilities: { operationLimits: { maxMonitoredItemsPerCall: 10_000, maxNodesPerRead: 20_000 } },
});
await server.initialize();
const addressSpace = server.engine.addressSpace!;
const ns = addressSpace.getOwnNamespace();
const folder = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Bench', nodeId: 's=Bench' });
for (let i = 0; i < count; i++) {
  ns.addVariable({
    componentOf: folder,
    browseName: `V${i}`,
    nodeId: `s=Bench.V${i}`,
    dataType: DataType.Double,
    minimumSamplingInterval: 100,
    // A new value every second for every variable.
    value: { get: () => new Variant({ dataType: DataType.Double, value: Math.floor(Date.now() / 1000) + i / 1e6 }) },
  });
}
await server.start();
process.stdout.write(`${port}\n`);
process.stdin.resume();
process.stdin.on('end', () => void server.shutdown(0).then(() => process.exit(0)));
