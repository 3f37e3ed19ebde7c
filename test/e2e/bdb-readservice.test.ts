/**
 * The read service and files rebuilt by postmap: `postmap -q KEY
 * proxy:TYPE:FILE` through a private master(8), then `postmap TYPE:FILE`
 * with new contents, then the query again: the new value must come back
 * (the C proxymap restarts on the change, ours re-opens the file). Run with
 * the C proxymap (checks the test itself) and with ours.
 *
 * Needs Postfix (root) and, for "ours", dist/proxymap (npm run build).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";

let inst: PostfixInstance | undefined;
afterEach(() => {
  inst?.stop();
  inst = undefined;
});

for (const impl of ["c", "ours"] as ProxymapImpl[]) {
  describe(`read service, rebuilt files (${impl} proxymap)`, () => {
    for (const type of ["hash", "btree"]) {
      test(`${type}: a rebuild by postmap is answered by the next lookup`, async () => {
        inst = await PostfixInstance.start({
          impl,
          label: `bdbrd-${typeof impl === "string" ? impl : "custom"}`,
          mainCf: { proxy_read_maps: `proxy:${type}:$data_directory/map` },
        });
        const file = `${inst.dataDir}/map`;
        const table = `proxy:${type}:${file}`;
        await Bun.write(file, "k old\nUPPER case\n");
        expect(inst.run("postmap", [`${type}:${file}`]).code).toBe(0);
        expect(inst.postmapQuery("k", table)).toMatchObject({ code: 0, stdout: "old\n" });
        expect(inst.postmapQuery("UPPER", table)).toMatchObject({ code: 0, stdout: "case\n" });
        expect(inst.postmapQuery("absent", table).code).toBe(1);

        await Bun.sleep(1100); // a new mtime second, for the reference's check
        await Bun.write(file, "k new\n");
        expect(inst.run("postmap", [`${type}:${file}`]).code).toBe(0);
        const deadline = Date.now() + 10000;
        let r = inst.postmapQuery("k", table);
        while (r.stdout !== "new\n" && Date.now() < deadline) {
          await Bun.sleep(200);
          r = inst.postmapQuery("k", table);
        }
        expect(r).toMatchObject({ code: 0, stdout: "new\n" });
        expect(inst.postmapQuery("UPPER", table).code).toBe(1);
        expect(inst.log()).not.toMatch(/warning|fatal|panic/);
      }, 60000);
    }
  });
}
