/** The chunkguard command line: parses, calls the library, prints, sets the exit code. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { tty } from '../runtime/builtins.js';
import { checkAtimeWith, DEFAULT_CUTOFF_MINUTES } from '../check/index.js';
import { ChunkguardError, optionMessage } from '../errors.js';
import { auditStore } from '../audit/index.js';
import { relBytes } from '../fs/rel-path.js';
import { fixOwnership, undoJournal, type FixReport } from '../repair/fix.js';
import type { ChownRecord } from '../repair/journal.js';
import { inspectEnvironment } from '../system/environment.js';
import type { FailOn } from '../findings.js';
import { previewGcWith } from '../gc/index.js';
import { type Colour, colourer, formatAudit, formatCheck, formatEnv, formatFix, formatGcPreview } from './format.js';
import { auditMetrics, checkMetrics, gcPreviewMetrics } from './prometheus.js';
import { auditProgress } from './progress.js';
import { embedded } from '../runtime/embedded.js';

export const EXIT_OK = 0;
/** Unsafe, or findings: never used for an error of chunkguard's own. */
export const EXIT_FINDINGS = 1;
/** Bad input, or the command could not run. */
export const EXIT_BAD_INPUT = 2;
/** Aborted by SIGINT (128 + 2), as a shell reports it. */
export const EXIT_ABORTED = 130;

/** The library's option names, as flags. */
const FLAGS: Record<string, string> = {
  runAs: '--as-user',
  asUser: '--as-user',
  owner: '--owner',
  cutoffMinutes: '--cutoff-minutes',
  journal: '--journal',
  workers: '--workers',
  failOn: '--fail-on',
};

/**
 * chunkguard's own version, from its package.json (never the version of whatever npm
 * script runs it). A plain read: require() would start the CommonJS loader on every run.
 */
function version(): string {
  const inside = embedded();
  if (inside) return inside.version;
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'chunkguard' && pkg.version) return pkg.version;
    } catch {
      // Next candidate: dist/cli.cjs or src/cli/main.ts.
    }
  }
  return 'unknown';
}

/** One line for stderr: a library error in the CLI's terms (flag names instead of option names). */
export function errorLine(error: ChunkguardError): string {
  const flag = error.option && FLAGS[error.option];
  return flag ? optionMessage(flag, error.value ?? '', error.reason ?? '') : error.message;
}

function wholeMinutes(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of minutes, at least 1');
  return Number(value);
}

/** A usage error found in an action (commander reports only those found while parsing). */
function usage(message: string): ChunkguardError {
  return new ChunkguardError('EBADINPUT', message);
}

type OutputFormat = 'human' | 'json' | 'prometheus';

function outputFormat(flags: { json?: boolean; format?: OutputFormat }): OutputFormat {
  if (flags.json && flags.format && flags.format !== 'json') throw usage(`--json conflicts with --format ${flags.format}`);
  return flags.json ? 'json' : (flags.format ?? 'human');
}

const formatOption = (): Option =>
  new Option('--format <format>', 'human, json (same as --json) or prometheus (node_exporter textfile)').choices(['human', 'json', 'prometheus']);

const failOnOption = (): Option =>
  new Option('--fail-on <severity>', 'the least severity that fails (exit 1, "ok": false): error, or warning for a CI gate that fails on warnings too')
    .choices(['error', 'warning'])
    .default('error');

/** What every command's help says its exit codes mean (`does`: what exit 0 means for it). */
const exitCodes = (does: string): string => `Exit 0 ${does}, 1 an error finding (or a warning with --fail-on warning), 2 bad input.`;

function workerCount(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 64) throw new InvalidArgumentError('expected a whole number of worker threads, 0 to 64');
  return Number(value);
}

/** Blocking writes: a --list piped into another tool gets every line, in order, even on exit. */
function writeOut(data: string | Buffer): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let written = 0;
  while (written < bytes.length) {
    try {
      written += writeSync(1, bytes, written);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EAGAIN') throw error;
    }
  }
}

