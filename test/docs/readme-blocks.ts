/**
 * README.md as data for the docs tests: its fenced code blocks (language,
 * text, line, section, and the `<!-- name: value -->` directives written
 * right above a block), its shell commands (continuation lines joined) and
 * its inline commands. The tests read everything from the README itself, so
 * a command or snippet that drifts fails a test.
 */
import { readFileSync } from "node:fs";
import { REPO_ROOT } from "../support/exec.ts";

export interface FencedBlock {
  readonly lang: string;
  readonly text: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The nearest `##`/`###` heading above the block. */
  readonly section: string;
  /** `<!-- name: value -->` comments directly above the block (blank lines allowed between). */
  readonly directives: ReadonlyMap<string, string>;
}

export function readReadme(path = `${REPO_ROOT}README.md`): string {
  return readFileSync(path, "utf8");
}

const DIRECTIVE = /^<!--\s*([a-z-]+):\s*([\s\S]*?)\s*-->$/;

export function fencedBlocks(readme: string): FencedBlock[] {
  const lines = readme.split("\n");
  const blocks: FencedBlock[] = [];
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const heading = /^#{2,3} (.+)$/.exec(raw);
    if (heading) section = heading[1]!;
    const open = /^( *)```(\w*)\s*$/.exec(raw);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^ *```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(Math.min(indent, lines[j]!.length - lines[j]!.trimStart().length)));
    if (j >= lines.length) throw new Error(`README.md:${i + 1}: unclosed code fence`);
    const directives = new Map<string, string>();
    for (let k = i - 1; k >= 0; k--) {
      const t = lines[k]!.trim();
      if (t === "") continue;
      const d = DIRECTIVE.exec(t);
      if (!d) break;
      directives.set(d[1]!, d[2]!);
    }
    blocks.push({ lang: open[2]!, text: body.join("\n"), line: i + 1, section, directives });
    i = j;
  }
  return blocks;
}

/** A shell block's commands: comments dropped, `\` continuations joined, one string per command line. */
export function shellCommands(block: string): string[] {
  const out: string[] = [];
  let pending = "";
  for (const raw of block.split("\n")) {
    const line = pending === "" ? raw.trim() : raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    out.push(pending + line);
    pending = "";
  }
  if (pending !== "") out.push(pending.trimEnd());
  return out;
}

/** Inline code spans outside fenced blocks that are commands a reader would paste (`npm ...`, `npx ...`). */
export function inlineCommands(readme: string): string[] {
  const outside = readme.replace(/^ *```\w*\n[\s\S]*?^ *```\s*$/gm, "");
  const spans = [...outside.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...new Set(spans.filter((s) => /^(npm|npx) /.test(s)))];
}

/** Splits a shell word list the way bash would for the plain cases the README uses (quotes, no expansion). */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  let depth = 0; // inside $( ... ): kept as one word
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote && depth === 0) quote = undefined;
      else cur += c;
      if (quote === '"' && c === "$" && command[i + 1] === "(") depth++;
      else if (depth > 0 && c === ")") depth--;
      continue;
    }
    if (c === "$" && command[i + 1] === "(") depth++;
    else if (depth > 0 && c === ")") depth--;
    if (depth === 0 && (c === '"' || c === "'")) {
      quote = c;
      inWord = true;
      continue;
    }
    if (depth === 0 && /\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (quote) throw new Error(`unbalanced quote in: ${command}`);
  if (inWord) words.push(cur);
  return words;
}

/** The file tsc checks: the README's declared context, then the block as written. */
export function snippetSource(b: FencedBlock): string {
  const context = b.directives.get("snippet-context");
  // A snippet without import/export is still a module of its own (names never clash between snippets; top-level await).
  const isModule = /^\s*(import|export)\s/m.test(b.text) || (context !== undefined && /^\s*import\s/m.test(context));
  return `${context ? `${context}\n` : ""}${b.text}\n${isModule ? "" : "export {};\n"}`;
}

