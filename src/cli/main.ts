#!/usr/bin/env node
/** The chunkguard command line: parses, calls the library, prints, sets the exit code. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { checkAtime, DEFAULT_CUTOFF_MINUTES } from '../check/index.js';
import { ChunkguardError } from '../errors.js';
import { colourer, formatCheck } from './format.js';

export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_BAD_INPUT = 2;

function wholeMinutes(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of minutes, at least 1');
  return Number(value);
}

function program(): Command {
  const cli = new Command('chunkguard')
    .description('Stops backup garbage collectors from deleting live data.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`chunkguard: ${text.replace(/^error: /, '').trim()}\n`),
    });

  cli
    .command('check')
    .description(
      'Check that the filesystem under a chunk store honours atime updates for the GC user.\n' +
        'Exit 0 safe, 1 unsafe, 2 bad input.',
    )
    .argument('<store>', 'the datastore directory (holding .chunks), or with --probe any directory')
    .option('--probe', 'check a directory with no .chunks yet, in a temporary directory removed afterwards')
    .option('--json', 'print one JSON report on stdout')
    .option('--as-user <user>', 'touch as this user: NAME, UID, NAME:GROUP or UID:GID (default: the store owner when run as root)')
    .option('--fixed-sleep', "the backup server's variant: one 1 s sleep instead of adaptive waits")
    .addOption(
      new Option('--cutoff-minutes <minutes>', 'GC atime cutoff; a filesystem clock lagging more is an error')
        .argParser(wholeMinutes)
        .default(DEFAULT_CUTOFF_MINUTES),
    )
    .action(async (store: string, flags: { probe?: boolean; json?: boolean; asUser?: string; fixedSleep?: boolean; cutoffMinutes: number }) => {
      const report = await checkAtime(store, {
        probe: flags.probe,
        runAs: flags.asUser,
        fixedSleep: flags.fixedSleep,
        cutoffMinutes: flags.cutoffMinutes,
      });
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheck(report, colourer(process.stdout)));
      process.exitCode = report.ok ? EXIT_OK : EXIT_FINDINGS;
    });
  return cli;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every usage error is bad input.
      process.exitCode = error.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
      return;
    }
    if (error instanceof ChunkguardError) {
      process.stderr.write(`chunkguard: ${error.message}\n`);
      process.exitCode = error.code === 'EBADINPUT' ? EXIT_BAD_INPUT : error.code === 'EABORT' ? 130 : EXIT_BAD_INPUT;
      return;
    }
    process.stderr.write(`chunkguard: ${(error as Error).message}\n`);
    process.exitCode = EXIT_FINDINGS;
  }
}

void main(process.argv);
