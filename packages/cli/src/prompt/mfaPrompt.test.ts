import { describe, expect, it } from 'vitest';
import { VaultError } from '@vault/core';
import { PROMPT_DRIVERS, checkDriver, chooseDriver } from './mfaPrompt.js';

const installed = (...programs: string[]) => (program: string) => programs.includes(program);

describe('choosing the MFA prompt driver (as aws-vault does)', () => {
  it('uses the driver named by --prompt / AWS_VAULT_PROMPT, terminal or not', () => {
    expect(chooseDriver({ explicit: 'zenity', env: {}, terminal: true, onPath: installed() })).toBe('zenity');
    expect(chooseDriver({ explicit: 'terminal', env: {}, terminal: false, onPath: installed('zenity') })).toBe('terminal');
  });

  it('asks on the terminal when there is one', () => {
    expect(chooseDriver({ env: {}, terminal: true, onPath: installed('zenity', 'kdialog', 'ykman') })).toBe('terminal');
  });

  it('without a terminal takes the first installed driver in aws-vault’s order: kdialog, osascript, ykman, zenity', () => {
    expect(PROMPT_DRIVERS).toEqual(['kdialog', 'osascript', 'terminal', 'ykman', 'zenity']);
    expect(chooseDriver({ env: {}, terminal: false, onPath: installed('zenity', 'kdialog') })).toBe('kdialog');
    expect(chooseDriver({ env: {}, terminal: false, onPath: installed('zenity', 'ykman') })).toBe('ykman');
    expect(chooseDriver({ env: {}, terminal: false, onPath: installed('zenity') })).toBe('zenity');
    expect(chooseDriver({ env: {}, terminal: false, onPath: installed('osascript', 'zenity') })).toBe('osascript');
  });

  it('falls back to terminal (piped standard input, or the clear "nothing to ask on" line) when none is installed', () => {
    expect(chooseDriver({ env: {}, terminal: false, onPath: installed() })).toBe('terminal');
  });

  it('refuses an unknown driver, and aws-vault’s removed "pass" driver with its advice', () => {
    expect(() => checkDriver('zentiy')).toThrow(VaultError);
    expect(() => checkDriver('zentiy')).toThrow('unknown prompt driver "zentiy"');
    let error: VaultError | undefined;
    try {
      checkDriver('pass');
    } catch (caught) {
      error = caught as VaultError;
    }
    expect(error?.toLine()).toBe(
      'the "pass" prompt driver of aws-vault is not supported (a TOTP kept beside the key is no second factor); add `mfa_process = pass otp YOUR-MFA-SERIAL` to the profile if you want it anyway',
    );
  });
});
