/**
 * patterns.test.ts - a real Postfix smtpd resolves its access restrictions
 * through our proxymap, with issue 6's table types behind proxy:.
 *
 * A private master (test/helpers/postfix-instance.ts) runs dist/proxymap as
 * the proxymap service, and an smtpd on a loopback port (with anvil and
 * trivial-rewrite beside it) whose restrictions are:
 *   smtpd_client_restrictions    = check_client_access proxy:cidr:...
 *   smtpd_recipient_restrictions = check_recipient_access proxy:pcre:...,
 *       proxy:regexp:..., proxy:unionmap:{pcre:...,regexp:...},
 *       proxy:socketmap:inet:...:acl, proxy:tcp:..., then reject
 * An SMTP conversation from 127.0.0.2 is rejected by the cidr table; one
 * from 127.0.0.1 gets each recipient rejected with the text of the table
 * that matched (so each reply proves one table type answered through ours).
 * No RCPT is ever accepted, so smtpd never needs cleanup or a queue.
 * Real `postmap -q KEY` and `postmap -q - ` clients then query every table
 * through the same proxymap, and the same commands against an instance
 * running the C proxymap must print the same.
 *
 * File change: a regexp file is replaced while clients keep lookups in
 * flight. Ours re-opens a file table whose file changed on its next request
 * (at most one stat per table and second, src/tables/dict.ts openDict();
 * the old instance finishes what it has in flight); the reference's read
 * service instead exits once idle ("table ... has changed -- restarting")
 * and master starts a new one. Replaced by rename (how editors and postmap
 * write), every reply is the old answer or the new one, and the new one
 * once the change has been seen. Rewritten in place (truncate + write),
 * a reader can catch the file between the two: the replies are counted and
 * printed, and must never be an error.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OUR_PROXYMAP, PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { freeTcpPort, lastLine, smtpSession } from "../helpers/smtp";
import { SocketmapServer } from "../helpers/socketmap-server";
import { TcpTableServer } from "../helpers/tcp-server";
import { WireClient, attrsToObject, encodeRequest } from "../helpers/wire";

setDefaultTimeout(60_000);

let ours: PostfixInstance | undefined;
let ref: PostfixInstance | undefined;
let sockmap: SocketmapServer | undefined;
let tcp: TcpTableServer | undefined;
let smtpPort = 0;
let t: ReturnType<typeof tableNames>;

const FILES: Record<string, string> = {
  "client.cidr": "# smtpd client access by address\n127.0.0.2\tREJECT blocked by cidr\n127.0.0.0/8\tDUNNO\n",
  "rcpt.pcre": "/^(.+)@pcre\\.example$/\tREJECT pcre rejects $1\n/^x(\\d+)@/\tREJECT pcre digits ${1}\n",
  "rcpt.regexp": "/^(.+)@regexp\\.example$/\tREJECT regexp rejects $1\n",
  "u.pcre": "/^u1@union\\.example$/\tREJECT union via pcre\n",
  "u.regexp": "/^u2@union\\.example$/\tREJECT union via regexp\n",
  "change.regexp": "/^probe$/\told answer\n",
};

function tableNames(inst: PostfixInstance) {
  const p = (f: string) => inst.table(f);
  return {
    cidr: `cidr:${p("client.cidr")}`,
    pcre: `pcre:${p("rcpt.pcre")}`,
    regexp: `regexp:${p("rcpt.regexp")}`,
    union: `unionmap:{pcre:${p("u.pcre")},regexp:${p("u.regexp")}}`,
    sockmap: sockmap!.table("acl"),
    tcp: tcp!.table,
    change: `regexp:${p("change.regexp")}`,
  };
}

async function start(impl: ProxymapImpl, withSmtpd: boolean): Promise<PostfixInstance> {
  // The table names hold the instance's own paths: start, then write main.cf's maps and reload.
  const inst = await PostfixInstance.start({
    impl,
    label: `e2e-pat-${typeof impl === "string" ? impl : "x"}`,
    files: FILES,
    proxymapMaxproc: "2",
    masterCfExtra: withSmtpd
      ? [
          `127.0.0.1:${smtpPort} inet n - n - 1 smtpd`,
          "anvil     unix  -       -       n       -       1       anvil",
          "rewrite   unix  -       -       n       -       -       trivial-rewrite",
        ]
      : [],
  });
  const n = tableNames(inst);
  const cf = join(inst.configDir, "main.cf");
  const extra: Record<string, string> = {
    proxy_read_maps: Object.values(n).map((x) => `proxy:${x}`).join(" "),
    smtpd_client_restrictions: `check_client_access proxy:${n.cidr}`,
    smtpd_recipient_restrictions: [n.pcre, n.regexp, n.union, n.sockmap, n.tcp].map((x) => `check_recipient_access proxy:${x}`).join(", ") + ", reject",
    smtpd_relay_restrictions: "",
    smtpd_reject_unlisted_recipient: "no",
    // Debian's default (proxy:unix:passwd.byname $alias_maps) would need approvals of its own.
    local_recipient_maps: "",
    smtpd_peername_lookup: "no",
    smtpd_banner: "$myhostname ESMTP",
    biff: "no",
  };
  writeFileSync(cf, (await Bun.file(cf).text()).replace(/^proxy_read_maps = .*\n/m, "") + Object.entries(extra).map(([k, v]) => `${k} = ${v}\n`).join(""));
  inst.reload();
  await Bun.sleep(300);
  return inst;
}

/** One SMTP session to the instance's smtpd. */
const smtp = (from: string, commands: string[]) => smtpSession(smtpPort, from, commands);

