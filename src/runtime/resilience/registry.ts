/**
 * The policy stacks of this process, one per downstream target, shared by
 * every client of that target; also what operators list and reset through
 * the admin RPC (BreakerAdmin). Tests make their own registry (own clock,
 * own breakers) instead of sharing the process one.
 */
import type { ServiceContract } from "../contract/types.ts";
import { createLogger, type Logger } from "../observability/logger.ts";
import type { BreakerAdmin, BreakerSnapshot } from "./breaker-admin.ts";
import { createReporter, type ResilienceObserver } from "./events.ts";
import { resolveLimits, systemClock, type Clock, type ResilienceOptions } from "./options.ts";
import { TargetPolicies } from "./policy-stack.ts";

export interface ResilienceRegistryOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Receives every resilience event of every target, as data. */
  readonly observe?: ResilienceObserver;
}

export class ResilienceRegistry implements BreakerAdmin {
  private readonly targets = new Map<string, TargetPolicies>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly observers: ResilienceObserver[];

  constructor(options: ResilienceRegistryOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? createLogger().child({ component: "resilience" });
    this.observers = options.observe ? [options.observe] : [];
  }

  /**
   * The target's stack, built on first use from defaults, `options` and the
   * environment; later clients of the same target share it (their limits must match).
   */
  policiesFor(contract: ServiceContract, options: ResilienceOptions & { readonly observe?: ResilienceObserver } = {}, env: NodeJS.ProcessEnv = process.env): TargetPolicies {
    const target = contract.name;
    const limits = resolveLimits(target, options, env);
    let policies = this.targets.get(target);
    if (!policies) {
      const observers = options.observe ? [...this.observers, options.observe] : this.observers;
      policies = new TargetPolicies(target, limits, this.clock, createReporter(this.logger, observers));
      this.targets.set(target, policies);
    } else if (JSON.stringify(policies.limits) !== JSON.stringify(limits)) {
      this.logger.warn({ target }, "resilience limits differ from the ones this target's shared stack was built with; keeping the first");
    }
    for (const [method, fallback] of Object.entries(options.fallback ?? {})) policies.enableFallback(contract, method, fallback);
    return policies;
  }

  list(): BreakerSnapshot[] {
    return [...this.targets.values()].map((p) => p.snapshot());
  }

  reset(target: string): boolean {
    const policies = this.targets.get(target);
    policies?.reset();
    return policies !== undefined;
  }
}

let processRegistry: ResilienceRegistry | undefined;

/** This process's registry (created on first use). */
export function resilienceRegistry(): ResilienceRegistry {
  processRegistry ??= new ResilienceRegistry();
  return processRegistry;
}
