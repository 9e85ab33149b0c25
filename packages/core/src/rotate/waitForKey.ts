import type { Clock } from '../clock.js';

/**
 * IAM is eventually consistent: a new key can be refused by STS for some seconds after
 * CreateAccessKey returns (AWS: "changes … can take time to become visible"). Backoff from 1 s,
 * doubling to 8 s between tries, for at most `maxWaitMs` (60 s by default) of the clock.
 */
export const KEY_ACCEPT_MAX_WAIT_MS = 60_000;
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 8_000;

export interface Waiting {
  clock: Clock;
  sleep: (ms: number) => Promise<void>;
  maxWaitMs?: number;
}

/** Runs `attempt` until it succeeds or the time is up; then throws the last error. */
export async function retryWithBackoff<T>(attempt: () => Promise<T>, waiting: Waiting, retryable: (error: unknown) => boolean = () => true): Promise<T> {
  const deadline = waiting.clock.now() + (waiting.maxWaitMs ?? KEY_ACCEPT_MAX_WAIT_MS);
  let delay = FIRST_DELAY_MS;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      const left = deadline - waiting.clock.now();
      if (!retryable(error) || left <= 0) throw error;
      await waiting.sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
