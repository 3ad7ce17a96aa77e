// `gateway outbox list|retry`: incident events waiting for the platform, dead letters, and sending
// them again.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { demoSite, EXIT, loadOrReport, siteFileOf, usageError } from './common.js';
import { type CliCommand, configOption, examples, integer, siteArgument } from './declare.js';

export async function outboxCommand(sub: 'list' | 'retry', o: { config?: string | undefined; seq?: string | undefined }): Promise<number> {
  const seq = o.seq === undefined ? undefined : Number(o.seq);
  if (seq !== undefined && !Number.isInteger(seq)) return usageError('outbox retry', `--seq takes a number, not "${o.seq}"`);
  const config = await loadOrReport(o.config ?? demoSite());
  if (!config) return EXIT.invalid;
  const { STORE_FILE } = await import('../store.js');
  const { Outbox } = await import('../platform/outbox.js');
  const { describeBody } = await import('../platform/contract.js');
  const { GatewayError } = await import('../../config/errors.js');
  const dataDir = resolve(config.gateway.data_dir);
  const file = join(dataDir, STORE_FILE);
  if (!existsSync(file)) {
    // The data folder of an earlier version: `gateway run` takes it over, never this command (the
    // gateway that wrote it may still be running).
    if (existsSync(join(dataDir, 'outbox.db'))) {
      process.stderr.write(
        `${dataDir} holds the outbox.db of an earlier gateway version: start this version's \`gateway run\` once to take it over into ${STORE_FILE}, then try again.\n`,
      );
      return EXIT.failure;
    }
    process.stdout.write(`No outbox yet (${file}): nothing was sent to the platform from here.\n`);
    return EXIT.ok;
  }
  let outbox;
  try {
    outbox = new Outbox(file);
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    process.stderr.write(`${err.message} (${err.code})\n`);
    return EXIT.failure;
  }
  try {
    if (sub === 'retry') {
      const n = outbox.retry(seq === undefined ? undefined : [seq]);
      process.stdout.write(
        `${n} dead letter${n === 1 ? '' : 's'} back in the queue; a running gateway sends ${n === 1 ? 'it' : 'them'} within a second\n`,
      );
      return seq !== undefined && n === 0 ? EXIT.failure : EXIT.ok;
    }
    const s = outbox.stats();
    process.stdout.write(`${s.pending} pending, ${s.dead} dead letters, last seq ${s.lastSeq}\n`);
    for (const state of ['pending', 'dead'] as const) {
      for (const row of outbox.list(state)) {
        const what = describeBody(JSON.parse(row.incident));
        process.stdout.write(
          `${state === 'dead' ? 'DEAD   ' : 'pending'} seq ${row.seq} ${what}${row.answer ? ` | answer: ${row.answer}` : ''}\n`,
        );
      }
    }
    return EXIT.ok;
  } finally {
    outbox.close();
  }
}

export const command: CliCommand = {
  register(program, cli) {
    const outbox = program.command('outbox').description('incident events waiting for the platform, and dead letters');
    outbox
      .command('list')
      .description('incident events waiting for the platform, and dead letters with the answer that refused them')
      .addArgument(siteArgument())
      .addOption(configOption())
      .addHelpText('after', examples('gateway outbox list site.yaml', 'gateway outbox list -c site.yaml'))
      .action(async (file, o) => {
        cli.done(await outboxCommand('list', { config: siteFileOf('outbox list', file, o.config) }));
      });
    outbox
      .command('retry')
      .description('send dead letters again (all, or one); a running gateway sends them within a second')
      .addArgument(siteArgument())
      .addOption(configOption())
      .option('--seq <n>', 'only the dead letter with this sequence number (default: all)', integer(1))
      .addHelpText('after', examples('gateway outbox retry site.yaml', 'gateway outbox retry -c site.yaml --seq 42'))
      .action(async (file, o) => {
        cli.done(await outboxCommand('retry', { config: siteFileOf('outbox retry', file, o.config), seq: o.seq }));
      });
  },
};
