/**
 * golden.ts - the golden-file corpus of the table drivers and the dict
 * layer, and the two ways to run it:
 *  - runOracle(): against the real C proxymap of the installed Postfix
 *    (3.7.11 on Debian), started without master(8) by runpm.pl so that one
 *    connection carries all requests of a case;
 *  - runOurs(): through our dict layer (src/tables/dict.ts), doing what the
 *    service does around it.
 * Both give the same text (the .ref format below), so a test compares them
 * byte for byte, and the generator writes the oracle's text as the golden
 * .ref file that the offline test replays.
 *
 * Layout: test/golden/<type>/<case>.in   requests (format below)
 *         test/golden/<type>/<case>.map  optional table text (raw bytes), @MAP@
 *         test/golden/<type>/<case>.ref  expected output: requests, log lines, replies
 *
 * .in lines ("#" comments; strings in double quotes with \\ \" \xNN escapes):
 *   option writer             run as the proxywrite service
 *   option utf8 no            smtputf8_enable = no
 *   file NAME "content"       create @DIR@/NAME before the case runs
 *   open "TABLE" FLAGS
 *   lookup "TABLE" FLAGS "KEY"
 *   sequence "TABLE" FLAGS FN
 *   update "TABLE" FLAGS "KEY" "VALUE"
 *   delete "TABLE" FLAGS "KEY"
 * Every table a request names is approved (proxy_read_maps or
 * proxy_write_maps). @MAP@ is the path of a copy of <case>.map, @DIR@ the
 * case's scratch directory; both are put back into the output.
 *
 * A request line may start with "!": the reference process exits on it (a
 * deliberate difference: we answer instead). It must be the case's last.
 *
 * .ref lines: "> request" echo, "| log line", "< reply attributes". For a
 * "!" request the lines are "!| our log line" and "!< our reply", and "!x"
 * lines quote what the reference logged before it died (only the oracle
 * run has those; comparisons drop them with withoutReference()).
 */
import { forgetUnheldNames } from "../../../src/tables/environ";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { setLogSinks, type LogSink } from "../../../src/log/msg";
import { DictFlag, Status } from "../../../src/protocol/constants";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict, setUtf8Enabled } from "../../../src/tables/dict";
import { resetHashSeed } from "../../../src/tables/htable";

export const GOLDEN_DIR = join(import.meta.dir, "..");
const RUNPM = join(import.meta.dir, "runpm.pl");
export { C_PROXYMAP as PROXYMAP } from "../../helpers/reference";
import { C_PROXYMAP as PROXYMAP } from "../../helpers/reference";

// ------------------------------------------------------------ escaping

/** Quote a byte string: \\ \" and \xNN for control and 8-bit bytes. */
export function quote(s: string): string {
  return `"${escape(s)}"`;
}

export function escape(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += "\\\\";
    else if (c === 0x22) out += '\\"';
    else if (c < 0x20 || c >= 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += s[i];
  }
  return out;
}

