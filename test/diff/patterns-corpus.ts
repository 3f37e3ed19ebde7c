/**
 * patterns-corpus.ts - the seeded corpus of the pattern/composite/network
 * differential test (issue 6): cidr, regexp, pcre, unionmap, pipemap,
 * environ, randmap, internal, socketmap and tcp tables, and the servers
 * the socketmap and tcp tables talk to.
 *
 * Builds (1) the table files, the proxy_read_maps / proxy_write_maps
 * settings both instances share, and (2) a list of cases in the shape of
 * corpus.ts (one client connection each, rounds of raw request bytes), so
 * runner.ts plays them unchanged. The files cover every rule the issue
 * names: cidr prefixes, bare addresses, `!`, if/endif, comments,
 * continuation lines, bad lines; regexp and pcre flags, negation, if/endif,
 * $1..$9, ${n}, $$, NO_REGSUB, bad lines; nested and approved-inside
 * composite tables; deterministic random picks (one choice, or several
 * equal ones). Keys: matching and not, addresses and not, 8-bit, empty,
 * long. Requests: every type, the request flags, 3.7-shape mutations.
 *
 * Cases on which the C 3.7.11 reference dies carry `kill`, as in
 * corpus.ts: sequence on every type here but internal, "next" on an empty
 * internal table, delete on environ, an environ update with an empty name
 * or one with "=", a socketmap endpoint on udp: or without a port, and
 * OPEN_LOCK with LOCK.
 *
 * History: a pattern table's NO_REGSUB is read when its instance is opened
 * (rules with $n are dropped then), and table instances are shared per
 * name and instance flags, so the first open wins. The systematic cases
 * come first and open each table in a known way; both sides get the same
 * order.
 *
 * The socketmap and tcp servers are test/helpers/socketmap-server.ts and
 * tcp-server.ts; they answer by key, deterministically, and the corpus never
 * sends a key that makes them stall or a tcp server close (the reference
 * waits 100 s on a silent socketmap and retries a tcp server ten times, a
 * second apart): it compares replies, not time-outs. Pure except
 * writePatternFiles() and startPatternServers(); logs nothing.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SocketmapServer } from "../helpers/socketmap-server";
import { TcpTableServer } from "../helpers/tcp-server";
import { bytes, encodeAttrs } from "../helpers/wire";
import {
  F, INST_MASK, Pick as Picker, applyMutation, cFlagsValue, pickFlags, reqAttrs, rng, typeOf,
  type Case, type Req, type ReqType, type Round, type Service,
} from "./corpus";

const UTF8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

// ---- servers -----------------------------------------------------------------

/**
 * Values the servers know, per key (test/helpers/socketmap-server.ts and
 * tcp-server.ts answer other outcomes by key: "reply=TEXT", "raw=BYTES",
 * "garbage", "close"; an unknown key is NOTFOUND / 500). Keys that make
 * them stall, or make a tcp server close, are never in the corpus: the
 * reference waits 100 s on a silent socketmap and retries a tcp server ten
 * times, a second apart.
 */
const SERVER_DATA: Record<string, string> = {
  key: "value of key",
  KEY: "value of KEY",
  "sp ace": "value with  spaces ",
  "8bit-\xe9": "8-bit \xe9t\xe9",
  "": "the empty key",
  ["l" + "o".repeat(3000)]: "v".repeat(2000),
  "nl\nx": "new\nline",
  "pct%20": "100%",
};

export interface PatternServers {
  /** Table names: socketmap on loopback, on a UNIX socket, one that answers garbage; tcp. */
  sockmapInet: string;
  sockmapUnix: string;
  sockmapGarbage: string;
  /** "socketmap:inet:127.0.0.1:PORT" (no map name: the port is read as the name). */
  sockmapNoName: string;
  tcp: string;
  close(): Promise<void>;
}

/** Start the socketmap (inet, unix, garbage) and tcp servers; the unix sockets go in dir. */
export async function startPatternServers(dir: string): Promise<PatternServers> {
  const data = { inetmap: SERVER_DATA, unixmap: SERVER_DATA };
  const [inet, unix, garbage, tcp] = await Promise.all([
    SocketmapServer.start({ data }),
    SocketmapServer.start({ data, path: join(dir, "sockmap.sock") }),
    SocketmapServer.start({ mode: "garbage", path: join(dir, "garbage.sock") }),
    TcpTableServer.start({ data: SERVER_DATA }),
  ]);
  // proxymap runs as mail_owner: it needs write permission on the sockets.
  for (const f of ["sockmap.sock", "garbage.sock"]) chmodSync(join(dir, f), 0o666);
  return {
    sockmapInet: inet.table("inetmap"),
    sockmapUnix: unix.table("unixmap"),
    sockmapGarbage: garbage.table("garbage"),
    sockmapNoName: `socketmap:${inet.address}`,
    tcp: tcp.table,
    close: async () => {
      await Promise.all([inet.close(), unix.close(), garbage.close(), tcp.close()]);
    },
  };
}

// ---- tables ------------------------------------------------------------------

