/**
 * internal.test.ts - the "internal" table through a real proxywrite socket
 * of ours (--listen -n proxywrite): one instance per process, so what one
 * client stores another client reads, walks and deletes; the read service
 * refuses updates (DENY, the service's rule). The request-by-request
 * behaviour (folding, replace, delete, hash-order walk) is compared with
 * the C proxymap in test/golden/internal.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { WireClient, type Attr } from "../helpers/wire";
import { startListening, writeListenConfig } from "../helpers/listen";

const tmp = mkdtempSync(join(tmpdir(), "internal-test-"));
let proc: Subprocess | undefined;
afterAll(() => {
  proc?.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

async function start(args: string[]): Promise<string> {
  writeListenConfig(tmp, ["proxy_write_maps = proxy:internal:shared", "proxy_read_maps = proxy:internal:shared"]);
  const l = await startListening(tmp, join(tmp, `pm${args.length}.sock`), args);
  proc = l.proc;
  return l.sock;
}

const ask = (c: WireClient, attrs: Attr[]) => c.ask(attrs);

test("internal: what one proxywrite client stores, another reads, walks and deletes", async () => {
  const sock = await start(["-n", "proxywrite"]);
  const a = await WireClient.connect(sock);
  const b = await WireClient.connect(sock);
  const T = "internal:shared";
  expect(await ask(b, [["request", "lookup"], ["table", T], ["flags", "0"], ["key", "k1"]])).toEqual({ status: "1", value: "" });
  expect(await ask(a, [["request", "update"], ["table", T], ["flags", "0"], ["key", "k1"], ["value", "v1"]])).toEqual({ status: "0" });
  expect(await ask(a, [["request", "update"], ["table", T], ["flags", String(1 << 14)], ["key", "K2"], ["value", "v2"]])).toEqual({ status: "0" });
  expect(await ask(b, [["request", "lookup"], ["table", T], ["flags", "0"], ["key", "k1"]])).toEqual({ status: "0", value: "v1" });
  expect(await ask(b, [["request", "lookup"], ["table", T], ["flags", "0"], ["key", "k2"]])).toEqual({ status: "0", value: "v2" });
  const walk: string[] = [];
  for (let fn = 0; ; fn = 1) {
    const r = await ask(b, [["request", "sequence"], ["table", T], ["flags", "0"], ["function", String(fn)]]);
    if (r.status !== "0") break;
    walk.push(`${r.key}=${r.value}`);
  }
  expect(walk.sort()).toEqual(["k1=v1", "k2=v2"]);
  expect(await ask(b, [["request", "delete"], ["table", T], ["flags", "0"], ["key", "k1"]])).toEqual({ status: "0" });
  expect(await ask(a, [["request", "lookup"], ["table", T], ["flags", "0"], ["key", "k1"]])).toEqual({ status: "1", value: "" });
  a.close();
  b.close();
  proc?.kill("SIGKILL");
}, 30_000);

test("internal on the read service: updates refused (DENY), lookups of an empty table", async () => {
  const sock = await start([]);
  const c = await WireClient.connect(sock);
  const T = "internal:shared";
  expect(await ask(c, [["request", "update"], ["table", T], ["flags", "0"], ["key", "k"], ["value", "v"]])).toEqual({ status: "4" });
  expect(await ask(c, [["request", "lookup"], ["table", T], ["flags", "0"], ["key", "k"]])).toEqual({ status: "1", value: "" });
  c.close();
}, 30_000);
