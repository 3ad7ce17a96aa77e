// Run inside a network namespace of its own (`unshare --net`), where LAN_ADDRESS is an address of
// that namespace that is not loopback: a gateway whose embedded broker listens on 0.0.0.0 (as a site
// in a container does) is reached from there and from 127.0.0.1 with Mosquitto's client. Nothing leaves
// the namespace. Prints one JSON line with what each client got, then stops the gateway.
//   node --import tsx tests/helpers/lan-probe.ts LAN_ADDRESS SITE_FILE PORT USER PASSWORD
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { loadSiteFile } from '../../config/load.js';
import { createGateway } from '../../gateway/runtime.js';

function sub(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

const [LAN_ADDRESS, file, port, user, password] = process.argv.slice(2);
const config = loadSiteFile(file!, {});
const gw = createGateway(config, pino({ level: 'silent' }));
await gw.start();
const telemetry = `gw/${config.gateway.site}/+/telemetry`;
const anonymousFromLan = await sub(['-h', LAN_ADDRESS!, '-p', port!, '-t', '#', '-C', '1', '-W', '5']);
const readerFromLan = await sub(['-h', LAN_ADDRESS!, '-p', port!, '-u', user!, '-P', password!, '-t', telemetry, '-C', '1', '-W', '10']);
const anonymousFromLoopback = await sub(['-h', '127.0.0.1', '-p', port!, '-t', telemetry, '-C', '1', '-W', '10']);
const refusedAnonymous = gw.broker!.stats().refusedAnonymous;
await gw.stop();
process.stdout.write(`${JSON.stringify({ anonymousFromLan, readerFromLan, anonymousFromLoopback, refusedAnonymous })}\n`);