/** File contents by name (written into the tables directory). */
export function patternFiles(dir: string): Record<string, string> {
  const f: Record<string, string> = {};
  f["main.cidr"] = [
    "# cidr table: prefixes, bare addresses, negation, if/endif, continuation, bad lines",
    "192.168.1.0/24\tnet 192.168.1/24",
    "192.168.1.5\tshadowed by the /24 above",
    "10.0.0.1        bare ten-one",
    "   # an indented comment",
    "10.0.0.0/8      ten",
    "  continued value line",
    "!11.0.0.0/8     not eleven",
    "2001:db8::/32   v6 doc net",
    "2001:db8::1     shadowed v6 host",
    "::1             v6 loopback",
    "[::2]           bracketed v6",
    "[172.30.0.1]/32 bracketed v4",
    "if 172.16.0.0/12",
    "172.16.5.0/24   inside if",
    "if !172.16.5.0/24",
    "172.16.0.0/16   nested not-5",
    "endif",
    "endif",
    "IF !172.16.0.0/12",
    "172.17.0.0/16   never: outside the if",
    "ENDIF",
    "8.8.8.0/24      google 8.8.8/24",
    "::ffff:9.9.9.9  mapped v4",
    "0.0.0.0/0       default v4 ($1 literal, ${x})",
    "::/0            default v6",
  ].join("\n") + "\n";
  f["bad1.cidr"] = ["1.2.3.4/24      host bits set", "1.2.3.0/33      prefix too long", "1.2.3.0/-1      negative prefix", "300.1.1.1       bad octet", "1.2.3.0/24 good"].join("\n") + "\n";
  f["bad2.cidr"] = ["fe80::/10", "garbage-line    value", "5.6.7.8", "2001:db8:0:0:0:0:0:1/129  bad v6 prefix", "5.6.7.9 good"].join("\n") + "\n";
  f["bad3.cidr"] = ["if 5.6.7.0/24 extra", "endif trailing", "endif", "if", "5.6.7.8 inside?", "if 1.1.1.1/32", "1.1.1.1         unclosed if"].join("\n") + "\n";
  f["small.cidr"] = "127.0.0.1 localhost\n192.0.2.0/24\tTEST-NET-1 \xe9t\xe9\n";
  f["empty.cidr"] = "";
  f["bad.cidr"] = "nonsense\n1.2.3.4/99 x\nendif\n";
  // SRC_RHS_IS_FILE: values are file names, answered base64-encoded.
  f["rhs.cidr"] = `127.0.0.1 ${join(dir, "rhs-content")}\n10.0.0.0/8 ${join(dir, "no-such-rhs")}\n`;
  f["rhs-content"] = "file content\nline 2\n";

  const common = (kind: "regexp" | "pcre") => [
    `# ${kind} table`,
    "/^user(.*)@example\\.com$/\tOK user $1",
    "/^(a)(b)(c)(d)(e)(f)(g)(h)(i)$/\t$9$8$7$6$5$4$3$2$1 ${1}x $$ ${9}",
    "/^CASE$/\tdefault flags",
    "/^strict$/i\ti toggled",
    "/^multi$/m\tm toggled",
    "/^a b$/x\tx toggled",
    "/^a+b+$/\tplain",
    "/^(neg)$/!/^negx/\told two-pattern form",
    "if /^n/",
    "!/^neg/\tn but not neg: $$",
    "endif",
    "#^hash# comment line, not a rule",
    "if /^h/",
    "!#^hashdelim#\th but not hashdelim (hash delimiter)",
    "#^hashdelim#\tsame, as a comment",
    "!!#^hashdelim#\thashdelim (negated twice)",
    "endif",
    "|^(bar)$|\tbar delimiter $1",
    "if /^if-/",
    "/^if-(yes)$/\tinside if $1",
    "if !/^if-yes-/",
    "/^if-(.*)$/\tnested $1",
    "endif",
    "endif",
    "IF /^if-never/",
    "/^if-n.*$/\tnever",
    "ENDIF",
    "/^(dollar)$/\tcost $$5 for ${1}",
    "/^8bit-(.)$/\teight $1",
    `/^${UTF8("ü")}(.*)$/\tutf8 $1`,
    "/^(long)(.*)$/\t$1 of length",
    "/^cont$/\tcontinued",
    "  on a second line",
    ...(kind === "pcre"
      ? [
          "/^pcre-(\\d+)$/\tdigits $1",
          "/^(?=look)(\\w+)$/\tlookahead $1",
          "/^ungreedy-(a+)(a*)$/U\tU: [$1][$2]",
          "/^greedy-(a+)(a*)$/\tgreedy: [$1][$2]",
          "/anchored/A\tA: anchored",
          "/dollar-end$/E\tE: dollar end only",
          "/^dot.all$/s\ts: dotall",
          "/^multi-pcre$/m\tm: multiline",
          "/^x - flag $/x\tx: extended",
          "/^strict-pcre$/i\ti toggled",
          "/^(a)|(b)$/\talt [$1][$2]",
          "/^\\x{e9}$/\tu-escape",
        ]
      : [
          "/^posix-[[:digit:]]+$/\tposix class",
          "/^(ab|abcd)(.*)$/\tleftmost-longest [$1][$2]",
          "/^back(x)\\1$/\tbackref",
          "/^[[:alpha:]]+\\.([[:upper:]]+)$/\tclass $1",
          "/^a{2,3}$/\tinterval",
          "/^dot.all$/\tdot",
          "/^(a)|(b)$/\talt [$1][$2]",
        ]),
    "/^(.)(.)?$/\tshort [$1][$2]",
  ].join("\n") + "\n";
  f["main.regexp"] = common("regexp");
  f["main.pcre"] = common("pcre");
  // Bad lines, a few per file: one open of a file logs its warnings in one burst.
  const badRules = [
    ["/^(unbal$/\tunbalanced paren", "/^norepl$/", "/^outofrange(x)$/\t$2", "/^ok1$/\tgood after bad"],
    ["/^badsub(x)$/\t${1", "/^nonnum(x)$/\t$x${}", "/^opts$/q\tunknown option"],
    ["/^unclosed\tno closing delimiter", "/^(trail)$/\tends with $", "/^(neg2)$/!/^x/\t$1 in negative", "/^ok3$/\tgood"],
    ["endif", "if /^x/ extra", "   /^indented$/\tindented rule", "endif extra", "/^ok4$/\tgood", "if /^unclosed-if/", "/^unclosed-if$/\tunclosed if"],
  ];
  badRules.forEach((rules, i) => {
    f[`bad${i + 1}.regexp`] = rules.join("\n") + "\n";
    f[`bad${i + 1}.pcre`] = rules.join("\n") + "\n";
  });
  // 30 warnings from one open: more lines at once than the kernel's datagram queue to postlogd holds (10).
  f["burst.regexp"] = Array.from({ length: 30 }, (_, i) => `/^b${i}$/q\tbad option`).join("\n") + "\n/^b$/\tthe only good rule\n";
  f["bad5.pcre"] = ["/^obs$/X\tobsolete X", "/^bad(?<name>x)$/\t$1 named", "/^(?P<n>y)$/\tnamed ${n}", "/[/\tunclosed class", "/^ok5$/\tgood"].join("\n") + "\n";
  // Opened first with NO_REGSUB: rules with $n are dropped (with a warning) in that instance.
  const sub = "/^(sub)-(.*)$/\t$2-$1\n/^plain$/\tno substitution\n/^(x)$/\t$$ only\n";
  f["nosub.regexp"] = sub;
  f["nosub.pcre"] = sub;
  f["bad.regexp"] = "/(/\tx\n/a/zz\tbad flag\n\nendif\n/ok/\tonly good rule\n";
  f["bad.pcre"] = "/(?<!a+)b/\tx\n/a/zz\tbad flag\n\nendif\n/ok/\tonly good rule\n";
  f["empty.regexp"] = "";
  return f;
}

