/**
 * The README's Configuration table, rendered from the schema: one row per
 * setting, per-target settings as their pattern. test/config/readme.test.ts
 * fails when README.md and this rendering disagree; refresh it with
 * `npm run docs:config`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GLOBAL_SETTINGS, TARGET_SETTINGS, type Setting } from "@tickettoken/services/host/config-schema";

export const TABLE_START = "<!-- configuration table: generated from services/host/config-schema.ts by `npm run docs:config` -->";
export const TABLE_END = "<!-- end of configuration table -->";

/** Every documented variable (or pattern), in table order. */
export function documentedNames(): string[] {
  return [...Object.values(GLOBAL_SETTINGS), ...TARGET_SETTINGS].map((s: Setting) => s.name);
}

export function renderConfigurationTable(): string {
  const row = (s: Setting) =>
    `| \`${s.name}\` | ${s.scope} | ${s.type}${s.secret ? " (secret)" : ""} | ${s.defaultText} | ${s.form} | ${s.doc} |`;
  return [
    "| variable | scope | type | default | accepted | meaning |",
    "| --- | --- | --- | --- | --- | --- |",
    ...Object.values(GLOBAL_SETTINGS).map((s: Setting) => row(s)),
    ...TARGET_SETTINGS.map(row),
  ].join("\n");
}

/** README text with the table between the markers replaced by the current rendering. */
export function withRenderedTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error("README.md has no configuration table markers");
  return `${readme.slice(0, start + TABLE_START.length)}\n${renderConfigurationTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes("--write")) {
  const path = fileURLToPath(new URL("../../../README.md", import.meta.url));
  writeFileSync(path, withRenderedTable(readFileSync(path, "utf8")));
}
