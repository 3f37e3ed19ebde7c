/**
 * memcache-corpus.ts - the seeded corpus of the memcache differential test
 * (memcache.test.ts): the tables, what memcached and the backups hold at
 * the start, and a list of steps played in order against one instance
 * running the C proxymap and one running ours.
 *
 * A step is a request on the proxymap or proxywrite service (well-formed
 * lookups, updates, deletes, walks and malformed requests, as raw bytes
 * built here), or something done to memcached from outside: another
 * client's set or delete (a value over data_size_limit among them), the
 * server stopped, the server started again (empty).
 *
 * Tables (files in the shared directory DIR):
 *   main  memcached over TCP, lmdb backup, ttl 600, flags 5, data_size_limit 4096
 *   nob   memcached over TCP, no backup, ttl 300
 *   fmt   memcached over a UNIX socket, key_format %d/%u, domain list, lmdb backup
 *   down  nothing listens (127.0.0.1:1), lmdb backup
 *   death lmdb backup, first opened WITHOUT a DUP flag: the reference dies
 *         updating an existing backup key (played apart, at the end)
 * The write service opens main, fmt, down and nob first with DUP_REPLACE,
 * so their backups replace; keys include empty, white space, control and
 * 8-bit bytes, invalid UTF-8 and keys over memcached's 250 bytes; values
 * include one over data_size_limit. Values never start with a memcached
 * command word (the reference sends a long key's value as a command).
 *
 * Pure: no I/O.
 */
import { Pick, rng } from "./corpus";
import { encodeAttrs, type Attr } from "../helpers/wire";

export type Service = "proxymap" | "proxywrite";

export type Step =
  | { readonly kind: "request"; readonly service: Service; readonly bytes: Buffer; readonly label: string }
  /** Another memcached client (over TCP) sets or deletes an item. */
  | { readonly kind: "mc-set"; readonly key: string; readonly value: string; readonly label: string }
  | { readonly kind: "mc-delete"; readonly key: string; readonly label: string }
  | { readonly kind: "mc-stop"; readonly label: string }
  | { readonly kind: "mc-start"; readonly label: string };

export interface McTables {
  dir: string;
  main: string;
  nob: string;
  fmt: string;
  down: string;
  death: string;
  /** Not approved anywhere. */
  unapproved: string;
  /** Backup tables ("lmdb:PATH") whose files the test compares. */
  backups: string[];
}

const UTF8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
export const LONG_KEY = "L".repeat(260);

export function mcTables(dir: string): McTables {
  return {
    dir,
    main: `memcache:${dir}/main.cf`,
    nob: `memcache:${dir}/nob.cf`,
    fmt: `memcache:${dir}/fmt.cf`,
    down: `memcache:${dir}/down.cf`,
    death: `memcache:${dir}/death.cf`,
    unapproved: `memcache:${dir}/other.cf`,
    backups: [`lmdb:${dir}/backup`, `lmdb:${dir}/fmt-backup`, `lmdb:${dir}/down-backup`, `lmdb:${dir}/death-backup`],
  };
}

/** Configuration files and backup sources ("key value" lines, made into lmdb by the test). */
export function mcFiles(t: McTables, tcpServer: string, unixServer: string): { configs: Record<string, string>; backups: Record<string, string> } {
  return {
    configs: {
      "main.cf": `memcache = ${tcpServer}\nbackup = lmdb:${t.dir}/backup\nttl = 600\nflags = 5\ndata_size_limit = 4096\n`,
      "nob.cf": `memcache = ${tcpServer}\nttl = 300\n`,
      "fmt.cf": `memcache = ${unixServer}\nkey_format = %d/%u\ndomain = example.com, example.org\nbackup = proxy:lmdb:${t.dir}/fmt-backup\n`,
      "down.cf": `memcache = inet:127.0.0.1:1\nbackup = lmdb:${t.dir}/down-backup\n`,
      "death.cf": `memcache = ${tcpServer}\nbackup = lmdb:${t.dir}/death-backup\n`,
      "other.cf": `memcache = ${tcpServer}\n`,
    },
    backups: {
      backup: ["b1\tbackup one", "b2\tbackup two", "b3\tbackup three", "both\tboth from backup", "B4\tupper in backup", `${UTF8("gr\u00fc\u00df")}\tutf8 key`, "\xe9t\xe9\tlatin1 key"].join("\n") + "\n",
      "fmt-backup": ["user@example.com\tuser from backup", "admin@example.org\tadmin from backup", "x@other.net\tnever asked"].join("\n") + "\n",
      "down-backup": ["d1\tdown one", "d2\tdown two"].join("\n") + "\n",
      "death-backup": "victim\told value\n",
    },
  };
}

