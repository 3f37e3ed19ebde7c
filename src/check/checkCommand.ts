/**
 * checkCommand.ts - `proxymap --check [-c CONFIG_DIR] [--key KEY]`: every
 * table that proxy_read_maps and proxy_write_maps approve, checked before
 * it goes live, and every proxy: table the configuration uses without
 * approving it. One line per table:
 *
 *   proxymap   texthash:/etc/postfix/virtual: OK
 *   proxymap   mysql:/etc/postfix/users.cf: mysql:/etc/postfix/users.cf: query failed: Table 'mail.userz' doesn't exist
 *   proxywrite btree:/var/lib/postfix/verify_cache: OK (/var/lib/postfix/verify_cache.db will be created at the first update)
 *   proxymap   hash:/etc/postfix/relocated: request for unapproved table (used in relocated_maps): to approve this table for read-only access, list proxy:hash:/etc/postfix/relocated in main.cf:proxy_read_maps
 *
 * then a summary line; exit status 0 when every line is OK, 1 otherwise
 * (2 for a usage error, from main.ts).
 *
 * Each proxymap service of master.cf (masterCf.ts) is checked in a child
 * process of its own (this executable with the internal option
 * --check-service LINE), because each may have its own chroot, user and
 * -o settings, and because a child that enters a jail or drops its
 * privileges cannot come back (serviceCheck.ts). A child that does not
 * report within its time is killed and its service reported as such.
 *
 * Reads main.cf and master.cf (and, in the children, the tables). Writes
 * to stdout; logs nothing.
 */
import { loadMainConfig } from "../config/mainCf";
import { checkService, DEFAULT_CANARY, REPORT_MARK, type ServiceReport } from "./serviceCheck";
import { proxymapServices, readMasterCf, type MasterEntry } from "./masterCf";
import { usedTables } from "./used";

export interface CheckOptions {
  configDir: string;
  key?: string;
  out?: (s: string) => void;
}

/** How to run this program again: the compiled executable, or bun with the entry script. */
function selfCommand(): string[] {
  return Bun.main.startsWith("/$bunfs/") ? [process.execPath] : [process.execPath, Bun.main];
}

/** Time a child may take: open and lookup time of a few slow tables, and then some. */
const CHILD_TIMEOUT_MS = 300_000;

async function runChild(configDir: string, e: MasterEntry, key: string): Promise<ServiceReport> {
  const p = Bun.spawn([...selfCommand(), "--check-service", String(e.line), "-c", configDir, "--key", key], {
    env: { ...process.env, MAIL_CONFIG: configDir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: CHILD_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const line = stdout.split("\n").find((l) => l.startsWith(REPORT_MARK));
  if (line) return JSON.parse(line.slice(REPORT_MARK.length)) as ServiceReport;
  const why = p.signalCode ? `no report within ${CHILD_TIMEOUT_MS / 1000}s` : `check process ended without a report (exit ${p.exitCode})`;
  return { service: e.service, as: "", errors: [[why, stderr.trim()].filter(Boolean).join(": ")], approved: [], tables: [] };
}

/** The internal child mode: check the service of master.cf line `line`, print the report. */
export async function runCheckService(configDir: string, line: number, key: string): Promise<number> {
  const svc = proxymapServices(readMasterCf(configDir), configDir).find((s) => s.entry.line === line);
  let report: ServiceReport;
  if (svc === undefined) report = { service: "?", as: "", errors: [`master.cf line ${line} runs no proxymap`], approved: [], tables: [] };
  else if ("error" in svc) report = { service: svc.entry.service, as: "", errors: [`master.cf line ${line}: ${svc.error}`], approved: [], tables: [] };
  else report = await checkService(configDir, svc.options, key);
  process.stdout.write(REPORT_MARK + JSON.stringify(report) + "\n");
  return 0;
}

export async function runCheck(o: CheckOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s));
  const key = o.key ?? DEFAULT_CANARY;
  const master = readMasterCf(o.configDir);
  const services = proxymapServices(master, o.configDir);
  const lines: string[] = [];
  let problems = 0;
  let tables = 0;
  const approved = { read: new Set<string>(), write: new Set<string>() };
  const as: string[] = [];
  const pad = (s: string) => s.padEnd(10);

  if (services.length === 0) {
    lines.push(`master.cf: no service runs proxymap: proxy: tables cannot be served`);
    problems++;
  }
  for (const svc of services) {
    const r = "error" in svc ? { service: svc.entry.service, as: "", errors: [`master.cf line ${svc.entry.line}: ${svc.error}`], approved: [], tables: [] } : await runChild(o.configDir, svc.entry, key);
    if (r.as) as.push(`${r.service} ${r.as}`);
    for (const err of r.errors) {
      lines.push(`${pad(r.service)} ${err}`);
      problems++;
    }
    const set = r.service === "proxywrite" ? approved.write : approved.read;
    for (const t of r.approved) set.add(t);
    for (const t of r.tables) {
      tables++;
      if (!t.ok) problems++;
      lines.push(`${pad(r.service)} ${t.table}: ${t.ok ? (t.text ? `OK (${t.text})` : "OK") : t.text}`);
    }
  }

  // Tables the configuration uses that no service approves.
  const config = loadMainConfig({ configDir: o.configDir, overrides: [], settleWait: false });
  const unapproved = new Map<string, { writer: boolean; where: string[] }>();
  for (const u of usedTables(config, master)) {
    if ((u.writer ? approved.write : approved.read).has(u.table)) continue;
    const k = `${u.writer ? "w" : "r"}${u.table}`;
    const e = unapproved.get(k) ?? { writer: u.writer, where: [] };
    if (!e.where.includes(u.where)) e.where.push(u.where);
    unapproved.set(k, e);
  }
  for (const [k, e] of unapproved) {
    const table = k.slice(1);
    const svc = e.writer ? "proxywrite" : "proxymap";
    const param = e.writer ? "proxy_write_maps" : "proxy_read_maps";
    lines.push(
      `${pad(svc)} ${table}: request for unapproved table (used in ${e.where.join(", ")}): to approve this table for ${e.writer ? "read-write" : "read-only"} access, list proxy:${table} in main.cf:${param}`,
    );
    problems++;
  }

  out(lines.map((l) => l + "\n").join(""));
  out(`proxymap --check of ${o.configDir}: ${tables} table${tables === 1 ? "" : "s"}, ${problems === 0 ? "no problems" : `${problems} problem${problems === 1 ? "" : "s"}`}${as.length ? ` (opened ${as.join("; ")})` : ""}\n`);
  return problems === 0 ? 0 : 1;
}
