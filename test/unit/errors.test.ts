import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { aborted, badInput, badOption, ChunkguardError, errnoCode, publicCall, publicError, throwIfAborted } from '../../src/errors.js';
import { FsError } from '../../src/fs/errors.js';
import { auditStore } from '../../src/audit/index.js';

/** A real AbortError as Node's own APIs reject with (code ABORT_ERR), from a signal other than the one given. */
async function nodeAbortError(): Promise<unknown> {
  const controller = new AbortController();
  const pending = sleep(60_000, undefined, { signal: controller.signal });
  controller.abort();
  return pending.then(
    () => {
      throw new Error('sleep was not aborted');
    },
    (error: unknown) => error,
  );
}

describe('badOption', () => {
  it('names the option and the value; an empty or blank value is quoted, not lost before the colon', () => {
    expect(badOption('owner', 'x:y:z', 'expected NAME').message).toBe('owner x:y:z: expected NAME');
    expect(badOption('owner', '', 'expected NAME').message).toBe("owner '': expected NAME");
    expect(badOption('owner', ' ', 'expected NAME').message).toBe("owner ' ': expected NAME");
    expect(badOption('owner', '', 'expected NAME')).toMatchObject({ option: 'owner', value: '', reason: 'expected NAME' });
  });

  it("a library call given '' says so", async () => {
    await expect(auditStore('/tmp', { owner: '' })).rejects.toThrow("owner '': expected NAME, UID, NAME:GROUP or UID:GID");
  });
});

describe('publicError', () => {
  it('keeps a ChunkguardError as it is, even with an aborted signal', () => {
    const original = new ChunkguardError('EHELPER', 'helper died');
    const controller = new AbortController();
    controller.abort();
    expect(publicError(original, undefined, 'check')).toBe(original);
    expect(publicError(original, controller.signal, 'check')).toBe(original);
  });

  it("an aborted signal makes EABORT with the signal's reason as cause", () => {
    const controller = new AbortController();
    const reason = new Error('user pressed ^C');
    controller.abort(reason);
    const error = publicError(new Error('interrupted read'), controller.signal, 'audit');
    expect(error).toBeInstanceOf(ChunkguardError);
    expect(error.code).toBe('EABORT');
    expect(error.message).toBe('audit was aborted');
    expect(error.cause).toBe(reason);
  });

  it("an AbortError from Node (code ABORT_ERR) is EABORT even when the given signal did not fire", async () => {
    const abortError = await nodeAbortError();
    expect(errnoCode(abortError)).toBe('ABORT_ERR');
    const error = publicError(abortError, new AbortController().signal, 'check');
    expect(error.code).toBe('EABORT');
    expect(error.message).toBe('check was aborted');
    // No signal fired: there is no reason to give.
    expect(error.cause).toBeUndefined();
  });

  it('a plain Error is EINTERNAL with it as cause', () => {
    const original = new TypeError('x is undefined');
    const error = publicError(original, undefined, 'fix');
    expect(error).toBeInstanceOf(ChunkguardError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('EINTERNAL');
    expect(error.message).toBe('fix failed unexpectedly: x is undefined');
    expect(error.cause).toBe(original);
    expect(error.path).toBeUndefined();
  });

  it('an FsError is EINTERNAL with its path and the FsError as cause', () => {
    const original = new FsError('EIO', 'statx', '/srv/store/.chunks/ab12');
    const error = publicError(original, new AbortController().signal, 'audit');
    expect(error.code).toBe('EINTERNAL');
    expect(error.path).toBe('/srv/store/.chunks/ab12');
    expect(error.cause).toBe(original);
    expect(error.message).toBe(`audit stopped: ${original.message}`);
    expect(error.message).toContain('/srv/store/.chunks/ab12');
  });

  it('a thrown non-Error value is EINTERNAL too', () => {
    expect(publicError('boom', undefined, 'check')).toMatchObject({ code: 'EINTERNAL', message: 'check failed unexpectedly: boom', cause: 'boom' });
    expect(publicError(undefined, undefined, 'check')).toMatchObject({ code: 'EINTERNAL', message: 'check failed unexpectedly: undefined' });
  });
});

describe('publicCall', () => {
  it('rejects at once with EABORT for a pre-aborted signal, without running the function', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    controller.abort(reason);
    const run = vi.fn(() => 'ran');
    const rejection = publicCall('checkAtime', controller.signal, run);
    await expect(rejection).rejects.toBeInstanceOf(ChunkguardError);
    await expect(rejection).rejects.toMatchObject({ code: 'EABORT', message: 'checkAtime was aborted', cause: reason });
    expect(run).not.toHaveBeenCalled();
  });

  it('resolves with what the function returns (sync or async)', async () => {
    await expect(publicCall('x', undefined, () => 42)).resolves.toBe(42);
    await expect(publicCall('x', new AbortController().signal, async () => 'done')).resolves.toBe('done');
  });

  it('turns a sync throw and an async rejection into ChunkguardErrors', async () => {
    await expect(
      publicCall('auditStore', undefined, () => {
        throw new FsError('ENOENT', 'open', '/nope');
      }),
    ).rejects.toMatchObject({ code: 'EINTERNAL', path: '/nope' });
    await expect(
      publicCall('auditStore', undefined, async () => {
        throw badInput('/x', 'bad');
      }),
    ).rejects.toMatchObject({ code: 'EBADINPUT', message: '/x: bad' });
  });

  it('a signal that fires while the function runs makes its failure EABORT', async () => {
    const controller = new AbortController();
    const rejection = publicCall('fixOwnership', controller.signal, async () => {
      controller.abort('deadline');
      throw new Error('half done');
    });
    await expect(rejection).rejects.toMatchObject({ code: 'EABORT', cause: 'deadline' });
  });
});

