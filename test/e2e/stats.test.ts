/**
 * stats.test.ts - issue 17 end to end: a real Postfix master runs our
 * dist/proxymap with statistics on, a load (bench/load.ts) and real
 * Postfix clients (postmap -q) use its tables, and:
 *  - `proxymap --status --json` run while the load runs shows lookups, and
 *    once it has ended exactly the lookups and hits the load tool counted;
 *    the text form shows the same numbers; only root and mail_owner may
 *    read it (the directory is 0700 mail_owner, the files 0600);
 *  - the proxymap_stats_interval log lines add up to the same count;
 *  - the Prometheus file is valid exposition text (a strict reader,
 *    test/helpers/prometheus-text.ts) with the same count;
 *  - a mysql table's server appears under it with its connections and
 *    per-server counts;
 *  - with chroot = y in master.cf the jailed processes' files reach
 *    --status of their instance (and of no other instance);
 *  - `proxymap --check` passes a sound configuration (exit 0) and names,
 *    in the reference's words, a broken mysql query, an unreachable mysql
 *    server, a missing file, and a table main.cf uses without approving
 *    it (exit 1); a proxywrite table whose file does not exist yet is OK
 *    and is not created; the unreachable server, used through the
 *    service, is shown set aside and until when.
 * Needs root, Postfix (postfix-mysql) and MariaDB (test/helpers/mariadb.ts
 * starts it).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runLoad } from "../../bench/load";
import { writeCoolFile } from "../helpers/files";
import { createTestDatabase, requireMariadb, type TestDatabase } from "../helpers/mariadb";
import { OUR_PROXYMAP, PostfixInstance } from "../helpers/postfix-instance";
import { parseExposition } from "../helpers/prometheus-text";
import { requireOurBinary, requirePostfix } from "../helpers/require";

setDefaultTimeout(120_000);

let inst: PostfixInstance | undefined;
let broken: PostfixInstance | undefined;
let tdb: TestDatabase | undefined;
const KEYS = Array.from({ length: 200 }, (_, i) => `user${i}@example.com`);

/** Run our binary as an administration command, without blocking the event loop (the load runs in it). */
async function admin(args: string[], user?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = user ? ["runuser", "-u", user, "--", OUR_PROXYMAP, ...args] : [OUR_PROXYMAP, ...args];
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

interface StatusTable {
  table: string;
  processes: number;
  total: { lookups: number; hits: number; misses: number; retry: number };
  servers: Array<{ server: string; connections: { busy: number; open: number; limit: number }; total: { lookups: number; hits: number; misses: number } | null }>;
}

async function statusJson(i: PostfixInstance): Promise<{ processes: unknown[]; tables: StatusTable[] }> {
  const r = await admin(["--status", "--json", "-c", i.configDir]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

function mysqlCf(i: PostfixInstance, name: string, db: TestDatabase, hosts: string, query: string): string {
  return writeCoolFile(
    i.table(name),
    `hosts = ${hosts}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\nquery = ${query}\nconnect_timeout = 3\n`,
  );
}

describe("e2e: statistics, --status, --check", () => {
  let texthash = "";
  let mysql = "";

  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    await requireMariadb();
    tdb = createTestDatabase("stats");
    tdb.sql("CREATE TABLE t (k VARCHAR(64) PRIMARY KEY, v TEXT); INSERT INTO t VALUES ('alice', 'alice-box');");
    inst = await PostfixInstance.start({
      impl: "ours",
      label: "stats",
      mainCf: {
        // Both tables live under the instance's own tables directory (BASE/tables = $queue_directory/../tables).
        proxy_read_maps: "proxy:texthash:$queue_directory/../tables/users proxy:mysql:$queue_directory/../tables/users.cf",
        proxymap_stats_interval: "1s",
        // Report busy at once, so that master starts a second process for the load's second wave of clients.
        proxymap_busy_cpu: "1",
        // Postfix's default (proxy:unix:passwd.byname) is not in the proxy_read_maps above: --check would rightly name it.
        local_recipient_maps: "",
        proxymap_stats_prometheus_file: "$data_directory/proxymap.prom",
      },
    });
    texthash = `texthash:${inst.queueDir}/../tables/users`;
    mysql = `mysql:${inst.queueDir}/../tables/users.cf`;
    writeCoolFile(inst.table("users"), KEYS.slice(0, 100).map((k, n) => `${k} box-${n}`).join("\n") + "\n");
    mysqlCf(inst, "users.cf", tdb, `inet:${tdb.host}:${tdb.port}`, "SELECT v FROM t WHERE k='%s'");
  });

  afterAll(() => {
    inst?.stop();
    broken?.stop();
    tdb?.drop();
  });

  test("--status while the load runs, then exactly the load tool's counts; log lines and Prometheus agree", async () => {
    const i = inst!;
    const mark = i.logMark();
    const wave1 = runLoad({ socket: i.socket("proxymap"), table: texthash, keys: KEYS, clients: 2, seconds: 3 });
    await Bun.sleep(700);
    const wave2 = runLoad({ socket: i.socket("proxymap"), table: texthash, keys: KEYS, clients: 2, seconds: 2 });
    await Bun.sleep(800);
    const during = await statusJson(i);
    const mid = during.tables.find((t) => t.table === texthash);
    expect(mid?.total.lookups ?? 0).toBeGreaterThan(0);
    const [r1, r2] = await Promise.all([wave1, wave2]);
    const res = { lookups: r1.lookups + r2.lookups, hits: r1.hits + r2.hits, errors: r1.errors + r2.errors };
    expect(res.errors).toBe(0);
    expect(res.lookups).toBeGreaterThan(mid!.total.lookups);
    console.log(`load: ${res.lookups} lookups; proxymap processes: ${i.servicePids("proxymap").length}`);

    // Within about a second of the last request every process has written its file.
    let t: StatusTable | undefined;
    for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
      t = (await statusJson(i)).tables.find((x) => x.table === texthash);
      if (t?.total.lookups === res.lookups) break;
    }
    expect(t!.total).toMatchObject({ lookups: res.lookups, hits: res.hits, misses: res.lookups - res.hits, retry: 0 });
    const text = await admin(["--status", "-c", i.configDir]);
    expect(text.code).toBe(0);
    const row = text.stdout.split("\n").find((l) => l.startsWith(texthash))!;
    expect(row.split(/\s+/).slice(1, 6)).toEqual(["proxymap", String(t!.processes), String(res.lookups), String(res.hits), String(res.lookups - res.hits)]);

    // Every interval with requests has its log line; together they count every lookup.
    const re = new RegExp(`statistics: table ${texthash.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} lookups=(\\d+)/1s hits=(\\d+) miss=(\\d+) retry=0 config=0 latency p50=\\S+ms p99=\\S+ms max=\\S+ms at \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d`, "g");
    let logged = 0;
    for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
      logged = [...i.logSince(mark).matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
      if (logged === res.lookups) break;
    }
    expect({ logged }).toEqual({ logged: res.lookups });

    // The Prometheus file: valid, and the same count over the processes.
    const promPath = join(i.dataDir, "proxymap.prom");
    let promLookups = -1;
    for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
      const e = parseExposition(readFileSync(promPath, "utf8"));
      promLookups = e.samples
        .filter((s) => s.name === "proxymap_table_requests_total" && s.labels.table === texthash && s.labels.operation === "lookup")
        .reduce((a, s) => a + s.value, 0);
      if (promLookups === res.lookups) break;
    }
    expect({ promLookups }).toEqual({ promLookups: res.lookups });
    expect(readdirSync(i.dataDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("readable by root and mail_owner only", async () => {
    const i = inst!;
    const dir = join(i.queueDir, "proxymap-status");
    const pf = PostfixInstance.postfixUser();
    const st = statSync(dir);
    expect([st.uid, st.mode & 0o777]).toEqual([pf.uid, 0o700]);
    for (const f of readdirSync(dir)) {
      const fs = statSync(join(dir, f));
      expect([f, fs.uid, fs.mode & 0o777]).toEqual([f, pf.uid, 0o600]);
    }
    const asPostfix = await admin(["--status", "-c", i.configDir], "postfix");
    expect(asPostfix.code).toBe(0);
    expect(asPostfix.stdout).toContain(texthash);
    const asNobody = await admin(["--status", "-c", i.configDir], "nobody");
    expect(asNobody.code).toBe(1);
    expect(asNobody.stderr).toContain(`cannot read ${dir}: permission denied: run proxymap --status as root or as postfix (mail_owner)`);
  });

  test("a mysql table: its server under it, with connections and per-server counts", async () => {
    const i = inst!;
    expect(i.postmapQuery("alice", `proxy:${mysql}`).stdout).toBe("alice-box\n");
    expect(i.postmapQuery("nobody", `proxy:${mysql}`).code).toBe(1);
    let t: StatusTable | undefined;
    for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
      t = (await statusJson(i)).tables.find((x) => x.table === mysql);
      if (t?.total.lookups === 2) break;
    }
    expect(t!.total).toMatchObject({ lookups: 2, hits: 1, misses: 1 });
    expect(t!.servers).toHaveLength(1);
    expect(t!.servers[0]).toMatchObject({ server: `inet:${tdb!.host}:${tdb!.port}`, connections: { busy: 0 }, total: { lookups: 2, hits: 1, misses: 1 } });
    // The limit is each process's pool limit (16), added up over the processes that have the table open.
    expect(t!.servers[0].connections.limit % 16).toBe(0);
    expect(t!.servers[0].connections.open).toBeGreaterThanOrEqual(1);
    const text = await admin(["--status", "-c", i.configDir]);
    expect(text.stdout).toMatch(new RegExp(`\\n  server inet:${tdb!.host}:${tdb!.port}: connections busy 0 open \\d+ limit \\d+; lookups 2 hits 1 misses 1 retry 0 config 0`));
  });

  test("chroot = y: the jailed processes' files reach --status of their instance, and of no other", async () => {
    const jailed = await PostfixInstance.start({ impl: "ours", label: "statsjail", chroot: true, mainCf: { proxy_read_maps: "proxy:static:jailed", local_recipient_maps: "" } });
    try {
      const res = await runLoad({ socket: jailed.socket("proxymap"), table: "static:jailed", keys: ["a", "b"], clients: 2, seconds: 1 });
      let t: StatusTable | undefined;
      for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
        t = (await statusJson(jailed)).tables.find((x) => x.table === "static:jailed");
        if (t?.total.lookups === res.lookups) break;
      }
      expect(t!.total).toMatchObject({ lookups: res.lookups, hits: res.lookups });
      const pids = jailed.servicePids("proxymap");
      expect(pids.length).toBeGreaterThan(0);
      expect(readdirSync(join(jailed.queueDir, "proxymap-status")).sort()).toEqual(pids.map((p) => `${p}.json`).sort());
      expect((await statusJson(inst!)).tables.some((x) => x.table === "static:jailed")).toBe(false);
      // --check enters the same jail as the service.
      const check = await admin(["--check", "-c", jailed.configDir]);
      expect(check.stdout).toContain("proxymap   static:jailed: OK\n");
      expect(check.stdout).toContain(`opened proxymap as postfix, chrooted to ${jailed.queueDir}`);
      expect(check.code).toBe(0);
    } finally {
      jailed.stop();
    }
  });

  test("--check: a sound configuration passes", async () => {
    const r = await admin(["--check", "-c", inst!.configDir, "--key", "alice"]);
    expect(r.stdout).toContain(`proxymap   ${texthash}: OK\n`);
    expect(r.stdout).toContain(`proxymap   ${mysql}: OK\n`);
    expect(r.stdout).toMatch(/proxymap --check of .*: 2 tables, no problems \(opened proxymap as postfix; proxywrite as postfix\)\n$/);
    expect(r.code).toBe(0);
  });

  test("--check: a broken query, an unreachable server, a missing file, an unapproved table in use", async () => {
    broken = await PostfixInstance.start({
      impl: "ours",
      label: "check",
      mainCf: {
        proxy_read_maps: [
          "proxy:texthash:$queue_directory/../tables/good",
          "proxy:texthash:$queue_directory/../tables/missing",
          "proxy:mysql:$queue_directory/../tables/broken.cf",
          "proxy:mysql:$queue_directory/../tables/unreachable.cf",
        ].join(" "),
        proxy_write_maps: "proxy:btree:$data_directory/verify",
        address_verify_map: "proxy:btree:$data_directory/verify",
        virtual_alias_maps: "proxy:texthash:$queue_directory/../tables/good, proxy:hash:$queue_directory/../tables/unapproved",
        local_recipient_maps: "",
      },
    });
    const b = broken;
    const t = (n: string) => `${b.queueDir}/../tables/${n}`;
    writeCoolFile(b.table("good"), "a b\n");
    mysqlCf(b, "broken.cf", tdb!, `inet:${tdb!.host}:${tdb!.port}`, "SELECT v FROM no_such_table WHERE k='%s'");
    mysqlCf(b, "unreachable.cf", tdb!, "inet:127.0.0.1:1", "SELECT v FROM t WHERE k='%s'");
    const r = await admin(["--check", "-c", b.configDir]); // virtual_alias_domains defaults to $virtual_alias_maps
    const lines = r.stdout.split("\n");
    const line = (svc: string, table: string) => lines.find((l) => l.startsWith(`${svc.padEnd(10)} ${table}: `)) ?? `(no line for ${table})\n${r.stdout}\n${r.stderr}`;
    expect(line("proxymap", `texthash:${t("good")}`)).toEndWith(": OK");
    expect(line("proxymap", `texthash:${t("missing")}`)).toEndWith(`: open database ${t("missing")}: No such file or directory`);
    expect(line("proxymap", `mysql:${t("broken.cf")}`)).toEndWith(`: mysql:${t("broken.cf")}: query failed: Table '${tdb!.db}.no_such_table' doesn't exist`);
    expect(line("proxymap", `mysql:${t("unreachable.cf")}`)).toMatch(/: connect to mysql server inet:127\.0\.0\.1:1: Can't connect to server on '127\.0\.0\.1' \(\d+\)$/);
    expect(line("proxywrite", `btree:${b.dataDir}/verify`)).toEndWith(`: OK (${b.dataDir}/verify.db will be created at the first update)`);
    expect(existsSync(`${b.dataDir}/verify.db`)).toBe(false);
    expect(line("proxymap", `hash:${t("unapproved")}`)).toEndWith(
      `: request for unapproved table (used in virtual_alias_domains, virtual_alias_maps): to approve this table for read-only access, list proxy:hash:${t("unapproved")} in main.cf:proxy_read_maps`,
    );
    expect(r.stdout).toMatch(/: 5 tables, 4 problems \(/);
    expect(r.code).toBe(1);

    // The same unreachable server through the service: set aside, and --status says until when.
    const unreachable = `mysql:${t("unreachable.cf")}`;
    expect(b.postmapQuery("alice", `proxy:${unreachable}`).code).not.toBe(0);
    let s: StatusTable | undefined;
    for (const end = Date.now() + 5000; Date.now() < end; await Bun.sleep(200)) {
      s = (await statusJson(b)).tables.find((x) => x.table === unreachable);
      if (s?.total.retry === 1) break;
    }
    expect(s!.total).toMatchObject({ lookups: 1, retry: 1 });
    const server = s!.servers[0] as unknown as { server: string; set_aside_until: string | null; total: { retry: number } };
    expect(server.server).toBe("inet:127.0.0.1:1");
    expect(server.total.retry).toBe(1);
    // retry_interval (60 s) from the failure on.
    const until = Date.parse(server.set_aside_until!);
    expect(until - Date.now()).toBeGreaterThan(50_000);
    expect(until - Date.now()).toBeLessThanOrEqual(60_000);
    const text = await admin(["--status", "-c", b.configDir]);
    expect(text.stdout).toMatch(/\n {2}server inet:127\.0\.0\.1:1: connections busy 0 open 0 limit 16; lookups 1 hits 0 misses 0 retry 1 config 0 .*; set aside until \w{3} [ \d]\d \d\d:\d\d:\d\d \(in 1 process\)\n/);
  });
});
