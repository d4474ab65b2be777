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
    const line = raw.trim();
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

export interface ShellWord {
  /** The word as the command receives it (quotes removed; `$(...)` and `$VAR` left unexpanded). */
  readonly value: string;
  /** The word as written. */
  readonly raw: string;
}

/** Splits a command into words the way bash does for the plain cases the README uses (quotes, `$(...)` kept whole). */
export function shellWords(command: string): ShellWord[] {
  const words: ShellWord[] = [];
  let value = "";
  let start = -1;
  let quote: '"' | "'" | undefined;
  let depth = 0; // inside $( ... )
  const end = (i: number) => {
    if (start >= 0) words.push({ value, raw: command.slice(start, i) });
    value = "";
    start = -1;
  };
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (start < 0 && /\s/.test(c) && !quote) continue;
    if (start < 0 && c === "#") break; // a comment runs to the end of the line
    if (start < 0) start = i;
    if (c === "$" && command[i + 1] === "(" && quote !== "'") {
      depth++;
      value += c;
      continue;
    }
    if (depth > 0) {
      if (c === ")") depth--;
      value += c;
      continue;
    }
    if (quote) {
      if (c === quote) quote = undefined;
      else value += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      continue;
    }
    if (/\s/.test(c)) {
      end(i);
      continue;
    }
    value += c;
  }
  if (quote || depth > 0) throw new Error(`unbalanced quote or $( in: ${command}`);
  end(command.length);
  return words;
}

/** `NAME=value` / `NAME="value"` assignments of a block (not `$(...)` ones), in order. */
export function simpleAssignments(commands: readonly string[]): Map<string, string> {
  const vars = new Map<string, string>();
  for (const c of commands) {
    const m = /^([A-Z_][A-Z0-9_]*)=(?:"([^"$]*(?:\$[A-Z_][A-Z0-9_]*[^"$]*)*)"|([^\s"'$(]*(?:\$[A-Z_][A-Z0-9_]*[^\s"'$(]*)*))$/.exec(c);
    if (m) vars.set(m[1]!, expandVars(m[2] ?? m[3] ?? "", vars));
  }
  return vars;
}

/** Replaces `$NAME` (not `$(`) by the value of a simple assignment; other variables stay. */
export function expandVars(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$([A-Z_][A-Z0-9_]*)/g, (all, name: string) => vars.get(name) ?? all);
}

/** The file tsc checks: the README's declared context, then the block as written. */
export function snippetSource(b: FencedBlock): string {
  const context = b.directives.get("snippet-context");
  // A snippet without import/export is still a module of its own (names never clash between snippets; top-level await).
  const isModule = /^\s*(import|export)\s/m.test(b.text) || (context !== undefined && /^\s*import\s/m.test(context));
  return `${context ? `${context}\n` : ""}${b.text}\n${isModule ? "" : "export {};\n"}`;
}


/** The command without its trailing `# comment` (a `#` that starts a word outside quotes). */
export function stripComment(command: string): string {
  let quote: string | undefined;
  let depth = 0;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "$" && command[i + 1] === "(" && quote !== "'") depth++;
    else if (depth > 0 && c === ")") depth--;
    else if (depth === 0 && quote && c === quote) quote = undefined;
    else if (depth === 0 && !quote && (c === '"' || c === "'")) quote = c;
    else if (depth === 0 && !quote && c === "#" && (i === 0 || /\s/.test(command[i - 1]!))) return command.slice(0, i).trimEnd();
  }
  return command.trimEnd();
}
