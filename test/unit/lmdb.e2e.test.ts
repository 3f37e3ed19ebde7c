/**
 * The file databases through the whole executable: the C proxymap and ours
 * (dist/proxymap), each under a private master(8) that runs both services
 * with privileges dropped to mail_owner, get the same requests on lmdb
 * (write service and read service on one file, which the real postmap then
 * reads), cdb and sqlite tables, and must give the same replies; ours must
 * leave no lmdb lock file behind.
 *
 * Needs root, Postfix with postfix-lmdb/-cdb/-sqlite, and a current
 * dist/proxymap (npm run build) that lists the three types.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { Database } from "bun:sqlite";
import { PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";
import { WireClient, type Attr } from "../helpers/wire";

async function scenario(impl: ProxymapImpl): Promise<{ replies: string[]; files: string[]; postmapQ: string }> {
  const inst = await PostfixInstance.start({
    impl,
    label: "filedb-e2e",
    mainCf: {
      proxy_write_maps: "proxy:lmdb:$data_directory/verify",
      proxy_read_maps: "proxy:lmdb:$data_directory/verify proxy:cdb:$data_directory/map proxy:sqlite:$data_directory/s.cf",
    },
  });
  try {
    const d = inst.dataDir;
    writeFileSync(`${d}/map`, "a@example.com alpha\nB b-value\n");
    const pm = inst.run("postmap", [`cdb:${d}/map`]);
    if (pm.code !== 0) throw new Error(`postmap cdb: ${pm.stderr} (apt-get install postfix-cdb)`);
    const db = new Database(`${d}/s.sqlite`);
    db.run("CREATE TABLE t (k TEXT, v TEXT)");
    db.run("INSERT INTO t VALUES ('a@example.com', 'one'), ('a@example.com', 'two')");
    db.close();
    writeFileSync(`${d}/s.cf`, `dbpath = ${d}/s.sqlite\nquery = SELECT v FROM t WHERE k='%s'\n`);
    const lm = `lmdb:${d}/verify`;
    const w = await WireClient.connect(inst.socket("proxywrite"));
    const r = await WireClient.connect(inst.socket("proxymap"));
    const replies: string[] = [];
    const ask = async (c: WireClient, attrs: Attr[]) => {
      const x = await c.request(attrs, 10_000);
      replies.push(x.kind === "reply" ? x.attrs.map(([n, v]) => `${n}=${v}`).join(" ") : x.kind);
    };
    await ask(w, [["request", "open"], ["table", lm], ["flags", "65536"]]);
    await ask(w, [["request", "update"], ["table", lm], ["flags", "448"], ["key", "user@example.com"], ["value", "0:1:2:ok"]]);
    await ask(w, [["request", "update"], ["table", lm], ["flags", "448"], ["key", "gone@example.com"], ["value", "x"]]);
    await ask(w, [["request", "delete"], ["table", lm], ["flags", "320"], ["key", "gone@example.com"]]);
    await ask(w, [["request", "sequence"], ["table", lm], ["flags", "64"], ["function", "0"]]);
    await ask(w, [["request", "sequence"], ["table", lm], ["flags", "64"], ["function", "1"]]);
    await ask(r, [["request", "lookup"], ["table", lm], ["flags", "524353"], ["key", "user@example.com"]]);
    await ask(r, [["request", "update"], ["table", lm], ["flags", "448"], ["key", "k"], ["value", "v"]]);
    await ask(r, [["request", "lookup"], ["table", `cdb:${d}/map`], ["flags", "540736"], ["key", "b"]]);
    await ask(r, [["request", "lookup"], ["table", `cdb:${d}/map`], ["flags", "540736"], ["key", "none"]]);
    await ask(r, [["request", "lookup"], ["table", `sqlite:${d}/s.cf`], ["flags", "540736"], ["key", "A@example.com"]]);
    w.close();
    r.close();
    const postmapQ = inst.run("postmap", ["-q", "user@example.com", lm]).stdout;
    // Ours also keeps its saved postconf -d output there (config/defaultsCache.ts).
    return { replies: replies.map((s) => s.replaceAll(d, "@DATA@")), files: readdirSync(d).filter((f) => !f.startsWith("proxymap-defaults.")).sort(), postmapQ };
  } finally {
    inst.stop();
  }
}

describe("lmdb, cdb, sqlite through dist/proxymap under master(8)", () => {
  test("same replies as the C proxymap; postmap reads what proxywrite wrote; no lock file", async () => {
    const c = await scenario("c");
    const ours = await scenario("ours");
    if (ours.replies[1] === "status=2") {
      throw new Error("dist/proxymap does not serve lmdb: list cdb, lmdb and sqlite in src/tables/registry.ts, then npm run build");
    }
    expect(ours.replies).toEqual(c.replies);
    expect(ours.postmapQ).toBe("0:1:2:ok\n");
    expect(ours.files).toEqual(c.files);
    expect(ours.files.some((f) => f.endsWith("-lock"))).toBe(false);
  }, 60_000);
});
