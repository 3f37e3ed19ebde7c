/**
 * $name expansion (src/config/macExpand.ts) against the semantics of
 * Postfix 3.7's mac_expand(): plain and conditional forms, relational
 * operators, the compatibility-level operators, recursion and the syntax
 * errors with their warning texts.
 */
import { describe, expect, test } from "bun:test";
import { MAC_PARSE_ERROR, MAC_PARSE_UNDEF, macExpand } from "../../src/config/macExpand";
import { capture } from "./fixtures/config/capture";

const TABLE: Record<string, string> = {
  a: "A",
  b: "B",
  empty: "",
  chain: "<$a|$b>",
  deep: "[$chain]",
  loop1: "$loop2",
  loop2: "$loop1",
  level: "3.6",
  num: "10",
  dollar: "$$x",
};
const lookup = (name: string) => TABLE[name];

function ex(pattern: string, recurse = true) {
  return macExpand(pattern, lookup, { recurse });
}

describe("plain references", () => {
  test.each([
    ["$a", "A"],
    ["${a}", "A"],
    ["$(a)", "A"],
    ["x$a.y", "xA.y"],
    ["$a$b", "AB"],
    ["$$a", "$a"],
    ["$$$a", "$A"],
    ["${ a }", "A"],
    ["$a_b", ""], // the name is a_b
    ["$a-b", "A-b"],
    ["${empty}x", "x"],
    ["$nonesuch", ""],
    ["$chain", "<A|B>"],
    ["$deep", "[<A|B>]"],
    ["$dollar", "$x"], // $$ in a value is a literal $ once expanded
    ["no macros at all", "no macros at all"],
    ["${a}{b}", "A{b}"],
    ["$(a)}", "A}"], // only the opening kind counts
  ])("%s -> %s", (pattern, expected) => {
    expect(ex(pattern).result).toBe(expected);
  });

  test("an undefined name sets MAC_PARSE_UNDEF, not an error", () => {
    const r = ex("x$nonesuch");
    expect(r.status & MAC_PARSE_UNDEF).toBe(MAC_PARSE_UNDEF);
    expect(r.status & MAC_PARSE_ERROR).toBe(0);
  });

  test("without recursion values are used as they are", () => {
    expect(ex("$chain", false).result).toBe("<$a|$b>");
  });
});

describe("conditional forms", () => {
  test.each([
    ["${a?yes}", "yes"],
    ["${empty?yes}", ""],
    ["${nonesuch?yes}", ""],
    ["${a:no}", ""],
    ["${empty:no}", "no"],
    ["${nonesuch:no}", "no"],
    ["${a?{yes}}", "yes"],
    ["${a?{ yes }}", " yes "],
    ["${a?{yes}:{no}}", "yes"],
    ["${empty?{yes}:{no}}", "no"],
    ["${a ? {yes} : {no}}", "yes"],
    ["${a?$b}", "B"],
    ["${a?foo:bar}", "foo:bar"], // text after ? without braces is taken whole
    ["${empty?foo:bar}", ""],
    ["${a?{x}:bar}", "x"],
    ["${empty?{x}:bar}", "bar"],
    ["${a?{$chain}}", "<A|B>"],
    ["${a?{{nested}}}", "{nested}"],
  ])("%s -> %s", (pattern, expected) => {
    expect(ex(pattern).result).toBe(expected);
  });
});

describe("relational operators", () => {
  test.each([
    ["${{$a} == {A} ? {eq} : {ne}}", "eq"],
    ["${{$a} != {A} ? {ne} : {eq}}", "eq"],
    ["${{10} < {9} ? {lt} : {ge}}", "ge"], // numeric when both sides are digits
    ["${{10} < {9x} ? {lt} : {ge}}", "lt"], // else strcmp
    ["${{$num} >= {10}?{y}:{n}}", "y"],
    ["${{b} > {a}?{y}:{n}}", "y"],
    ["${{a} <= {a}?{y}:{n}}", "y"],
    ["${{$a} == {A}}", "true"],
    ["${{$a} == {B}}", ""],
    ["${{$a} == {A}?{only-true}}", "only-true"],
    ["${{$a} == {B}:{only-false}}", "only-false"],
    ["${{$level} <level {2} ? {old} : {new}}", "new"],
    ["${{$level} ==level {3.6.0} ? {same} : {other}}", "same"],
    ["${{2} <level {3.6} ? {old} : {new}}", "old"],
    ["${{1} >=level {1}?{y}:{n}}", "y"],
  ])("%s -> %s", (pattern, expected) => {
    expect(ex(pattern).result).toBe(expected);
  });
});

describe("syntax errors warn with the reference's wording", () => {
  test.each([
    ["${a", 'truncated macro reference: "${a"'],
    ["x$", 'empty macro name: "x$"'],
    ["${}", 'empty macro name: "${}"'],
    ["${a b}", 'attribute name syntax error at: "...a>>> b"'],
    ["${a?{x}y}", '":" expected at: "...x}>>>y"'],
    ["${a?{x}:{y}z}", 'unexpected input at: "...y}>>>z"'],
    ["${a?{x}", 'truncated macro reference: "${a?{x}"'],
    ["${{a} =~ {b}}", '"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>=~ {b}"'],
    ["${{a} == b}", '"{expression}" expected at: "...{a} ==>>> b"'],
    ["${{a} ==foo {b}}", 'bad operator suffix at: "...==>>>foo"'],
    ["${{a} == {b} x}", '"?" or ":" expected at: "...}>>>x"'],
    ["${{x} <level {2}}", 'malformed compatibility level syntax: "x"'],
    ["${a?{x}:{y}", 'truncated macro reference: "${a?{x}:{y}"'],
    ["${{a}", 'truncated macro reference: "${{a}"'],
    ["$({a)", 'unbalanced {} in attribute expression: "{a"'],
    ["$(a{)", 'attribute name syntax error at: "...a>>>{"'],
  ])("%s", (pattern, warning) => {
    const c = capture(() => ex(pattern));
    expect(c.result!.status & MAC_PARSE_ERROR).toBe(MAC_PARSE_ERROR);
    expect(c.lines).toContain(`warning: ${warning}`);
  });

  test("endless recursion stops with 'unreasonable macro call nesting'", () => {
    const c = capture(() => ex("$loop1"));
    expect(c.result!.status & MAC_PARSE_ERROR).toBe(MAC_PARSE_ERROR);
    expect(c.lines[0]).toMatch(/^warning: unreasonable macro call nesting: "loop\d"$/);
  });

  test("text before an error is kept, nothing after it", () => {
    const c = capture(() => ex("keep ${a b} drop $a"));
    expect(c.result!.result).toBe("keep ");
  });

  test("a NUL ends the pattern, as in C", () => {
    expect(ex("$a\0$b").result).toBe("A");
  });

  test("8-bit bytes are neither letters nor digits", () => {
    expect(ex("$a\xe9").result).toBe("A\xe9");
  });
});