/** What memcached holds at the start: [server, key, value]. */
export const MC_PRELOAD: ReadonlyArray<readonly ["tcp" | "unix", string, string]> = [
  ["tcp", "m1", "memcache one"],
  ["tcp", "m2", "memcache two"],
  ["tcp", "M3", "upper in memcache"],
  ["tcp", "both", "both from memcache"],
  ["unix", "example.com/cached", "cached in unix memcache"],
];

/** Proxymap's flag bits the corpus uses. */
const F = { DUP_WARN: 1, LOCK: 64, DUP_REPLACE: 128, DEBUG: 512, FOLD_FIX: 16384, UTF8_REQUEST: 524288 } as const;
const POSTMAP_Q = F.UTF8_REQUEST | F.LOCK | F.DUP_WARN;

function req(service: Service, attrs: Attr[], label: string): Step {
  return { kind: "request", service, bytes: encodeAttrs(attrs), label };
}

function lookup(service: Service, table: string, flags: number, key: string): Step {
  return req(service, [["request", "lookup"], ["table", table], ["flags", String(flags)], ["key", key]], `lookup ${table.slice(table.lastIndexOf("/") + 1)} ${JSON.stringify(key.slice(0, 40))}`);
}

function update(table: string, flags: number, key: string, value: string): Step {
  return req("proxywrite", [["request", "update"], ["table", table], ["flags", String(flags)], ["key", key], ["value", value]], `update ${table.slice(table.lastIndexOf("/") + 1)} ${JSON.stringify(key.slice(0, 40))}`);
}

function del(table: string, flags: number, key: string): Step {
  return req("proxywrite", [["request", "delete"], ["table", table], ["flags", String(flags)], ["key", key]], `delete ${table.slice(table.lastIndexOf("/") + 1)} ${JSON.stringify(key.slice(0, 40))}`);
}

function open(service: Service, table: string, flags: number): Step {
  return req(service, [["request", "open"], ["table", table], ["flags", String(flags)]], `open ${table.slice(table.lastIndexOf("/") + 1)} ${flags}`);
}

function sequence(service: Service, table: string, fn: number): Step {
  return req(service, [["request", "sequence"], ["table", table], ["flags", "0"], ["function", String(fn)]], `sequence ${table.slice(table.lastIndexOf("/") + 1)} ${fn}`);
}

export interface McCorpus {
  /** Played on both sides and compared step by step. */
  steps: Step[];
  /** Played last: the reference dies on the last one; ours must answer. */
  death: Step[];
  /** Every key memcached may come to hold, per server (the state compared after each step). */
  keys: { tcp: string[]; unix: string[] };
}

/** A key as is and folded, and for user@domain keys the "%d/%u" expansions of both. */
function memcacheKeys(keys: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    for (const v of [k, k.toLowerCase()]) {
      out.push(v);
      const at = v.lastIndexOf("@");
      if (at > 0) out.push(`${v.slice(at + 1)}/${v.slice(0, at)}`);
    }
  }
  return out;
}

