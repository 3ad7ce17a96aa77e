// A second process appending to an audit journal, as `gateway certs trust` does beside a running
// gateway: `node --import tsx audit-writer.ts FILE COUNT WHO`. Prints "done" when all are written.
import { AuditJournal } from '../../gateway/audit.js';

const [file, count, who] = process.argv.slice(2);
const journal = new AuditJournal(file!);
for (let k = 0; k < Number(count); k++) journal.append({ who: who!, action: 'test append', target: String(k), outcome: 'done' });
process.stdout.write('done\n');
