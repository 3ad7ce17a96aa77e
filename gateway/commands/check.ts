// `gateway check FILE`: validate a site file and say so, or list every problem of it.
import { EXIT, loadOrReport } from './common.js';

export async function checkCommand(file: string): Promise<number> {
  const config = await loadOrReport(file);
  if (!config) return EXIT.invalid;
  process.stdout.write(
    `${file}: valid (${config.connections.length} connection${config.connections.length === 1 ? '' : 's'}, ${config.equipment.length} equipment)\n`,
  );
  return EXIT.ok;
}
