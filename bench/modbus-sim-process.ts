// Child process of the Modbus benchmark: N simulated Modbus TCP devices, one server each, so the
// gateway's own CPU is measured apart from the devices'. Prints the first port, then serves.
import { encode } from '../drivers/modbus/codec.js';
import { createModbusTcpSimulator, RegisterBank } from '../drivers/modbus/simulator.js';
import { freePort } from '../drivers/common/free-port.js';

const count = Number(process.argv[2] ?? 500);
const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const bank = new RegisterBank(200);
  for (let r = 0; r < 60; r += 2) bank.set('hr', r, encode(20 + i / 100 + r, 'float32', 'ABCD'));
  const sim = createModbusTcpSimulator({ port: await freePort(), devices: new Map([[1, bank]]) });
  await sim.start();
  ports.push(sim.port());
}
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