export function generateMcCorpus(t: McTables, opts: { seed: number; count: number }): McCorpus {
  const p = new Pick(rng(opts.seed));
  const steps: Step[] = [
    open("proxywrite", t.main, F.DUP_REPLACE | F.UTF8_REQUEST),
    open("proxywrite", t.fmt, F.DUP_REPLACE),
    open("proxywrite", t.down, F.DUP_REPLACE),
    open("proxywrite", t.nob, F.DUP_REPLACE | F.UTF8_REQUEST),
    open("proxymap", t.main, POSTMAP_Q),
  ];
  // Every kind of step once, whatever the seed; the random ones follow.
  const malformed: Step[] = [
    req("proxymap", [["request", "lookup"], ["table", t.main], ["flags", "0"]], "lookup without key"),
    req("proxymap", [["request", "lookup"], ["table", t.main], ["flags", "0"], ["key", "m1"], ["extra", "x"]], "lookup with an extra attribute"),
    req("proxywrite", [["request", "update"], ["table", t.main], ["flags", "zero"], ["key", "m1"], ["value", "v"]], "update with bad flags"),
    req("proxymap", [["request", "update"], ["table", t.main], ["flags", "0"], ["key", "m1"], ["value", "v"]], "update on the read service"),
    req("proxymap", [["request", "delete"], ["table", t.main], ["flags", "0"], ["key", "m1"]], "delete on the read service"),
    req("proxywrite", [["request", "sequence"], ["table", t.main], ["flags", "0"], ["function", "7"]], "sequence with a bad function"),
    req("proxywrite", [["request", "lookup"], ["table", t.unapproved], ["flags", "0"], ["key", "m1"]], "unapproved memcache table"),
    req("proxywrite", [["request", "frob"], ["table", t.main], ["flags", "0"]], "unknown request"),
    req("proxywrite", [["request", "update"], ["table", t.main], ["flags", "0"], ["value", "v"], ["key", "m1"]], "update with attributes out of order"),
  ];
  steps.push(
    lookup("proxymap", t.main, POSTMAP_Q, "m1"),
    lookup("proxymap", t.main, POSTMAP_Q, "b1"),
    lookup("proxymap", t.main, POSTMAP_Q, "b1"),
    lookup("proxymap", t.main, POSTMAP_Q, "none"),
    lookup("proxywrite", t.nob, 0, "b1"),
    update(t.main, 0, "sp ace", "skipped"),
    update(t.main, 0, "b2", `${"x".repeat(5000)}`),
    update(t.nob, 0, "n1", `${"x".repeat(5000)}`),
    del(t.main, 0, "m2"),
    del(t.main, 0, "b3"),
    sequence("proxywrite", t.nob, 0),
    sequence("proxymap", t.main, 0),
    sequence("proxymap", t.main, 1),
    lookup("proxywrite", t.down, 0, "d1"),
    lookup("proxywrite", t.fmt, F.FOLD_FIX, "USER@Example.COM"),
    ...malformed,
  );
  const created: string[] = [];
  const mainKeys = () => ["m1", "m2", "M3", "m3", "both", "b1", "b2", "b3", "B4", "b4", "none", "", "sp ace", "tab\tkey", "ctl\x01key", "\xe9t\xe9", UTF8("gr\u00fc\u00df"), ...created];
  const fmtKeys = ["user@example.com", "USER@Example.COM", "admin@example.org", "cached@example.com", "x@other.net", "nodomain", "@example.com", "new@example.com", "a b@example.com"];
  const downKeys = ["d1", "d2", "d3", "new"];
  const readFlags = [0, POSTMAP_Q, F.FOLD_FIX, F.FOLD_FIX | F.UTF8_REQUEST, F.DEBUG];
  const writeFlags = [0, POSTMAP_Q, F.FOLD_FIX];
  const value = (i: number) => p.weighted<string>([
    [6, `v${i}`],
    [2, `value with spaces ${i}`],
    [1, `${"x".repeat(5000)}-${i}`],
    [1, `8bit \xe9 ${i}`],
  ]);
  const stopAt = Math.floor(opts.count * 0.45);
  const startAt = Math.floor(opts.count * 0.6);
  let longOps = 0;

  const systematic = steps.length;
  for (let i = 0; steps.length < opts.count + systematic; i++) {
    if (i === stopAt) steps.push({ kind: "mc-stop", label: "memcached stopped" });
    if (i === startAt) steps.push({ kind: "mc-start", label: "memcached started again (empty)" });
    const what = p.weighted<string>([
      [30, "lookup-main"],
      [8, "lookup-nob"],
      [8, "lookup-fmt"],
      [4, "lookup-down"],
      [12, "update"],
      [7, "delete"],
      [3, "walk"],
      [3, "outside"],
      [6, "malformed"],
      [1, "long"],
    ]);
    switch (what) {
      case "lookup-main": {
        const service: Service = p.chance(0.7) ? "proxymap" : "proxywrite";
        steps.push(lookup(service, t.main, p.one(service === "proxymap" ? readFlags : writeFlags), p.one(mainKeys())));
        break;
      }
      case "lookup-nob":
        steps.push(lookup(p.chance(0.5) ? "proxymap" : "proxywrite", t.nob, p.one(writeFlags), p.one(mainKeys())));
        break;
      case "lookup-fmt":
        steps.push(lookup(p.chance(0.5) ? "proxymap" : "proxywrite", t.fmt, p.one(writeFlags), p.one(fmtKeys)));
        break;
      case "lookup-down":
        steps.push(lookup("proxywrite", t.down, 0, p.one(downKeys)));
        break;
      case "update": {
        const table = p.weighted([[6, t.main], [2, t.nob], [2, t.fmt], [1, t.down]] as const);
        const key = table === t.fmt ? p.one(fmtKeys) : table === t.down ? p.one(downKeys) : p.chance(0.4) ? `new-${i}` : p.one(mainKeys());
        if (key.startsWith("new-")) created.push(key);
        steps.push(update(table, p.one(writeFlags), key, value(i)));
        break;
      }
      case "delete": {
        const table = p.weighted([[5, t.main], [2, t.nob], [1, t.fmt], [1, t.down]] as const);
        const key = table === t.fmt ? p.one(fmtKeys) : table === t.down ? p.one(downKeys) : p.one(mainKeys());
        steps.push(del(table, p.one(writeFlags), key));
        break;
      }
      case "walk": {
        const service: Service = p.chance(0.5) ? "proxymap" : "proxywrite";
        const table = p.chance(0.8) ? t.main : t.nob;
        steps.push(sequence(service, table, 0));
        for (let n = p.range(1, 4); n > 0; n--) steps.push(sequence(service, table, 1));
        break;
      }
      case "outside":
        steps.push(
          p.weighted<Step>([
            [3, { kind: "mc-set", key: p.one(["m1", "b1", "both", "fresh"]), value: `set by another client ${i}`, label: "another client sets" }],
            [2, { kind: "mc-delete", key: p.one(["m1", "m2", "both", "b1"]), label: "another client deletes" }],
            [1, { kind: "mc-set", key: "b2", value: "o".repeat(5000), label: "another client sets a value over data_size_limit" }],
          ]),
        );
        break;
      case "malformed":
        steps.push(p.one(malformed));
        break;
      case "long":
        // A key memcached refuses: each get or set costs the reference a retry_pause; a few suffice.
        if (longOps++ < 2) {
          steps.push(update(t.main, 0, LONG_KEY, `long key value ${i}`));
          steps.push(lookup("proxymap", t.main, 0, LONG_KEY));
        }
        break;
    }
  }
  const death: Step[] = [open("proxywrite", t.death, F.UTF8_REQUEST), update(t.death, 0, "fresh", "new value"), update(t.death, 0, "victim", "new value")];
  const keys = {
    tcp: memcacheKeys([...mainKeys(), "fresh", "victim", ...MC_PRELOAD.filter(([w]) => w === "tcp").map(([, k]) => k)]),
    unix: memcacheKeys([...fmtKeys, ...MC_PRELOAD.filter(([w]) => w === "unix").map(([, k]) => k)]),
  };
  return { steps, death, keys };
}