/** Split an .in line into words; quoted words are unescaped. */
export function words(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === " " || line[i] === "\t") {
      i++;
      continue;
    }
    if (line[i] === '"') {
      let w = "";
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\") {
          const n = line[i + 1];
          if (n === "x") {
            w += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
            i += 4;
          } else {
            w += n;
            i += 2;
          }
        } else {
          w += line[i++];
        }
      }
      if (line[i] !== '"') throw new Error(`unterminated string in: ${line}`);
      i++;
      out.push(w);
    } else {
      let j = i;
      while (j < line.length && line[j] !== " " && line[j] !== "\t") j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

// ------------------------------------------------------------ cases

export type Req = { dies?: boolean } & (
  | { op: "open"; table: string; flags: number }
  | { op: "lookup"; table: string; flags: number; key: string }
  | { op: "sequence"; table: string; flags: number; fn: number }
  | { op: "update"; table: string; flags: number; key: string; value: string }
  | { op: "delete"; table: string; flags: number; key: string }
);

export interface Case {
  type: string;
  name: string;
  writer: boolean;
  utf8: boolean;
  files: Array<[string, string]>;
  map?: string;
  requests: Req[];
}

export function parseIn(type: string, name: string, text: string, map?: string): Case {
  const c: Case = { type, name, writer: false, utf8: true, files: [], map, requests: [] };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const w = words(line);
    const dies = w[0] === "!";
    if (dies) w.shift();
    const flags = Number(w[2]);
    const before = c.requests.length;
    switch (w[0]) {
      case "option":
        if (w[1] === "writer") c.writer = true;
        else if (w[1] === "utf8") c.utf8 = w[2] !== "no";
        else throw new Error(`unknown option: ${line}`);
        break;
      case "file":
        c.files.push([w[1], w[2]]);
        break;
      case "open":
        c.requests.push({ op: "open", table: w[1], flags });
        break;
      case "lookup":
        c.requests.push({ op: "lookup", table: w[1], flags, key: w[3] });
        break;
      case "sequence":
        c.requests.push({ op: "sequence", table: w[1], flags, fn: Number(w[3]) });
        break;
      case "update":
        c.requests.push({ op: "update", table: w[1], flags, key: w[3], value: w[4] });
        break;
      case "delete":
        c.requests.push({ op: "delete", table: w[1], flags, key: w[3] });
        break;
      default:
        throw new Error(`${type}/${name}.in: bad line: ${line}`);
    }
    if (dies) {
      if (c.requests.length !== before + 1) throw new Error(`${type}/${name}.in: "!" before a non-request: ${line}`);
      c.requests[before].dies = true;
    }
  }
  const last = c.requests.findIndex((r) => r.dies);
  if (last >= 0 && last !== c.requests.length - 1) throw new Error(`${type}/${name}.in: a "!" request must be the last`);
  return c;
}

/** Every case of the corpus, or those of one type. */
export function loadCases(onlyType?: string): Case[] {
  const out: Case[] = [];
  for (const type of readdirSync(GOLDEN_DIR).sort()) {
    if (type === "lib" || (onlyType && type !== onlyType)) continue;
    const dir = join(GOLDEN_DIR, type);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of names.sort()) {
      if (!f.endsWith(".in")) continue;
      const base = f.slice(0, -3);
      const mapPath = join(dir, base + ".map");
      const map = existsSync(mapPath) ? readFileSync(mapPath).toString("latin1") : undefined;
      out.push(parseIn(type, base, readFileSync(join(dir, f)).toString("latin1"), map));
    }
  }
  return out;
}

export function refPath(c: Case): string {
  return join(GOLDEN_DIR, c.type, c.name + ".ref");
}

export function readRef(c: Case): string | undefined {
  const p = refPath(c);
  return existsSync(p) ? readFileSync(p).toString("latin1") : undefined;
}

// ------------------------------------------------------------ scratch files

export interface Scratch {
  dir: string;
  mapPath: string;
  expand(s: string): string;
  /** Put the placeholders back into output text. */
  unexpand(s: string): string;
  remove(): void;
}

