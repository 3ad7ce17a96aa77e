// Child process of the Modbus benchmark: one gateway polling the simulated devices for one step of
// the ladder, so its CPU and memory are its own and not what earlier steps left. Reads the step
// (JSON) on stdin, prints its figures (JSON) as one line.
import { pino } from 'pino';
import { pollStep, type StepRequest } from './modbus.js';

let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const step = await pollStep(pino({ level: 'silent' }), JSON.parse(input) as StepRequest);
process.stdout.write(`${JSON.stringify(step)}\n`, () => process.exit(0));