export interface PatternTables {
  dir: string;
  readMaps: string;
  writeMaps: string;
  approvedRead: string[];
  approvedWrite: string[];
  unapproved: string[];
  /** Keys worth looking up, per table. */
  keys: Map<string, string[]>;
  /** Tables whose open logs one error-level line (a failed open of it or of a member), per service. */
  erroring: Record<Service, Set<string>>;
  /** Tables that open as a surrogate (the open failed): every operation answers, none is fatal. */
  surrogate: Record<Service, Set<string>>;
  /** Tables whose open kills the reference, with the reason. */
  deadlyOpen: Map<string, string>;
  /** Types that refuse sequence (the reference dies), unless the open failed. */
  noSequence: Set<string>;
  files: Record<string, string>;
  /** Named tables for the systematic cases. */
  named: Record<string, string>;
}

export const PATTERN_PROBE = "static:__probe_reply__";

const CIDR_KEYS = [
  "192.168.1.5", "192.168.1.77", "192.168.2.1", "10.0.0.1", "10.1.2.3", "11.0.0.1", "12.0.0.1", "172.16.5.9",
  "172.16.6.1", "172.17.0.1", "172.31.0.1", "172.30.0.1", "2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1",
  "2001:db9::1", "::1", "::2", "::ffff:10.0.0.1", "::ffff:9.9.9.9", "9.9.9.9", "1.2.3.4", "1.2.3.99", "8.8.8.8",
  "0.0.0.0", "255.255.255.255", "fe80::1", "fe80::1%eth0", "5.6.7.8", "1.1.1.1", "127.0.0.1", "192.0.2.7",
  "[192.168.1.5]", "192.168.1.5 ", " 192.168.1.5", "192.168.001.005", "1.2.3", "1.2.3.4.5", "256.1.1.1", "foo",
  "", "192.168.1.5/32", "::", "2001:db8::/32", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "01.2.3.4", "1.2.3.4\xe9",
  "::ffff:192.168.1.5", "0x7f.0.0.1", "2130706433",
];
const RE_KEYS = [
  "user1@example.com", "USER1@EXAMPLE.COM", "user@example.com", "abcdefghi", "ABCDEFGHI", "CASE", "case", "strict",
  "STRICT", "multi", "a b", "ab", "aaabbb", "nkeep", "neg", "negative", "negx", "hashdelim", "hash", "bar", "BAR",
  "if-yes", "if-yes-no", "if-no", "if-never", "if-", "dollar", "unbal", "norepl", "outofrangex", "badsubx", "nonnumx",
  "opts", "unclosed", "trail", "neg2", "x", "y", "indented", "8bit-\xe9", "8bit-e", UTF8("ü-mlaut"), UTF8("Ü-MLAUT"),
  "\xfc-latin1", "long" + "z".repeat(3000), "cont", "", "a", "ab", "unclosed-if", "pcre-123", "pcre-x", "lookahead",
  "ungreedy-aaa", "greedy-aaa", "anchored", "xanchored", "dollar-end", "dollar-end\n", "dot\nall", "dotxall",
  "multi-pcre", "x-flag", "strict-pcre", "STRICT-PCRE", "obs", "badx", "y", "a", "b", "\xe9", "posix-42", "abcdxyz",
  "backxx", "backxy", "abc.DEF", "aa", "aaaa", "sub-one", "plain", "ok", "line1\nmulti", "multi\nline2", "ok1", "ok3", "ok4", "ok5", "indented",
];