describe('badOption, badInput, aborted, throwIfAborted, errnoCode', () => {
  it('badOption sets option, value and reason, and the message <option> <value>: <reason>', () => {
    const error = badOption('runAs', 'nobodyhere', 'no such user in /etc/passwd');
    expect(error).toBeInstanceOf(ChunkguardError);
    expect(error.code).toBe('EBADINPUT');
    expect(error.option).toBe('runAs');
    expect(error.value).toBe('nobodyhere');
    expect(error.reason).toBe('no such user in /etc/passwd');
    expect(error.message).toBe('runAs nobodyhere: no such user in /etc/passwd');
    expect(error.path).toBeUndefined();
  });

  it('badOption renders numbers, undefined and objects as text', () => {
    expect(badOption('cutoffMinutes', -5, 'must be positive')).toMatchObject({ value: '-5', message: 'cutoffMinutes -5: must be positive' });
    expect(badOption('workers', undefined, 'required').value).toBe('undefined');
    expect(badOption('runAs', { uid: 1 }, 'no').message).toBe('runAs {"uid":1}: no');
    expect(badOption('runAs', null, 'no').value).toBe('null');
  });

  it('badInput names the path and keeps the reason apart', () => {
    expect(badInput('/srv/store', 'not a directory')).toMatchObject({ code: 'EBADINPUT', path: '/srv/store', reason: 'not a directory', message: '/srv/store: not a directory' });
  });

  it('ChunkguardError has its name and no cause unless given', () => {
    const error = new ChunkguardError('ENATIVE', 'no');
    expect(error.name).toBe('ChunkguardError');
    expect('cause' in error).toBe(false);
  });

  it('throwIfAborted throws only for a fired signal', () => {
    expect(() => throwIfAborted(undefined, 'x')).not.toThrow();
    expect(() => throwIfAborted(new AbortController().signal, 'x')).not.toThrow();
    const controller = new AbortController();
    controller.abort();
    expect(() => throwIfAborted(controller.signal, 'x')).toThrowError(expect.objectContaining({ code: 'EABORT' }));
    const withoutSignal = aborted(undefined, 'y');
    expect(withoutSignal).toMatchObject({ code: 'EABORT', message: 'y was aborted' });
    expect(withoutSignal.cause).toBeUndefined();
  });

  it('errnoCode reads a string code only', () => {
    expect(errnoCode(new FsError('EPERM', 'fchownat', '/x'))).toBe('EPERM');
    expect(errnoCode(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(errnoCode(Object.assign(new Error('x'), { code: 20 }))).toBeUndefined();
    expect(errnoCode(new Error('x'))).toBeUndefined();
    expect(errnoCode(null)).toBeUndefined();
    expect(errnoCode('ENOENT')).toBeUndefined();
  });
});