/**
 * Whether `fd` is a terminal, without process.stdout: that stream, and node:tty with the
 * streams and net behind it, cost ~3 ms of a start, and a blocking write needs neither.
 * Only a character device can be a terminal (/dev/null is one too: tty.isatty tells).
 */
function isTerminal(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice() && tty().isatty(fd);
  } catch {
    return false;
  }
}

function printJson(value: unknown): void {
  writeOut(`${JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`);
}

interface Rendering<R> {
  human: (report: R, colour: Colour) => string;
  /** node_exporter's textfile format, for the commands that have it. */
  prometheus?: (report: R) => string;
  /** What --json prints (default: the report). */
  json?: (report: R) => unknown;
  /** Where the human report goes (default stdout; stderr when stdout carries something else). */
  humanTo?: 'stdout' | 'stderr';
}

/** Every command ends here: the report printed in the format asked for, the exit code from its `ok`. */
function finish<R extends { ok: boolean }>(report: R, format: OutputFormat, rendering: Rendering<R>): void {
  if (format === 'json') printJson(rendering.json ? rendering.json(report) : report);
  else if (format === 'prometheus') writeOut(rendering.prometheus!(report));
  else if (rendering.humanTo === 'stderr') process.stderr.write(rendering.human(report, colourer(process.stderr.isTTY === true)));
  else writeOut(rendering.human(report, colourer(isTerminal(1))));
  process.exitCode = report.ok ? EXIT_OK : EXIT_FINDINGS;
}

function chownLine(record: ChownRecord, dryRun: boolean): string {
  return `${dryRun ? 'would chown' : 'chown'} ${record.to} ${JSON.stringify(record.path).slice(1, -1)}  (now ${record.from})\n`;
}

function checkCommand(cli: Command): void {
  cli
    .command('check')
    .description(`Check that the filesystem under a chunk store honours atime updates for the GC user.\n${exitCodes('safe')}`)
    .argument('<store>', 'the datastore directory (holding .chunks), or with --probe any directory')
    .option('--probe', 'check a directory with no .chunks yet, in a temporary directory removed afterwards; as root, a datastore made there as the server makes one and handed to the GC user, who touches inside')
    .option('--json', 'print one JSON report on stdout')
    .addOption(formatOption())
    .option('--as-user <user>', 'touch as this user: NAME, UID, NAME:GROUP or UID:GID (default: the GC user chunkguard infers, see the report\'s gcUser)')
    .option('--fixed-sleep', "the backup server's variant: one 1 s sleep instead of adaptive waits")
    .addOption(
      new Option('--cutoff-minutes <minutes>', 'GC atime cutoff; a filesystem clock lagging more is an error')
        .argParser(wholeMinutes)
        .default(DEFAULT_CUTOFF_MINUTES),
    )
    .addOption(failOnOption())
    .action(async (store: string, flags: { probe?: boolean; json?: boolean; format?: OutputFormat; asUser?: string; fixedSleep?: boolean; cutoffMinutes: number; failOn: FailOn }) => {
      const format = outputFormat(flags);
      // The CLI runs nothing else meanwhile, so it may switch its own thread to the GC user (no helper process).
      const report = await checkAtimeWith(
        store,
        { probe: flags.probe, runAs: flags.asUser, fixedSleep: flags.fixedSleep, cutoffMinutes: flags.cutoffMinutes, failOn: flags.failOn },
        { switchThread: true },
      );
      finish(report, format, { human: (r, colour) => formatCheck(r, colour, flags.failOn), prometheus: checkMetrics });
    });
}