/**
 * The tables of the corpus. `servers` gives the socketmap/tcp endpoints
 * (the ports are only known once they listen).
 */
export function makePatternTables(dir: string, servers: Omit<PatternServers, "close">): PatternTables {
  const p = (x: string) => join(dir, x);
  const files = patternFiles(dir);
  const named: Record<string, string> = {
    cidr: `cidr:${p("main.cidr")}`,
    cidrSmall: `cidr:${p("small.cidr")}`,
    cidrEmpty: `cidr:${p("empty.cidr")}`,
    cidrBad: `cidr:${p("bad.cidr")}`,
    cidrRhs: `cidr:${p("rhs.cidr")}`,
    regexpBurst: `regexp:${p("burst.regexp")}`,
    cidrBad1: `cidr:${p("bad1.cidr")}`,
    cidrBad2: `cidr:${p("bad2.cidr")}`,
    cidrBad3: `cidr:${p("bad3.cidr")}`,
    ...Object.fromEntries([1, 2, 3, 4].map((i) => [`regexpBad${i}`, `regexp:${p(`bad${i}.regexp`)}`])),
    ...Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`pcreBad${i}`, `pcre:${p(`bad${i}.pcre`)}`])),
    cidrMissing: `cidr:${p("missing.cidr")}`,
    regexp: `regexp:${p("main.regexp")}`,
    regexpSub: `regexp:${p("nosub.regexp")}`,
    regexpBad: `regexp:${p("bad.regexp")}`,
    regexpEmpty: `regexp:${p("empty.regexp")}`,
    regexpMissing: `regexp:${p("missing.regexp")}`,
    pcre: `pcre:${p("main.pcre")}`,
    pcreSub: `pcre:${p("nosub.pcre")}`,
    pcreBad: `pcre:${p("bad.pcre")}`,
    pcreMissing: `pcre:${p("missing.pcre")}`,
    // Rules inline in the name (dict_stream_open's "{...}" form); no "$": main.cf would expand it
    // (and "$/" is a macro error that kills every proxymap at start-up).
    cidrInline: "cidr:{ {127.0.0.1 inl-local}, {10.0.0.0/8 inl-ten}, {!192.168.0.0/16 inl-not-192} }",
    regexpInline: "regexp:{ {/^inl-(a|b)/ inline hit}, {/^Z/i z or Z} }",
    pcreInline: "pcre:{ {/^inl-\\d+/ digits}, {!/^inl/ not inl} }",
    regexpInlineBad: "regexp:{ /x/ y }",
    union: `unionmap:{cidr:${p("small.cidr")},inline:{127.0.0.1=inl,a=1},static:st,regexp:${p("main.regexp")}}`,
    unionNested: `unionmap:{unionmap:{inline:{a=1},inline:{a=2}},pipemap:{inline:{a=b},inline:{b=c}},fail:nope}`,
    unionProxy: "unionmap:{proxy:inline:{u=1},inline:{u=2}}",
    unionBroken: `unionmap:{cidr:${p("missing.cidr")},inline:{a=1}}`,
    unionEmpty: "unionmap:{}",
    pipe: `pipemap:{regexp:${p("main.regexp")},inline:{{OK user 1}=first,{OK user x}=second},static:end}`,
    pipe2: `pipemap:{pcre:${p("main.pcre")},pcre:${p("main.pcre")}}`,
    pipeNokey: `pipemap:{inline:{a=b},inline:{c=d}}`,
    pipeOne: "pipemap:{inline:{a=b}}",
    environ: "environ:env",
    rand1: "randmap:{only-choice}",
    rand3: "randmap:{same,same,same}",
    randEmpty: "randmap:{}",
    randBad: "randmap:nobraces",
    internal: "internal:mem",
    internal2: "internal:other",
    sockInet: servers.sockmapInet,
    sockUnix: servers.sockmapUnix,
    sockGarbage: servers.sockmapGarbage,
    sockNoName: servers.sockmapNoName,
    sockNoServer: `socketmap:unix:${p("no-such.sock")}:x`,
    sockBadType: "socketmap:udp:127.0.0.1:1:x",
    tcp: servers.tcp,
  };
  // Approved without a proxy: prefix: the inner tables are approved too (and the union is not).
  const innerApproving = "unionmap:{proxy:inline:{x=1},proxy:inline:{x=2}}";
  const read = Object.values(named);
  const write = [named.internal, named.internal2, named.environ, named.cidr, named.union, named.rand1, named.sockInet, named.tcp];
  const readMaps = [PATTERN_PROBE, ...read].map((t) => `proxy:${t}`).join(" ") + ` ${innerApproving}`;
  const writeMaps = [PATTERN_PROBE, ...write].map((t) => `proxy:${t}`).join(" ");

  const keys = new Map<string, string[]>();
  for (const [k, t] of Object.entries(named)) {
    if (k.startsWith("cidr")) keys.set(t, CIDR_KEYS);
    if (k.startsWith("regexp") || k.startsWith("pcre")) keys.set(t, RE_KEYS);
  }
  keys.set(named.pipe2, RE_KEYS);
  keys.set(named.cidrInline, ["127.0.0.1", "10.1.1.1", "192.168.1.1", "8.8.8.8", "foo", ""]);
  for (const t of [named.regexpInline, named.pcreInline, named.regexpInlineBad]) keys.set(t, ["inl-a", "inl-b", "inl-12", "inl-x", "z", "Z", "x", ""]);
  for (const t of [named.regexpSub, named.pcreSub]) keys.set(t, ["sub-one", "sub-", "SUB-X", "plain", "x", "y", ""]);
  keys.set(named.union, ["127.0.0.1", "192.0.2.1", "a", "A", "abcdefghi", "user1@example.com", "", "zzz"]);
  keys.set(named.unionNested, ["a", "b", "A", "x", ""]);
  keys.set(named.unionProxy, ["u", "U", "x", ""]);
  keys.set(named.unionBroken, ["a", "b", "10.0.0.1"]);
  keys.set(named.unionEmpty, ["a"]);
  keys.set(named.pipe, ["user1@example.com", "userx@example.com", "user@example.com", "abcdefghi", "nomatch", ""]);
  keys.set(named.pipeNokey, ["a", "c", "b"]);
  keys.set(named.pipeOne, ["a", "b"]);
  keys.set(named.environ, ["LANG", "lang", "TZ", "PATH", "HOME", "MAIL_LOGTAG", "NOSUCH", "", "FOO", "foo", "BAR", "X\xe9"]);
  for (const t of [named.rand1, named.rand3, named.randEmpty, named.randBad]) keys.set(t, ["anything", "", "\xe9\xff"]);
  for (const t of [named.internal, named.internal2]) keys.set(t, ["k1", "K1", "k2", "new", "alice", "gone", "", "\xe9t\xe9", "x".repeat(300)]);
  const sockKeys = [
    ...Object.keys(SERVER_DATA), "KEY2", "nf-x", "reply=TEMP%20busy", "reply=TIMEOUT%20slow", "reply=PERM%20no%20way", "reply=WHAT%20is%20this",
    "reply=OK", "reply=", "reply=OK%20%e9%00x", "raw=5:OK%20ab,", "raw=2:OK;", "garbage", "close", "delay=30:key",
  ];
  for (const t of [named.sockInet, named.sockUnix, named.sockGarbage, named.sockNoName, named.sockNoServer, named.sockBadType]) keys.set(t, sockKeys);
  keys.set(named.tcp, [
    ...Object.keys(SERVER_DATA), "KEY2", "nf-x", "reply=400 try later", "reply=500 gone", "reply=abc", "reply=600 odd status", "reply=200 %zz",
    "reply=200 %41%42%e9", "reply=2000 x", "reply=200", "garbage", "raw=200 raw\n", "delay=30:key",
  ]);
  keys.set("inline:{x=1}", ["x", "X"]);
  keys.set("inline:{x=2}", ["x"]);

  const surrogate: Record<Service, Set<string>> = {
    proxymap: new Set([named.cidrMissing, named.regexpMissing, named.pcreMissing, named.regexpInlineBad, named.unionEmpty, named.randEmpty, named.randBad]),
    // The write service opens O_RDWR: every type but internal and environ refuses that.
    proxywrite: new Set(write.filter((t) => !["internal", "environ"].includes(typeOf(t)))),
  };
  // A union with a missing member opens (the member is a surrogate, with its error line), but cannot walk.
  const erroring: Record<Service, Set<string>> = { proxymap: new Set([...surrogate.proxymap, named.unionBroken]), proxywrite: surrogate.proxywrite };
  const deadlyOpen = new Map([[named.sockBadType, "socketmap on a udp: endpoint (fatal: invalid transport name: udp in service: udp:127.0.0.1:1)"]]);
  return {
    dir, files, named, readMaps, writeMaps, keys, erroring, surrogate, deadlyOpen,
    approvedRead: [...read, "inline:{x=1}", "inline:{x=2}"],
    approvedWrite: write,
    unapproved: [innerApproving, "unionmap:{proxy:inline:{u=1},proxy:inline:{u=2}}", "inline:{u=1}", "inline:{u=2}", `cidr:${p("main.cidr")} `, `regexp:${dir}//main.regexp`, "environ:x", "internal:", "randmap:{only-choice }", "socketmap:inet:127.0.0.1:1:x", "tcp:127.0.0.1:1", "pcre:/etc/postfix/nonexistent"],
    noSequence: new Set(["cidr", "regexp", "pcre", "unionmap", "pipemap", "environ", "randmap", "socketmap", "tcp"]),
  };
}

