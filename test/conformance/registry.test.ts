/** Every registered table type runs the conformance suite: one file per type in this folder. */
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { TABLE_TYPES } from "../../src/tables/registry";

test("every registered type has test/conformance/<type>.test.ts", () => {
  const files = readdirSync(import.meta.dir).filter((f) => f.endsWith(".test.ts") && f !== "registry.test.ts");
  expect(files.map((f) => f.replace(".test.ts", "")).sort()).toEqual(TABLE_TYPES.map((t) => t.type).sort());
});