function auditCommand(cli: Command): void {
  cli
    .command('audit')
    .description(`Audit ownership and permissions of a whole chunk store or backup repository for the GC user.\n${exitCodes('clean')}`)
    .argument('<dir>', 'the store or repository directory')
    .option('--owner <user>', 'the owner every entry should have: NAME, UID, NAME:GROUP or UID:GID (default: the GC user)')
    .option('--as-user <user>', 'the user GC runs as: NAME, UID, NAME:GROUP or UID:GID (default: --owner, else inferred: datastore.cfg, the store\'s owners)')
    .option('--json', 'print one JSON report on stdout')
    .addOption(formatOption())
    .option('--list', 'print every offending path on stdout, one a line, as find prints it (the report goes to stderr)')
    .option('-0, --null', 'with --list: end each path with NUL instead of newline (for xargs -0)')
    .option('--cross-filesystems', 'also audit filesystems mounted inside <dir>')
    .addOption(new Option('--workers <n>', 'worker threads (0: scan in the main thread; default: chosen from the filesystem)').argParser(workerCount))
    .addOption(failOnOption())
    .action(async (dir: string, flags: { owner?: string; asUser?: string; json?: boolean; format?: OutputFormat; list?: boolean; null?: boolean; crossFilesystems?: boolean; workers?: number; failOn: FailOn }) => {
      const format = outputFormat(flags);
      if (flags.list && format !== 'human') throw usage(`--list prints paths on stdout; it cannot be combined with --${format === 'json' ? 'json' : 'format prometheus'}`);
      if (flags.null && !flags.list) throw usage('-0 only applies to --list');
      const terminator = Buffer.from(flags.null ? [0] : [0x0a]);
      const progress = auditProgress(process.stderr, format === 'human');
      let report;
      try {
        report = await auditStore(dir, {
          owner: flags.owner,
          asUser: flags.asUser,
          crossFilesystems: flags.crossFilesystems,
          workers: flags.workers,
          failOn: flags.failOn,
          onOffender: flags.list ? (path) => writeOut(Buffer.concat([relBytes(path), terminator])) : undefined,
          onProgress: (state) => progress.update(state),
        });
      } finally {
        progress.stop();
      }
      // --list: stdout carries the paths.
      finish(report, format, { human: formatAudit, prometheus: auditMetrics, humanTo: flags.list ? 'stderr' : 'stdout' });
    });
}

function fixCommand(cli: Command): void {
  cli
    .command('fix')
    .description(
      'Give every entry of <dir> the owner --owner (lchown, never a symlink target, never across a mount).\n' +
        `A dry run unless --apply. ${exitCodes('nothing left to change')} An entry left, or in a dry run one to change, is an error finding.`,
    )
    .argument('<dir>', 'the store or repository directory')
    .option('--owner <user>', 'the owner to give every entry: NAME, UID, NAME:GROUP or UID:GID')
    .option('--apply', 'make the changes (default: print what would change)')
    .option('--journal <file>', 'write the JSON-lines journal to this new file instead of stdout')
    .option('--undo <journal>', 'revert the changes a journal records (each re-checked first)')
    .option('--json', 'print one JSON report on stdout (with --apply, needs --journal)')
    .addOption(new Option('--workers <n>', 'worker threads for the audit pass').argParser(workerCount))
    .addOption(failOnOption())
    .action(async (dir: string, flags: { owner?: string; apply?: boolean; journal?: string; undo?: string; json?: boolean; workers?: number; failOn: FailOn }) => {
      if (flags.undo === undefined && flags.owner === undefined) throw usage('fix needs --owner UID:GID (or --undo JOURNAL)');
      if (flags.undo !== undefined && flags.owner !== undefined) throw usage('--undo restores the owners the journal records: leave out --owner');
      if (flags.json && flags.apply && flags.journal === undefined) {
        throw usage('--json --apply needs --journal FILE: stdout carries the JSON report, the journal needs a place of its own');
      }
      const dryRun = !flags.apply;
      // The library never writes to stdout itself: without --journal, the CLI gives it stdout for the journal (the report goes to stderr).
      const journalOnStdout = flags.apply && flags.journal === undefined;
      const journal = journalOnStdout ? process.stdout : flags.journal;
      const changes: ChownRecord[] = [];
      const onChange = (record: ChownRecord): void => {
        if (flags.json) {
          if (changes.length < 10_000) changes.push(record);
        } else if (dryRun) writeOut(chownLine(record, true));
      };
      const report: FixReport =
        flags.undo !== undefined
          ? await undoJournal(dir, flags.undo, { apply: flags.apply, journal, onChange, failOn: flags.failOn })
          : await fixOwnership(dir, { owner: flags.owner!, apply: flags.apply, journal, onChange, workers: flags.workers, failOn: flags.failOn });
      finish(report, flags.json ? 'json' : 'human', {
        human: formatFix,
        json: (r) => ({ ...r, changes, changesShown: changes.length }),
        humanTo: journalOnStdout ? 'stderr' : 'stdout',
      });
    });
}