/**
 * The 3.12 steps: requests in the 3.11 shape (instance_flags before flags),
 * each kind once, for a 3.12 instance on each side. From 3.11 the
 * proxymap opens a table with the request's instance flags alone, so a
 * backup never has a DUP flag: updating an existing backup key kills the
 * 3.12 C proxywrite as it kills 3.7's (mc312Death, played last), and these
 * steps update only new backup keys. What 3.12 changed in memcache: keys
 * with control characters are skipped ("name contains space or controls").
 */
export function generateMc312Steps(t: McTables): Step[] {
  const steps: Step[] = [];
  const shaped = (service: Service, request: string, table: string, inst: number, flags: number | undefined, rest: Attr[], label: string) =>
    steps.push(
      req(service, [["request", request], ["table", table], ["instance_flags", String(inst)], ...(flags === undefined ? [] : ([["flags", String(flags)]] as Attr[])), ...rest], `${request} ${table.slice(table.lastIndexOf("/") + 1)} ${label}`),
    );
  const lookup311 = (service: Service, table: string, key: string, flags = POSTMAP_Q) => shaped(service, "lookup", table, 0, flags, [["key", key]], JSON.stringify(key));
  const update311 = (table: string, key: string, value: string) => shaped("proxywrite", "update", table, 0, 0, [["key", key], ["value", value]], JSON.stringify(key));
  const delete311 = (table: string, key: string) => shaped("proxywrite", "delete", table, 0, 0, [["key", key]], JSON.stringify(key));
  shaped("proxywrite", "open", t.main, 0, undefined, [], "");
  shaped("proxymap", "open", t.main, 0, undefined, [], "");
  for (const key of ["m1", "b1", "b1", "none", "", "sp ace", "ctl\x01key", "del\x7fkey", "\xe9t\xe9", "M3"]) lookup311("proxymap", t.main, key);
  lookup311("proxymap", t.main, "M3", F.FOLD_FIX);
  lookup311("proxywrite", t.nob, "b1", 0);
  lookup311("proxymap", t.fmt, "USER@Example.COM", F.FOLD_FIX);
  lookup311("proxymap", t.fmt, "ctl\x01@example.com", 0);
  lookup311("proxywrite", t.down, "d1", 0);
  update311(t.main, "new-312", "v312");
  update311(t.main, "ctl\x01key", "never stored");
  update311(t.main, "sp ace", "never stored");
  update311(t.nob, "m1", "replaced in memcached");
  update311(t.nob, "n1", "x".repeat(20000));
  update311(t.down, "d9", "down value");
  lookup311("proxymap", t.main, "new-312");
  delete311(t.main, "m2");
  delete311(t.main, "b3");
  delete311(t.nob, "ctl\x01key");
  shaped("proxywrite", "sequence", t.main, 0, 0, [["function", "0"]], "first");
  shaped("proxywrite", "sequence", t.main, 0, 0, [["function", "1"]], "next");
  shaped("proxywrite", "sequence", t.nob, 0, 0, [["function", "0"]], "first");
  // Malformed in the 3.11 shape: a 3.7-shaped request, instance_flags missing its value's digits, an unknown request.
  steps.push(req("proxymap", [["request", "lookup"], ["table", t.main], ["flags", "0"], ["key", "m1"]], "a 3.7-shaped lookup"));
  steps.push(req("proxymap", [["request", "lookup"], ["table", t.main], ["instance_flags", "x"], ["flags", "0"], ["key", "m1"]], "bad instance_flags"));
  steps.push(req("proxymap", [["request", "update"], ["table", t.main], ["instance_flags", "0"], ["flags", "0"], ["key", "m1"], ["value", "v"]], "update on the read service"));
  return steps;
}

/** Played last under 3.12: an update of a key the backup has (the 3.12 C proxywrite dies on it). */
export function mc312Death(t: McTables): Step[] {
  return [req("proxywrite", [["request", "update"], ["table", t.main], ["instance_flags", "0"], ["flags", "0"], ["key", "b1"], ["value", "new value"]], 'update main.cf "b1" (exists in the backup)')];
}
