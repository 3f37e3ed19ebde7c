/**
 * sqlLookup.ts - one lookup answered by the installed C proxymap and by
 * our code, with the lines each logged: the instrument of the SQL tables'
 * unit-level differential tests (mysql, pgsql).
 *
 *  - referenceLookup(): the C proxymap run stand-alone (-S -V, one request
 *    per process, Postfix 3.7 protocol) with a private main.cf;
 *  - ourLookup(): our dict layer (openDict/dictGet) in this process, its
 *    log lines captured;
 *  - writeOld(): a file with an old mtime (no hot-file pause).
 *
 * Logs nothing itself; failures throw.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks, type LogSink } from "../../src/log/msg";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";

export { C_PROXYMAP } from "./reference";
import { C_PROXYMAP } from "./reference";

/** One lookup's answer: status, value, and the warnings/errors it logged (without "postfix/proxymap: "). */
export interface LookupReply {
  /** undefined = no reply (the reference died). */
  status: number | undefined;
  value: string;
  log: string[];
}

let refConfigDir: string | undefined;

function referenceConfigDir(mainCf: string): string {
  if (mainCf) {
    const dir = mkdtempSync(join(tmpdir(), "pm-refcf-"));
    writeOld(join(dir, "main.cf"), mainCf);
    return dir;
  }
  if (!refConfigDir) {
    refConfigDir = mkdtempSync(join(tmpdir(), "pm-refcf-"));
    writeOld(join(refConfigDir, "main.cf"), "");
  }
  return refConfigDir;
}

/**
 * Write a file with an mtime a minute in the past: Postfix (and we) read a
 * file modified within the last second again after a pause.
 */
export function writeOld(path: string, text: string | Uint8Array): void {
  writeFileSync(path, typeof text === "string" ? Buffer.from(text, "latin1") : text);
  const t = Date.now() / 1000 - 60;
  utimesSync(path, t, t);
}

/**
 * A lookup answered by the installed C proxymap (Postfix 3.7 protocol),
 * run stand-alone (-S, one request per process) with logging to stderr
 * (-V). `table` is "TYPE:NAME".
 */
export async function referenceLookup(table: string, key: string, flags = 0, mainCf = ""): Promise<LookupReply> {
  const dir = referenceConfigDir(mainCf);
  const req = Buffer.from(`request\0lookup\0table\0${table}\0flags\0${flags}\0key\0${key}\0\0`, "latin1");
  const p = Bun.spawn([C_PROXYMAP, "-S", "-V", "-o", `proxy_read_maps=proxy:${table}`], {
    env: { MAIL_CONFIG: dir, PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdin: req,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).arrayBuffer()]);
  await p.exited;
  if (mainCf) rmSync(dir, { recursive: true, force: true });
  const text = Buffer.from(out).toString("latin1");
  const log = Buffer.from(err)
    .toString("latin1")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.replace(/^postfix\/proxymap: /, ""));
  const m = /^status\0(\d+)\0value\0([^\0]*)\0\0$/.exec(text);
  if (!m) return { status: undefined, value: text, log };
  return { status: Number(m[1]), value: m[2], log };
}

const captured: string[] = [];
const captureSink: LogSink = { write: (_s, line) => captured.push(line) };
let sinkInstalled = false;

/** Lines our code logged since the last call (installs a capturing sink on first use). */
export function takeOurLog(): string[] {
  if (!sinkInstalled) {
    setLogSinks([captureSink]);
    sinkInstalled = true;
  }
  return captured.splice(0);
}

/** Back to logging on stderr, as msg.ts does by default (for the test files that follow). */
export function releaseOurLog(): void {
  if (!sinkInstalled) return;
  sinkInstalled = false;
  captured.length = 0;
  setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
}

/** A lookup answered by our code, through the dict layer (openDict/dictGet), with the lines it logged. */
export async function ourLookup(table: string, key: string, flags = 0): Promise<LookupReply> {
  takeOurLog();
  const d = await openDict(table, false, flags);
  const r = await dictGet(d, key, flags);
  return { status: r.status, value: r.value, log: takeOurLog() };
}

/**
 * Close the tables ourLookup opened (closeAllDicts); with `end` (a test
 * file's afterAll), also give logging back to stderr and remove
 * referenceLookup()'s configuration directory.
 */
export async function closeOurTables(end = false): Promise<void> {
  if (end) {
    releaseOurLog();
    if (refConfigDir) rmSync(refConfigDir, { recursive: true, force: true });
    refConfigDir = undefined;
  }
  await closeAllDicts();
}