/** A scratch directory with the case's files, mtimes in the past (no "hot file" pause). */
export function makeScratch(c: Case): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `tables-${c.type}-`));
  const mapPath = join(dir, c.name + ".map");
  const past = new Date("2020-01-01T00:00:00Z");
  if (c.map !== undefined) {
    writeFileSync(mapPath, Buffer.from(c.map, "latin1"));
    utimesSync(mapPath, past, past);
  }
  const expand = (s: string) => s.replaceAll("@MAP@", mapPath).replaceAll("@DIR@", dir);
  for (const [name, content] of c.files) {
    const p = join(dir, name);
    if (name.endsWith("/")) mkdirSync(p, { recursive: true });
    else writeFileSync(p, Buffer.from(expand(content), "latin1"));
    utimesSync(p, past, past);
  }
  return {
    dir,
    mapPath,
    expand,
    unexpand: (s) => s.replaceAll(mapPath, "@MAP@").replaceAll(dir, "@DIR@"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ------------------------------------------------------------ output text

export function echo(r: Req): string {
  switch (r.op) {
    case "open":
      return `> open ${quote(r.table)} ${r.flags}`;
    case "lookup":
      return `> lookup ${quote(r.table)} ${r.flags} ${quote(r.key)}`;
    case "sequence":
      return `> sequence ${quote(r.table)} ${r.flags} ${r.fn}`;
    case "update":
      return `> update ${quote(r.table)} ${r.flags} ${quote(r.key)} ${quote(r.value)}`;
    case "delete":
      return `> delete ${quote(r.table)} ${r.flags} ${quote(r.key)}`;
  }
}

export function replyText(attrs: ReadonlyArray<readonly [string, string]>): string {
  return attrs.map(([n, v]) => `${n}=${quote(v)}`).join(" ");
}

function attrsOf(r: Req, status: number, a: { flags?: number; key?: string; value?: string }): Array<[string, string]> {
  switch (r.op) {
    case "open":
      return [["status", String(status)], ["flags", String((a.flags ?? 0) >>> 0)]];
    case "lookup":
      return [["status", String(status)], ["value", a.value ?? ""]];
    case "sequence":
      return [["status", String(status)], ["key", a.key ?? ""], ["value", a.value ?? ""]];
    default:
      return [["status", String(status)]];
  }
}

// ------------------------------------------------------------ our side

/** One request through our dict layer, as the service performs it. */
async function ourRequest(c: Case, r: Req, expand: (s: string) => string): Promise<Array<[string, string]>> {
  const table = expand(r.table);
  if ((r.op === "update" || r.op === "delete") && !c.writer) {
    // The service refuses these before it opens anything (its own test covers it).
    throw new Error("update/delete cases must use option writer");
  }
  if (r.op === "sequence" && r.fn !== 0 && r.fn !== 1) return attrsOf(r, Status.BAD, {});
  const d = await openDict(table, c.writer, r.flags);
  switch (r.op) {
    case "open":
      return attrsOf(r, Status.OK, { flags: d.word });
    case "lookup": {
      const x = await dictGet(d, r.key, r.flags);
      return attrsOf(r, x.status, x);
    }
    case "sequence": {
      const x = await dictSeq(d, r.fn, r.flags);
      return attrsOf(r, x.status, x);
    }
    case "update":
      return attrsOf(r, (await dictPut(d, r.key, r.value, r.flags | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE)).status, {});
    case "delete":
      return attrsOf(r, (await dictDel(d, r.key, r.flags | DictFlag.SYNC_UPDATE)).status, {});
  }
}

/**
 * What Postfix's msg_output() does to every log line: printable(line, '?')
 * (util/printable.c): bytes that are not printable ASCII become '?', except
 * UTF-8 lead bytes and their continuation bytes when smtputf8 is on. Our
 * log sinks are expected to do the same; applying it here too is harmless
 * (the result is already printable).
 */
export function printable(s: string, utf8: boolean): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (ch >= 0x20 && ch < 0x7f) {
      out += s[i];
    } else if (utf8 && ch >= 194 && ch <= 254 && next >= 128 && next < 192) {
      out += s[i];
      while (i + 1 < s.length && s.charCodeAt(i + 1) >= 128 && s.charCodeAt(i + 1) < 192) out += s[++i];
    } else {
      out += "?";
    }
  }
  return out;
}

export interface StepOutput {
  logs: string[];
  reply: Array<[string, string]>;
}

