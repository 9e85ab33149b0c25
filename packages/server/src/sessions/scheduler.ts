import { systemClock, type Clock, type ManualClock } from '@vault/core';

/**
 * Runs a task at an absolute time on the injected clock. Refresh-ahead timers go through this, so
 * tests drive them with a ManualClock instead of sleeping.
 */
export interface Scheduler {
  /** Run `task` once the clock reads `atMs` or later; returns a function that cancels it. */
  at(atMs: number, task: () => void): () => void;
}

/**
 * Real timers, re-checked against the clock at least every `maxSleepMs`: Node's timers follow a
 * monotonic clock that stands still while a laptop sleeps, so a long setTimeout would fire late
 * after a resume; waking every minute keeps refresh-ahead on wall-clock time. Timers are unref'd
 * so they never keep the daemon alive on their own.
 */
export function systemScheduler(clock: Clock = systemClock, maxSleepMs = 60_000): Scheduler {
  return {
    at(atMs, task) {
      let timer: NodeJS.Timeout | undefined;
      let cancelled = false;
      const arm = () => {
        const wait = atMs - clock.now();
        if (wait <= 0) {
          timer = undefined;
          if (!cancelled) task();
          return;
        }
        timer = setTimeout(arm, Math.min(wait, maxSleepMs));
        timer.unref();
      };
      arm();
      return () => {
        cancelled = true;
        if (timer) clearTimeout(timer);
      };
    },
  };
}

interface ManualTask {
  atMs: number;
  seq: number;
  task: () => void;
}

/** Lets pending promise callbacks (fake STS calls, route handlers) run without waiting on time. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A scheduler for tests: tasks fire only when `advance` moves the ManualClock past them, in time
 * order, with the clock set to each task's time while it runs.
 */
export class ManualScheduler implements Scheduler {
  private tasks: ManualTask[] = [];
  private seq = 0;

  constructor(readonly clock: ManualClock) {}

  at(atMs: number, task: () => void): () => void {
    const entry: ManualTask = { atMs, seq: this.seq++, task };
    this.tasks.push(entry);
    return () => {
      this.tasks = this.tasks.filter((t) => t !== entry);
    };
  }

  /** Number of tasks waiting. */
  get pending(): number {
    return this.tasks.length;
  }

  /** When the next task is due, if any. */
  nextAt(): number | undefined {
    return this.next()?.atMs;
  }

  /** Move the clock forward by `ms`, running every task that falls due on the way. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.clock.now() + ms);
  }

  async advanceTo(targetMs: number): Promise<void> {
    for (;;) {
      const next = this.next();
      if (!next || next.atMs > targetMs) break;
      this.tasks = this.tasks.filter((t) => t !== next);
      if (next.atMs > this.clock.now()) this.clock.set(next.atMs);
      next.task();
      await settle();
    }
    if (targetMs > this.clock.now()) this.clock.set(targetMs);
    await settle();
  }

  private next(): ManualTask | undefined {
    let best: ManualTask | undefined;
    for (const t of this.tasks) {
      if (!best || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