describe("e2e: smtpd and postmap resolve pattern, composite and network tables through our proxymap", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    requireFile("/usr/lib/postfix/postfix-pcre.so", "apt-get install postfix-pcre");
    requireFile("/usr/lib/postfix/sbin/smtpd", "apt-get install postfix");
    sockmap = await SocketmapServer.start({ data: { acl: { "bad@sock.example": "REJECT socketmap says no" } } });
    tcp = await TcpTableServer.start({ data: { "bad@tcp.example": "REJECT tcp says no" } });
    smtpPort = await freeTcpPort();
    [ours, ref] = await Promise.all([start("ours", true), start("c", false)]);
    t = tableNames(ours);
  }, 60_000);

  afterAll(async () => {
    ours?.stop();
    ref?.stop();
    await sockmap?.close();
    await tcp?.close();
  });

  test("smtpd rejects a client by address through proxy:cidr (ours)", async () => {
    const r = await smtp("127.0.0.2", ["EHLO client.example", "MAIL FROM:<s@sender.example>", "RCPT TO:<anyone@x.example>", "QUIT"]);
    expect(lastLine(r[2])).toBe("554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: blocked by cidr");
  });

  test("smtpd rejects recipients through proxy:pcre, regexp, unionmap, socketmap and tcp (ours)", async () => {
    const rcpts = ["bob@pcre.example", "x42@other.example", "carol@regexp.example", "u1@union.example", "u2@union.example", "bad@sock.example", "bad@tcp.example", "nobody@else.example"];
    const r = await smtp("127.0.0.1", ["EHLO client.example", "MAIL FROM:<s@sender.example>", ...rcpts.map((a) => `RCPT TO:<${a}>`), "QUIT"]);
    expect(lastLine(r[1])).toStartWith("250 ");
    expect(r.slice(2, 2 + rcpts.length).map(lastLine)).toEqual([
      "554 5.7.1 <bob@pcre.example>: Recipient address rejected: pcre rejects bob",
      "554 5.7.1 <x42@other.example>: Recipient address rejected: pcre digits 42",
      "554 5.7.1 <carol@regexp.example>: Recipient address rejected: regexp rejects carol",
      "554 5.7.1 <u1@union.example>: Recipient address rejected: union via pcre",
      "554 5.7.1 <u2@union.example>: Recipient address rejected: union via regexp",
      "554 5.7.1 <bad@sock.example>: Recipient address rejected: socketmap says no",
      "554 5.7.1 <bad@tcp.example>: Recipient address rejected: tcp says no",
      "554 5.7.1 <nobody@else.example>: Recipient address rejected: Access denied",
    ]);
    // The servers saw smtpd's lookups come through (from our proxymap: smtpd itself only talks to proxymap).
    expect(sockmap!.requests).toContain("acl bad@sock.example");
    expect(tcp!.requests.some((l) => l.startsWith("get bad@tcp.example"))).toBe(true);
  });

  test("the proxymap that answered is our executable", async () => {
    const pids = await ours!.waitServicePids("proxymap");
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(readlinkSync(`/proc/${pid}/exe`)).toBe(OUR_PROXYMAP);
    // smtpd logged no table trouble.
    expect(ours!.log()).not.toMatch(/smtpd\[\d+\]: (warning|error|fatal): .*(proxy|table|lookup)/);
  });

  // postmap runs asynchronously: the socketmap and tcp servers live in this process.
  const q = (inst: PostfixInstance, key: string, table: string) => inst.runAsync("postmap", ["-q", key, table]);

  test("postmap -q through proxy: every type answers as with the C proxymap", async () => {
    const tr = tableNames(ref!);
    const queries: [keyof typeof t, string][] = [
      ["cidr", "127.0.0.2"], ["cidr", "127.0.0.9"], ["cidr", "10.0.0.1"], ["cidr", "not-an-address"],
      ["pcre", "bob@pcre.example"], ["pcre", "x7@a"], ["pcre", "none"],
      ["regexp", "carol@regexp.example"], ["regexp", "none"],
      ["union", "u1@union.example"], ["union", "u2@union.example"], ["union", "none"],
      ["sockmap", "bad@sock.example"], ["sockmap", "nobody"],
      ["tcp", "bad@tcp.example"], ["tcp", "nobody"],
    ];
    const norm = (inst: PostfixInstance, s: string) => s.replaceAll(inst.base, "BASE");
    for (const [k, key] of queries) {
      const [o, c] = await Promise.all([q(ours!, key, `proxy:${t[k]}`), q(ref!, key, `proxy:${tr[k]}`)]);
      expect({ q: `${k} ${key}`, code: o.code, out: o.stdout, err: norm(ours!, o.stderr) }).toEqual({ q: `${k} ${key}`, code: c.code, out: c.stdout, err: norm(ref!, c.stderr) });
    }
    expect((await q(ours!, "bob@pcre.example", `proxy:${t.pcre}`)).stdout).toBe("REJECT pcre rejects bob\n");
    expect((await q(ours!, "bad@sock.example", `proxy:${t.sockmap}`)).stdout).toBe("REJECT socketmap says no\n");
  });

  test("postmap -q - (keys on stdin) through proxy:cidr, unionmap and socketmap", async () => {
    const tr = tableNames(ref!);
    const cases = [["cidr", "127.0.0.2\n127.0.0.1\n::1\nfoo\n"], ["union", "u1@union.example\nx\nu2@union.example\n"], ["sockmap", "a\nbad@sock.example\nb\n"]] as const;
    for (const [k, input] of cases) {
      const [o, c] = await Promise.all([ours!.runAsync("postmap", ["-q", "-", `proxy:${t[k]}`], input), ref!.runAsync("postmap", ["-q", "-", `proxy:${tr[k]}`], input)]);
      expect({ k, code: o.code, out: o.stdout }).toEqual({ k, code: c.code, out: c.stdout });
    }
    expect((await ours!.runAsync("postmap", ["-q", "-", `proxy:${t.cidr}`], "127.0.0.2\n127.0.0.1\n")).stdout).toBe("127.0.0.2\tREJECT blocked by cidr\n127.0.0.1\tDUNNO\n");
  });

  /**
   * Lookups in flight on several connections while the file changes; each
   * reply must be the old or the new answer (never an error), and the new
   * one after the change has been seen (ours probes a table's file at most
   * once a second).
   */
  async function changeWhileLooking(replace: (path: string, text: string) => void, newText: string) {
    const path = ours!.table("change.regexp");
    const clients = await Promise.all(Array.from({ length: 4 }, () => WireClient.connect(ours!.socket("proxymap"), { greeting: true, timeoutMs: 5000 })));
    const seen: string[][] = clients.map(() => []);
    const stopAt = Date.now() + 3500;
    const loops = clients.map(async (cl, i) => {
      while (Date.now() < stopAt) {
        await cl.send(encodeRequest("lookup", t.change, 524352, [["key", "probe"]]));
        const r = await cl.readReply(5000);
        const a = r.kind === "reply" ? attrsToObject(r.attrs) : {};
        seen[i].push(r.kind === "reply" ? `${a.status}:${a.value ?? ""}` : `(${r.kind})`);
        await Bun.sleep(1); // a steady stream, not a CPU hog on a shared CI machine
      }
    });
    await Bun.sleep(800);
    replace(path, newText);
    await Promise.all(loops);
    for (const cl of clients) cl.close();
    // One more lookup on a new connection, well after the change.
    const late = await WireClient.connect(ours!.socket("proxymap"), { greeting: true, timeoutMs: 5000 });
    const lr = await late.request([["request", "lookup"], ["table", t.change], ["flags", "524352"], ["key", "probe"]]);
    late.close();
    return { seen, late: lr.kind === "reply" ? attrsToObject(lr.attrs) : {} };
  }

  test("a regexp file replaced (rename) during lookups: every reply is the old or the new answer", async () => {
    // Make sure the old text is the loaded one (and its probe time is old).
    writeFileSync(ours!.table("change.regexp"), FILES["change.regexp"]);
    await Bun.sleep(1200);
    const r = await changeWhileLooking((p, text) => {
      writeFileSync(p + ".tmp", text, { mode: 0o644 });
      renameSync(p + ".tmp", p);
    }, "/^probe$/\tnew answer\n");
    const all = r.seen.flat();
    const counts = new Map<string, number>();
    for (const x of all) counts.set(x, (counts.get(x) ?? 0) + 1);
    console.log(`rename during lookups: ${all.length} replies: ${[...counts].map(([k, v]) => `${v}x ${k}`).join(", ")}`);
    expect(all.filter((x) => x !== "0:old answer" && x !== "0:new answer")).toEqual([]);
    // Each connection's replies switch once, from old to new.
    for (const s of r.seen) expect(s.join("\n")).toMatch(/^(0:old answer\n)*(0:new answer)(\n0:new answer)*$|^(0:old answer)(\n0:old answer)*$/);
    expect(counts.get("0:new answer") ?? 0).toBeGreaterThan(0);
    expect(r.late).toEqual({ status: "0", value: "new answer" });
    await ours!.waitForLog(/table regexp:\S*change\.regexp\S* has changed -- reopening/, 3000);
  });

  test("a regexp file rewritten in place during lookups: never an error, the new answer at the end", async () => {
    await Bun.sleep(1100);
    const r = await changeWhileLooking((p, text) => writeFileSync(p, text), "/^probe$/\tthird answer\n");
    const all = r.seen.flat();
    const counts = new Map<string, number>();
    for (const x of all) counts.set(x, (counts.get(x) ?? 0) + 1);
    console.log(`in-place rewrite during lookups: ${all.length} replies: ${[...counts].map(([k, v]) => `${v}x ${k}`).join(", ")}`);
    expect(all.filter((x) => !/^(0:(new|third) answer|1:)$/.test(x))).toEqual([]);
    expect(r.late).toEqual({ status: "0", value: "third answer" });
  });
});