/** Run a case's requests through our dict layer; one output per request. */
export async function runOursSteps(c: Case, scratch: Scratch, count = c.requests.length): Promise<StepOutput[]> {
  // environ updates change this process's environment: each case starts from
  // the environment as it was, as the reference starts a fresh process.
  const env = { ...process.env };
  try {
    return await runStepsIn(c, scratch, count);
  } finally {
    for (const k of Object.keys(process.env)) if (!Object.hasOwn(env, k)) delete process.env[k];
    Object.assign(process.env, env);
    forgetUnheldNames();
  }
}

async function runStepsIn(c: Case, scratch: Scratch, count: number): Promise<StepOutput[]> {
  process.env.NORANDOMIZE = "1";
  resetHashSeed();
  setUtf8Enabled(c.utf8);
  await closeAllDicts();
  const out: StepOutput[] = [];
  let logs: string[] = [];
  const sink: LogSink = { write: (_s, line) => logs.push(printable(line, c.utf8)) };
  setLogSinks([sink]);
  try {
    for (const r of c.requests.slice(0, count)) {
      logs = [];
      const reply = await ourRequest(c, r, scratch.expand);
      out.push({ logs: logs.map(scratch.unexpand), reply: reply.map(([n, v]) => [n, scratch.unexpand(v)]) });
    }
  } finally {
    setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
    await closeAllDicts();
  }
  return out;
}

/**
 * The .ref text. steps[i] is the answer to request i (ours for a "!"
 * request); refLog holds what the reference logged when it died there.
 */
export function formatSteps(c: Case, steps: StepOutput[], refLog: string[] = []): string {
  const lines: string[] = [];
  c.requests.forEach((r, i) => {
    if (i >= steps.length) return;
    lines.push((r.dies ? "!" : "") + echo(r));
    const p = r.dies ? "!" : "";
    if (r.dies) for (const l of refLog) lines.push(`!x ${escape(l)}`);
    for (const l of steps[i].logs) lines.push(`${p}| ${escape(l)}`);
    lines.push(`${p}< ${replyText(steps[i].reply)}`);
  });
  return lines.join("\n") + "\n";
}

/** A .ref text without the reference's dying words ("!x" lines). */
export function withoutReference(ref: string): string {
  return ref
    .split("\n")
    .filter((l) => !l.startsWith("!x "))
    .join("\n");
}

/** Our .ref text for a case (needs no Postfix). */
export async function runOurs(c: Case): Promise<string> {
  const scratch = makeScratch(c);
  try {
    return formatSteps(c, await runOursSteps(c, scratch));
  } finally {
    scratch.remove();
  }
}

// ------------------------------------------------------------ the oracle

function parseList(b: Buffer): { attrs: Array<[string, string]>; used: number } | undefined {
  const attrs: Array<[string, string]> = [];
  let pos = 0;
  for (;;) {
    const n = b.indexOf(0, pos);
    if (n < 0) return undefined;
    if (n === pos) return { attrs, used: pos + 1 };
    const v = b.indexOf(0, n + 1);
    if (v < 0) return undefined;
    attrs.push([b.toString("latin1", pos, n), b.toString("latin1", n + 1, v)]);
    pos = v + 1;
  }
}

function encodeRequest(r: Req, table: string): Buffer {
  const a: Array<[string, string]> = [["request", r.op], ["table", table], ["flags", String(r.flags >>> 0)]];
  if (r.op === "lookup" || r.op === "delete") a.push(["key", r.key]);
  if (r.op === "update") a.push(["key", r.key], ["value", r.value]);
  if (r.op === "sequence") a.push(["function", String(r.fn)]);
  let s = "";
  for (const [n, v] of a) s += `${n}\0${v}\0`;
  return Buffer.from(s + "\0", "latin1");
}

/** Fail (never skip) when the oracle cannot run here. */
export function requireOracle(): void {
  const hint = "apt-get install postfix (Debian 12: Postfix 3.7.11), and perl-base for test/golden/lib/runpm.pl";
  if (!existsSync(PROXYMAP)) throw new Error(`the C proxymap ${PROXYMAP} is missing: ${hint}`);
  if (!Bun.which("perl")) throw new Error(`perl is missing: ${hint}`);
}

