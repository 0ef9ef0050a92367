/**
 * Integration tests need root (mounts, chattr, other users). Under CI=true a
 * missing privilege is a failure, never a skip; elsewhere they skip with the reason.
 */
import { describe, it } from 'vitest';

export const isRoot = process.geteuid?.() === 0;
export const inCI = process.env.CI === 'true';

export function describeAsRoot(name: string, body: () => void): void {
  if (isRoot) {
    describe(name, body);
  } else if (inCI) {
    describe(name, () => {
      it('needs root', () => {
        throw new Error(`"${name}" needs root (loop mounts, chattr, other users) and CI=true forbids skipping it`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: needs root for loop mounts, chattr and other users; run as root or in CI)`, body);
  }
}
