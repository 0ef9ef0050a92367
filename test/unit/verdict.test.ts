/** The one rule every command's `ok` and exit code follow (findings.ts `verdict`), and the fix remedy they print. */
import { describe, expect, it } from 'vitest';
import { ChunkguardError } from '../../src/errors.js';
import { failOnOption, type Finding, fixRemedy, verdict } from '../../src/findings.js';

const finding = (severity: Finding['severity'], code: Finding['code'] = 'FOREIGN_OWNER'): Finding => ({ code, severity, message: `${severity} ${code}` });

describe('verdict', () => {
  const info = finding('info', 'NETWORK_FILESYSTEM');
  const warning = finding('warning', 'NON_REGULAR_FILE');
  const error = finding('error', 'UNREADABLE');

  it('only an error fails by default; warnings and info do not', () => {
    expect(verdict([])).toEqual({ ok: true });
    expect(verdict([info, warning])).toEqual({ ok: true });
    expect(verdict([info, warning, error])).toEqual({ ok: false, failedBy: error });
    expect(verdict([warning], 'error')).toEqual({ ok: true });
  });

  it('failOn warning: a warning fails too; the error is named first when there is one', () => {
    expect(verdict([info, warning], 'warning')).toEqual({ ok: false, failedBy: warning });
    expect(verdict([warning, error], 'warning')).toEqual({ ok: false, failedBy: error });
    expect(verdict([info], 'warning')).toEqual({ ok: true });
  });

  it('failOnOption: undefined is error; anything but error or warning is EBADINPUT naming failOn', () => {
    expect(failOnOption(undefined)).toBe('error');
    expect(failOnOption('warning')).toBe('warning');
    for (const bad of ['info', 'WARNING', '', 1, null]) {
      const thrown = (() => {
        try {
          failOnOption(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(thrown).toBeInstanceOf(ChunkguardError);
      expect(thrown).toMatchObject({ code: 'EBADINPUT', option: 'failOn' });
    }
  });
});

describe('fixRemedy', () => {
  it('journals to a new dated file in /var/tmp, or /tmp when /var/tmp is inside the directory fixed', () => {
    expect(fixRemedy('/srv/backup store', '34:34')).toBe("chunkguard fix '/srv/backup store' --owner 34:34 --apply --journal /var/tmp/chunkguard-fix-$(date +%Y%m%d-%H%M%S-%N).jsonl");
    expect(fixRemedy('/var', '34:34')).toBe('chunkguard fix /var --owner 34:34 --apply --journal /tmp/chunkguard-fix-$(date +%Y%m%d-%H%M%S-%N).jsonl');
    // Nothing is outside /: the journal goes to stdout, as without --journal.
    expect(fixRemedy('/', '34:34')).toBe('chunkguard fix / --owner 34:34 --apply');
  });
});
