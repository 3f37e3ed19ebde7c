/**
 * record-bytecode-order.ts - record which functions a proxymap start uses,
 * for the profile-guided bytecode layout of build.ts (Bun's
 * `compile.bytecodeOrder`): the executable then keeps the bytecode a start
 * needs together at the front, and a start reads, decodes and keeps in
 * memory less of it.
 *
 * Runs the built dist/proxymap as a real master(8) runs it (a private Postfix
 * instance, test/helpers/postfix-instance.ts), a fresh process per
 * connection, with BUN_BYTECODE_ORDER_OUT passed through import_environment:
 * three starts with a texthash table, each answering a few lookups. Writes
 * scripts/bytecode-order/daemon.order (the last start's profile) and prints
 * what it wrote. A profile stays usable when the code changes (Bun
 * matches functions by a hash of their syntax); record again when
 * `bytecodeOrderStats()` (bun:jsc) reports many cold functions.
 *
 * Usage: npm run build && bun scripts/record-bytecode-order.ts && npm run build
 * Needs root and Postfix (as the end-to-end tests).
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PostfixInstance } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { WireClient } from "../test/helpers/wire";

const OUT_DIR = join(import.meta.dir, "bytecode-order");

requirePostfix();
requireOurBinary();
// Under the queue directory's parent, where the postfix account may write.
const rec = mkdtempSync(join("/var/tmp", "pm-order-"));
chmodSync(rec, 0o1777);
writeFileSync(join(rec, "th.txt"), Array.from({ length: 1000 }, (_, i) => `key${i} value${i}\n`).join(""), { mode: 0o644 });
const table = `texthash:${rec}/th.txt`;
const inst = await PostfixInstance.start({
  impl: "ours",
  label: "order",
  mainCf: {
    proxy_read_maps: `proxy:${table}`,
    // Postfix 3.7's default, plus the profile's file name (%p: the process id).
    import_environment: `MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME BUN_BYTECODE_ORDER_OUT=${rec}/daemon.%p.order`,
  },
  proxymapArgs: ["-o", "max_use=1"],
});
try {
  for (let i = 0; i < 3; i++) {
    const t = Date.now();
    while (inst.servicePids("proxymap").length && Date.now() - t < 5000) await Bun.sleep(5);
    const cl = await WireClient.connect(inst.socket("proxymap"));
    for (let k = 0; k < 5; k++) await cl.lookup(table, `key${k * 7}`);
    cl.close();
  }
  const t = Date.now();
  while (inst.servicePids("proxymap").length && Date.now() - t < 5000) await Bun.sleep(5);
  const made = readdirSync(rec).filter((f) => f.endsWith(".order"));
  if (made.length === 0) throw new Error(`no profile was written in ${rec}`);
  mkdirSync(OUT_DIR, { recursive: true });
  copyFileSync(join(rec, made.sort()[made.length - 1]), join(OUT_DIR, "daemon.order"));
  console.log(`wrote ${join(OUT_DIR, "daemon.order")} (from ${made.length} starts); rebuild with npm run build`);
} finally {
  inst.stop();
  rmSync(rec, { recursive: true, force: true });
}