/** Write the table files (readable by mail_owner: 0755 dir, 0644 files). */
export function writePatternFiles(t: PatternTables): void {
  mkdirSync(t.dir, { recursive: true, mode: 0o755 });
  chmodSync(t.dir, 0o755);
  for (const [name, content] of Object.entries(t.files)) writeFileSync(join(t.dir, name), bytes(content), { mode: 0o644 });
}

// ---- deaths and taming -------------------------------------------------------

const strip = (name: string) => name.replace(/^(proxy:)+/, "");

/** Would this request kill the 3.7.11 reference process? Returns the reason. */
export function patternKillReason(service: Service, r: Req, t: PatternTables): string | undefined {
  const name = strip(r.table);
  if (!(service === "proxymap" ? t.approvedRead : t.approvedWrite).includes(name)) return undefined;
  if (service === "proxymap" && (r.type === "update" || r.type === "delete")) return undefined;
  const v = cFlagsValue(r.type === "open" ? r.inst ?? r.flags : r.flags);
  if (v === null) return undefined;
  if (r.type === "sequence" && ![0, 1].includes(cFlagsValue(r.func ?? "0") ?? -1)) return undefined;
  if (v & F.OPEN_LOCK && v & F.LOCK) return "flags with both OPEN_LOCK and LOCK (panic in dict_open)";
  const dies = t.deadlyOpen.get(name);
  if (dies && (r.type === "open" || r.type === "lookup" || r.type === "sequence")) return dies;
  // An open that failed leaves a surrogate, which answers every operation.
  if (t.surrogate[service].has(name)) return undefined;
  const type = typeOf(name);
  if (r.type === "lookup" && name === t.named.sockNoName) return "socketmap:inet:127.0.0.1:PORT names no port (fatal: 127.0.0.1: garbage after numerical service)";
  if (r.type === "sequence" && t.noSequence.has(type)) return `sequence on ${type} (fatal: sequence operation is not supported)`;
  if (r.type === "sequence" && type === "internal" && service === "proxymap") return "sequence on an empty internal table (reads past the end of the list)";
  if (r.type === "sequence" && type === "inline") return undefined;
  if (r.type === "delete" && service === "proxywrite" && type === "environ") return "delete on environ (fatal: delete operation is not supported)";
  if (r.type === "update" && service === "proxywrite" && type === "environ" && (r.key === "" || r.key?.includes("=")))
    return "update on environ with an empty name or one with '=' (fatal: setenv: Invalid argument)";
  return undefined;
}

