/**
 * Vitest setup (vitest.config.ts setupFiles): a test during which the process
 * emitted a DeprecationWarning fails, and so does a file whose hooks emitted
 * one, so a clean run stays free of them. Node emits each deprecation code
 * once per process, so the first test that triggers it is the one that fails.
 */
import { setImmediate as tick } from "node:timers/promises";
import { afterAll, afterEach } from "vitest";
import { describeDeprecations, takeDeprecations } from "./deprecations.ts";

async function failOnDeprecations(where: string): Promise<void> {
  // process.emitWarning emits on the next tick: let one through before looking.
  await tick();
  const found = takeDeprecations();
  if (found.length > 0) throw new Error(`DeprecationWarning ${where}:\n${describeDeprecations(found)}`);
}

afterEach(() => failOnDeprecations("during this test (or the hooks before it)"));
afterAll(() => failOnDeprecations("in this file's hooks"));
