/**
 * Organisation-scale reads: at most a few requests in flight (a pool), and one throttling gate per
 * service (origin), so that a 429 or 503 with Retry-After pauses every request to that service until
 * the time has passed, not only the request that got it.
 */
import { RequestGate } from '../http/http';
import { TaskFailure } from '../http/failures';

/** At most `size` tasks run at once; the others wait in order. */
export class Pool {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** The gate of one service. */
export class ThrottleGate implements RequestGate {
  private until = 0;
  /** How often the service closed the gate, for the log. */
  pauses = 0;

  constructor(
    readonly service: string,
    private readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  pause(ms: number): void {
    this.pauses++;
    this.until = Math.max(this.until, this.now() + ms);
  }

  async wait(): Promise<void> {
    for (;;) {
      const left = this.until - this.now();
      if (left <= 0) return;
      if (left > this.maxWaitMs) {
        throw new TaskFailure({
          what: `${this.service} asked for no requests for ${Math.ceil(left / 1000)} s (Retry-After), longer than the ${Math.round(this.maxWaitMs / 1000)} s the task waits.`,
          cause: 'The organisation is throttled: this identity made too many requests recently (Azure DevOps rate limits).',
          fix: 'Re-run the audit later, or audit fewer projects per run (input projects).',
          code: 'THROTTLED',
        });
      }
      await this.sleep(left);
    }
  }
}

/** One gate per origin, shared by every request of the run. */
export class Gates {
  private readonly gates = new Map<string, ThrottleGate>();

  constructor(private readonly maxWaitMs: number) {}

  for(url: string, service: string): ThrottleGate {
    const origin = new URL(url).origin.toLowerCase();
    let g = this.gates.get(origin);
    if (!g) {
      g = new ThrottleGate(service, this.maxWaitMs);
      this.gates.set(origin, g);
    }
    return g;
  }

  totalPauses(): number {
    return [...this.gates.values()].reduce((n, g) => n + g.pauses, 0);
  }
}