/**
 * Keep the reference alive in the compared phase (see tame() in corpus.ts):
 * on tables whose open fails, requests lose their instance bits (one error
 * per table and process, far below the reference's 13); SRC_RHS_IS_FILE is
 * dropped everywhere except on the table made for it; NO_UNAUTH is dropped
 * on socketmap and tcp (each open with it logs an error).
 */
export function patternTame(service: Service, r: Req, t: PatternTables): Req {
  const name = strip(r.table);
  // socketmap and tcp are untrusted: an open with NO_UNAUTH fails with an error (one systematic case has it).
  const untrusted = ["socketmap", "tcp"].includes(typeOf(name)) ? F.NO_UNAUTH : 0;
  const drop = (t.erroring[service].has(name) ? INST_MASK : name === t.named.cidrRhs ? 0 : F.SRC_RHS_IS_FILE) | untrusted;
  const fix = (f: string | undefined) => {
    if (f === undefined) return f;
    const v = cFlagsValue(f);
    return v === null || (v & drop) === 0 ? f : String((v & ~drop) >>> 0);
  };
  return { ...r, flags: fix(r.flags)!, inst: fix(r.inst) };
}

// ---- cases -------------------------------------------------------------------

/** Request flags a real client sends, and the ones the issue names. */
export const PATTERN_FLAGS = ["0", "524353", "16384", "2048", "524288", "4", "8", "12", "32768", "16448", "526336", "540672", "64"];

const ADDR_OCTET = (pk: Picker) => String(pk.one([0, 1, 5, 10, 127, 168, 172, 192, 255, pk.int(256)]));

/** A key: the table's known keys, addresses of every kind, 8-bit, empty, long. */
function pickPatternKey(pk: Picker, t: PatternTables, table: string): string {
  const known = t.keys.get(strip(table)) ?? ["a", "127.0.0.1", "key"];
  return pk.weighted<() => string>([
    [50, () => pk.one(known)],
    [6, () => pk.one(known).toUpperCase()],
    [8, () => [ADDR_OCTET(pk), ADDR_OCTET(pk), ADDR_OCTET(pk), ADDR_OCTET(pk)].join(".")],
    [5, () => pk.one(["2001:db8", "fe80", "", "::ffff"]) + "::" + pk.int(65536).toString(16)],
    [4, () => ""],
    [6, () => pk.bytes(pk.range(1, 12), 1, 255)],
    [4, () => pk.one(["\xc3\x28", "\xe9", "a\xff", "\xed\xa0\x80", UTF8("Ä"), UTF8("ÄÖÜ"), UTF8("ü-x")])],
    [3, () => pk.one(["a", "1", "x"]).repeat(pk.one([255, 1024, 4096, 5000]))],
    [6, () => pk.one(["user", "USER", "User"]) + pk.bytes(pk.range(0, 4), 97, 122) + "@example.com"],
    [4, () => pk.one(["key with space", " lead", "trail ", "tab\there", "$1", "${1}", "$$", "%s", "a\nb", "a%41"])],
    [4, () => pk.one(["nf", "reply=", "reply=2", "reply=OK ", "reply=TEMP ", "pct", "if-", "sub-", "pcre-", "8bit-", "user"]) + pk.bytes(pk.range(0, 5), 33, 126)],
  ])();
}