/**
 * Run a case against the C proxymap; returns its .ref text, and the index
 * of the request on which it exited (-1 if none).
 */
export async function runOracle(c: Case): Promise<{ ref: string; diedAt: number }> {
  requireOracle();
  const scratch = makeScratch(c);
  const cfDir = join(scratch.dir, "etc");
  mkdirSync(cfDir);
  const mainCf = join(cfDir, "main.cf");
  const sock = join(scratch.dir, "proxymap.sock");
  const tables = [...new Set(c.requests.map((r) => scratch.expand(r.table)))];
  const approve = tables.map((t) => "proxy:" + t).join(" ");
  // The approval list goes into main.cf, written as bytes: an -o argument
  // would be re-encoded as UTF-8 on its way to the C program.
  const cf =
    `compatibility_level = 3.6\nsmtputf8_enable = ${c.utf8 ? "yes" : "no"}\n` +
    `${c.writer ? "proxy_write_maps" : "proxy_read_maps"} = ${approve}\n`;
  writeFileSync(mainCf, Buffer.from(cf, "latin1"));
  // A file changed within the last second makes Postfix pause until it "cools down".
  utimesSync(mainCf, new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
  const args = [PROXYMAP, "-t", "unix", "-V"];
  if (c.writer) args.push("-n", "proxywrite");
  const proc = Bun.spawn(["perl", RUNPM, sock, ...args], {
    env: { MAIL_CONFIG: cfDir, PATH: process.env.PATH ?? "/usr/bin:/bin", NORANDOMIZE: "1" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let errText = "";
  const errDone = (async () => {
    const dec = new TextDecoder("latin1");
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) errText += Buffer.from(chunk).toString("latin1");
    void dec;
  })();
  const outReader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const ready = await outReader.read();
  if (ready.done) throw new Error(`runpm.pl did not start: ${errText}`);

  const { createConnection } = await import("node:net");
  const sockConn = createConnection({ path: sock });
  let buf = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | undefined;
  sockConn.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  const onEnd = () => {
    closed = true;
    wake?.();
  };
  sockConn.on("close", onEnd);
  sockConn.on("error", onEnd);
  const readList = async (): Promise<Array<[string, string]> | undefined> => {
    const deadline = Date.now() + 15000;
    for (;;) {
      const p = parseList(buf);
      if (p) {
        buf = buf.subarray(p.used);
        return p.attrs;
      }
      if (closed || Date.now() > deadline) return undefined;
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, 200);
      });
    }
  };
  const logLines = () => {
    const lines = errText.split("\n").filter((l) => l.length > 0);
    errText = "";
    return lines.map((l) => scratch.unexpand(l.replace(/^postfix\/proxymap(\[\d+\])?: /, "")));
  };

  try {
    const greeting = await readList();
    if (!greeting) throw new Error("the C proxymap sent no greeting");
    const steps: StepOutput[] = [];
    for (let i = 0; i < c.requests.length; i++) {
      const r = c.requests[i];
      sockConn.write(encodeRequest(r, scratch.expand(r.table)));
      const reply = await readList();
      await Bun.sleep(reply ? 15 : 100); // let the log lines of this request arrive
      const logs = logLines();
      if (!reply) {
        // The reference died on this request: record our answer instead.
        const ours = await runOursSteps(c, scratch, i + 1);
        steps.push(ours[i]);
        return { ref: formatSteps(c, steps, logs), diedAt: i };
      }
      steps.push({ logs, reply: reply.map(([n, v]) => [n, scratch.unexpand(v)]) });
    }
    return { ref: formatSteps(c, steps), diedAt: -1 };
  } finally {
    sockConn.destroy();
    proc.stdin.end();
    await proc.exited;
    await errDone;
    scratch.remove();
  }
}