function gcPreviewCommand(cli: Command): void {
  cli
    .command('gc-preview')
    .description(
      "What the backup server's next garbage collection would do to this datastore: whether it completes or stops (and at what), what it removes, and which snapshots would lose data. " +
        'Read-only but for the atime check, which inserts and touches the zero chunk as the server\'s GC does (--skip-atime-check: nothing is touched).\n' +
        exitCodes('when GC would complete and lose nothing referenced'),
    )
    .argument('<store>', 'the datastore directory (holding .chunks)')
    .addOption(new Option('--cutoff-minutes <minutes>', "GC atime cutoff (default: the datastore's gc-atime-cutoff tuning in datastore.cfg, else 1445)").argParser(wholeMinutes))
    .option('--as-user <user>', 'the user GC runs as: NAME, UID, NAME:GROUP or UID:GID (default: inferred, see the report\'s gcUser)')
    .option('--skip-atime-check', 'touch nothing: no atime check (the preview then assumes the touch works)')
    .option('--json', 'print one JSON report on stdout')
    .addOption(formatOption())
    .addOption(new Option('--workers <n>', 'worker threads for the .chunks walk (0: the main thread; default: chosen from the filesystem)').argParser(workerCount))
    .addOption(failOnOption())
    .action(async (store: string, flags: { cutoffMinutes?: number; asUser?: string; skipAtimeCheck?: boolean; json?: boolean; format?: OutputFormat; workers?: number; failOn: FailOn }) => {
      const format = outputFormat(flags);
      const progress = auditProgress(process.stderr, format === 'human');
      let report;
      try {
        report = await previewGcWith(
          store,
          {
            cutoffMinutes: flags.cutoffMinutes,
            asUser: flags.asUser,
            skipAtimeCheck: flags.skipAtimeCheck,
            workers: flags.workers,
            failOn: flags.failOn,
            onProgress: (state) => {
              if (state.phase === 'chunks' && state.total !== undefined) progress.update({ directories: state.done, entries: 0, prefixDirs: { done: state.done, total: state.total } });
            },
          },
          { switchThread: true },
        );
      } finally {
        progress.stop();
      }
      finish(report, format, { human: (r, colour) => formatGcPreview(r, colour, flags.failOn), prometheus: gcPreviewMetrics });
    });
}

function envCommand(cli: Command): void {
  cli
    .command('env')
    .description(`Identity, user namespace, capabilities, passwd and mount facts for GC.\n${exitCodes('no error found')}`)
    .argument('[path]', 'a store or directory to describe the mount of')
    .option('--json', 'print one JSON report on stdout')
    .addOption(failOnOption())
    .action((path: string | undefined, flags: { json?: boolean; failOn: FailOn }) => {
      const report = inspectEnvironment(path, { failOn: flags.failOn });
      finish(report, flags.json ? 'json' : 'human', { human: formatEnv });
    });
}

function program(): Command {
  const cli = new Command('chunkguard')
    .description('Stops backup garbage collectors from deleting live data.')
    .version(version())
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => write(`chunkguard: ${text.replace(/^error: /, '').trim()}\n`),
    });
  checkCommand(cli);
  auditCommand(cli);
  fixCommand(cli);
  gcPreviewCommand(cli);
  envCommand(cli);
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
    // Every error of chunkguard's own is exit 2 (an abort 130), never 1, which means "unsafe".
    const known = error instanceof ChunkguardError ? error : undefined;
    const line = known ? errorLine(known) : ((error as Error)?.message ?? String(error));
    process.stderr.write(`chunkguard: ${line.split('\n')[0]}\n`);
    process.exitCode = known?.code === 'EABORT' ? EXIT_ABORTED : EXIT_BAD_INPUT;
  }
}

void main(process.argv);