function pickPatternTable(pk: Picker, t: PatternTables, service: Service): string {
  const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
  return pk.weighted<() => string>([
    [80, () => pk.one(approved)],
    [8, () => pk.one(t.unapproved)],
    [6, () => pk.one(service === "proxymap" ? t.approvedWrite : t.approvedRead)],
    [6, () => pk.one(["proxy:", "proxy:proxy:"]) + pk.one(approved)],
  ])();
}

function pickPatternReq(pk: Picker, t: PatternTables, service: Service): Req {
  const table = pickPatternTable(pk, t, service);
  const rt = pk.weighted<ReqType>(service === "proxymap"
    ? [[65, "lookup"], [15, "open"], [6, "sequence"], [7, "update"], [7, "delete"]]
    : [[40, "lookup"], [10, "open"], [12, "sequence"], [25, "update"], [13, "delete"]]);
  const flags = pk.chance(0.5) ? pk.one(PATTERN_FLAGS) : pickFlags(pk);
  const r: Req = { type: rt, table, flags };
  if (rt === "lookup" || rt === "update" || rt === "delete") r.key = pickPatternKey(pk, t, table);
  if (rt === "update") r.value = pk.weighted<() => string>([[70, () => "v" + pk.int(100)], [15, () => ""], [15, () => pk.bytes(pk.range(1, 40), 1, 255)]])();
  if (rt === "sequence") r.func = pk.weighted<() => string>([[45, () => "0"], [45, () => "1"], [10, () => pk.one(["2", "-1", "", "x"])]])();
  return r;
}

export interface PatternCorpusOptions {
  seed: number;
  /** Random cases on top of the systematic ones. */
  count: number;
}

/** The whole corpus: set-up cases, systematic cases, deaths, then seeded random ones. */
export function generatePatternCorpus(t: PatternTables, opts: PatternCorpusOptions): Case[] {
  const pk = new Picker(rng(opts.seed));
  const cases: Case[] = [];
  const add = (service: Service, label: string, rounds: Round[], kill?: string) => cases.push({ id: cases.length, service, label, rounds, kill });
  const r37 = (r: Req): Round => ({ bytes: encodeAttrs(reqAttrs(r, "3.7")), type: r.type });
  const n = t.named;
  const lookups = (table: string, flags: string, keys = t.keys.get(table) ?? ["a"]): Req[] => keys.map((key) => ({ type: "lookup", table, flags, key }));

  // 0. Set-up: the first opens decide NO_REGSUB; the write service's tables get content.
  add("proxymap", "setup nosub regexp (first open with NO_REGSUB)", [r37({ type: "open", table: n.regexpSub, flags: "2048" }), ...lookups(n.regexpSub, "2048").map(r37), ...lookups(n.regexpSub, "0").map(r37)]);
  add("proxymap", "setup nosub pcre (first open with NO_REGSUB)", [r37({ type: "open", table: n.pcreSub, flags: "2048" }), ...lookups(n.pcreSub, "526336").map(r37)]);
  add("proxymap", "setup regexp/pcre/cidr (first open without)", [n.regexp, n.pcre, n.cidr].map((table) => r37({ type: "open", table, flags: "0" })));
  const seed: Req[] = [];
  for (let i = 0; i < 20; i++) seed.push({ type: "update", table: n.internal, flags: "0", key: `seed${i}`, value: `value ${i} \xe9` });
  seed.push({ type: "update", table: n.internal, flags: "0", key: "k1", value: "one" }, { type: "update", table: n.internal, flags: "16384", key: "K2", value: "two (folded key)" });
  seed.push({ type: "update", table: n.internal2, flags: "0", key: "only", value: "1" });
  seed.push({ type: "update", table: n.environ, flags: "0", key: "FOO", value: "bar" }, { type: "update", table: n.environ, flags: "16384", key: "BAR", value: "folded" });
  add("proxywrite", "setup proxywrite updates", seed.map(r37));
  add("proxywrite", "setup proxywrite lookups and walk", [
    ...lookups(n.internal, "0").map(r37), ...lookups(n.environ, "524353").map(r37),
    r37({ type: "sequence", table: n.internal2, flags: "0", func: "0" }), r37({ type: "sequence", table: n.internal2, flags: "0", func: "1" }),
    r37({ type: "delete", table: n.internal2, flags: "0", key: "only" }), r37({ type: "delete", table: n.internal2, flags: "0", key: "only" }),
    r37({ type: "update", table: n.internal2, flags: "0", key: "only", value: "2" }),
  ]);
  add("proxymap", "rhs-is-file cidr", [r37({ type: "open", table: n.cidrRhs, flags: String(F.SRC_RHS_IS_FILE) }), ...["127.0.0.1", "10.1.1.1", "8.8.8.8"].map((key) => r37({ type: "lookup", table: n.cidrRhs, flags: String(F.SRC_RHS_IS_FILE), key }))]);

  add("proxymap", "NO_UNAUTH on untrusted tables (an error each: they answer like a failed open)", [n.tcp, n.sockInet].flatMap((table) => [
    r37({ type: "open", table, flags: String(F.NO_UNAUTH | F.TRY0NULL) }), r37({ type: "lookup", table, flags: String(F.NO_UNAUTH | F.TRY0NULL), key: "key" }),
  ]));

  // 1. Systematic: every table on both services; every key with a client's flags and the issue's flags.
  for (const service of ["proxymap", "proxywrite"] as const) {
    const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
    for (const table of [...approved, ...t.unapproved]) {
      const keys = t.keys.get(table) ?? ["a"];
      // A postmap-like client (keys folded, 524353), then every key as it is (0).
      const rs: Req[] = [{ type: "open", table, flags: "0" }, ...lookups(table, "524353", keys.map((k) => k.toLowerCase()))];
      if (service === "proxymap") rs.push(...lookups(table, "0", keys));
      for (const flags of PATTERN_FLAGS.slice(1)) rs.push(...lookups(table, flags, keys.slice(0, service === "proxymap" ? 6 : 2)));
      rs.push({ type: "update", table, flags: "0", key: "new", value: "v" }, { type: "delete", table, flags: "0", key: "gone" });
      const tamed = rs.map((r) => patternTame(service, r, t));
      add(service, `systematic ${service} ${table}`, tamed.filter((r) => !patternKillReason(service, r, t)).map(r37));
      const seq: Req[] = [{ type: "sequence", table, flags: "0", func: "0" }, { type: "sequence", table, flags: "0", func: "1" }, { type: "sequence", table, flags: "0", func: "1" }];
      const k = seq.map((r) => patternKillReason(service, patternTame(service, r, t), t)).find((x) => x);
      if (k) add(service, `sequence ${service} ${table}`, seq.map((r) => r37(patternTame(service, r, t))), k);
      else if ((service === "proxywrite" && approved.includes(table)) || !approved.includes(table)) add(service, `walk ${service} ${table}`, seq.map((r) => r37(patternTame(service, r, t))));
      for (const r of rs.filter((r) => !patternKillReason(service, r, t) && patternKillReason(service, patternTame(service, r, t), t))) add(service, `systematic-kill ${r.type} ${table}`, [r37(r)], patternKillReason(service, r, t));
    }
  }
  // A longer walk of the written internal table (order is the reference's hash order: compared as a set).
  add("proxywrite", "walk internal", [r37({ type: "sequence", table: n.internal, flags: "0", func: "0" }), ...Array.from({ length: 25 }, () => r37({ type: "sequence", table: n.internal, flags: "0", func: "1" }))]);
  // Environ delete kills the reference: listed with the other deaths.
  add("proxywrite", "kill: delete environ", [r37({ type: "delete", table: n.environ, flags: "0", key: "FOO" })], "delete on environ (fatal: delete operation is not supported)");

  // 2. Seeded random cases.
  for (let c = 0; c < opts.count; c++) {
    const service: Service = pk.chance(0.85) ? "proxymap" : "proxywrite";
    const nRounds = pk.weighted([[45, 1], [25, 2], [15, 4], [15, 8]] as const);
    const rounds: Round[] = [];
    const notes: string[] = [];
    let killed: string | undefined;
    const opened = new Set<string>();
    for (let i = 0; i < nRounds; i++) {
      let r = patternTame(service, pickPatternReq(pk, t, service), t);
      // A walk's "next" continues the cursor of whatever case came before (hash order differs): start one.
      if (r.type === "sequence" && r.func === "1" && !opened.has(r.table)) r = { ...r, func: "0" };
      if (r.type === "sequence") opened.add(r.table);
      const k = patternKillReason(service, r, t);
      if (k) {
        if (!pk.chance(0.05)) continue;
        killed = k;
      }
      const attrs = reqAttrs(r, "3.7");
      if (!killed && pk.chance(0.15)) {
        const m = applyMutation(attrs, pk);
        rounds.push({ bytes: m.bytes, type: r.type });
        notes.push(`${r.type}/${m.name}`);
      } else {
        rounds.push(r37(r));
        notes.push(r.type);
      }
      if (killed) break;
    }
    if (!rounds.length) continue;
    add(service, `random ${notes.join(" ")}`, rounds, killed);
  }
  // A mutation can build a valid 3.11 request: the 3.7 reference gets its 3.7 form.
  // Each death costs a restart of the reference: one per kind of death.
  const seen = new Set<string>();
  const kept = cases.filter((c) => {
    if (!c.kill) return true;
    const key = `${c.service} ${c.kill}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  kept.forEach((c, i) => (c.id = i));
  return kept;
}
