/**
 * Reads proxymap requests off the token stream the way the reference server
 * reads them, so that malformed input gets exactly the reference's answers.
 *
 * The reference does not parse a whole attribute list and then judge it: it
 * pulls one attribute at a time against the list it expects and stops at the
 * first surprise. What it has not read stays in the stream and is read as
 * the start of the next request. Emulating that pull (and nothing more) is
 * what makes byte-for-byte equal replies possible for garbage, for missing,
 * extra and misordered attributes:
 *  - first the `request` attribute alone; an empty name (a bare terminator)
 *    or another name is logged and gets no reply; only that name is consumed;
 *  - then the request's own attributes in fixed order, then the terminator;
 *    a missing one (terminator seen early) or a wrong name stops the scan:
 *    the request is BAD; a malformed number likewise;
 *  - an extra attribute where the terminator should be is logged, but the
 *    request itself counts as complete (only its name is consumed).
 *
 * Two request shapes: up to Postfix 3.10 (`table`, `flags`, ...) and from
 * 3.11 (`table`, `instance_flags`, `flags`, ...; open: `table`,
 * `instance_flags`). The installed Postfix's generation decides how a
 * request is read, as that generation's proxymap reads it: from 3.11 only
 * the 3.11 shape, before only the classic one; a request of the other shape
 * is malformed, and every BAD reply has the installed generation's shape.
 * Only where no Postfix version is known ("either": ours run by hand
 * without Postfix) the name after `table` decides which shape a request is
 * (a broken request that does not get that far is answered in the classic
 * shape).
 *
 * Pure: tokens in, a description of the request out, warnings as strings
 * (the caller logs them).
 */
import { parseCUnsigned, type TokenReader } from "./attr";

/** Which generation of the protocol a request (and so its reply) belongs to. */
export type Gen = "classic" | "instance";

/** The shapes the installed Postfix speaks: its generation's, or (version unknown) either. */
export type Installed = Gen | "either";

export type RequestOp = "open" | "lookup" | "update" | "delete" | "sequence";

export type Scanned =
  /** Nothing to answer: the list did not start with `request`. */
  | { op: "none" }
  /** `request` named no known operation: reply status BAD alone. */
  | { op: "unknown"; name: string }
  /** A known operation whose attributes were malformed: reply BAD in its shape. */
  | { op: "bad"; request: RequestOp; gen: Gen }
  | ({ op: RequestOp; gen: Gen } & RequestAttrs);

export interface RequestAttrs {
  table: string;
  /** 3.11 shape only: the instance flags (`open` sends only these). */
  instFlags: number;
  flags: number;
  key: string;
  value: string;
  func: number;
}

/** Outcome of one scan; undefined from scanRequest means "need more input". */
export interface ScanResult {
  scanned: Scanned;
  warnings: string[];
}

type Kind = "str" | "int";
type Field = keyof RequestAttrs;
type Wanted = ReadonlyArray<readonly [attrName: string, kind: Kind, field: Field]>;

const TABLE = ["table", "str", "table"] as const;
const INST = ["instance_flags", "int", "instFlags"] as const;
const FLAGS = ["flags", "int", "flags"] as const;
const KEY = ["key", "str", "key"] as const;
const VALUE = ["value", "str", "value"] as const;
const FUNC = ["function", "int", "func"] as const;

/** Attributes after `request`, per operation and shape. */
const SHAPES: Record<RequestOp, Record<Gen, Wanted>> = {
  open: { classic: [TABLE, FLAGS], instance: [TABLE, INST] },
  lookup: { classic: [TABLE, FLAGS, KEY], instance: [TABLE, INST, FLAGS, KEY] },
  update: { classic: [TABLE, FLAGS, KEY, VALUE], instance: [TABLE, INST, FLAGS, KEY, VALUE] },
  delete: { classic: [TABLE, FLAGS, KEY], instance: [TABLE, INST, FLAGS, KEY] },
  sequence: { classic: [TABLE, FLAGS, FUNC], instance: [TABLE, INST, FLAGS, FUNC] },
};

const OPS = new Set<string>(Object.keys(SHAPES));

/**
 * Scan one request starting at reader.pos. Returns undefined when the
 * buffered tokens end before the scan does (the caller retries from the
 * same start once more bytes arrived); otherwise reader.pos is left just
 * after the last token the reference would have consumed.
 *
 * `stream` names the peer in warnings ("proxymap socket").
 * `installed` is the installed Postfix's generation: "instance" (3.11+)
 * reads only the 3.11 shape, "classic" only the older one, "either" both
 * (see above).
 */
export function scanRequest(reader: TokenReader, stream: string, installed: Installed): ScanResult | undefined {
  const warnings: string[] = [];
  // Like the reference, a list that never started is no error at all.
  if (reader.eof && !reader.cutInToken) return undefined;
  const name = reader.next();
  if (name === undefined) return endOfInput(reader, stream, "input attribute name", warnings, { op: "none" });
  if (name === "") {
    warnings.push(`missing attribute request in input from ${stream}`);
    return { scanned: { op: "none" }, warnings };
  }
  if (name !== "request") {
    warnings.push(`unexpected attribute ${name} from ${stream} (expecting: request)`);
    return { scanned: { op: "none" }, warnings };
  }
  const op = reader.next();
  if (op === undefined) return endOfInput(reader, stream, "input attribute value", warnings, { op: "none" });
  if (!OPS.has(op)) return { scanned: { op: "unknown", name: op }, warnings };
  return scanBody(reader, op as RequestOp, stream, installed, warnings);
}

function scanBody(
  reader: TokenReader,
  op: RequestOp,
  stream: string,
  installed: Installed,
  warnings: string[],
): ScanResult | undefined {
  const attrs: RequestAttrs = { table: "", instFlags: 0, flags: 0, key: "", value: "", func: 0 };
  let gen: Gen = installed === "instance" ? "instance" : "classic";
  let wanted = SHAPES[op][gen];
  const bad = (): ScanResult => ({ scanned: { op: "bad", request: op, gen }, warnings });

  for (let i = 0; ; i++) {
    const name = reader.next();
    if (name === undefined) return endOfInput(reader, stream, "input attribute name", warnings, bad().scanned);
    // With no installed generation to follow, the second attribute tells
    // the shape (a 3.11 client always sends instance_flags there).
    if (i === 1 && installed === "either") {
      gen = name === INST[0] ? "instance" : "classic";
      wanted = SHAPES[op][gen];
    }
    if (i === wanted.length) {
      if (name !== "") {
        warnings.push(`unexpected attribute ${name} from ${stream} (expecting: (list terminator))`);
      }
      return { scanned: { op, gen, ...attrs }, warnings };
    }
    const [want, kind, field] = wanted[i];
    if (name === "") {
      warnings.push(`missing attribute ${want} in input from ${stream}`);
      return bad();
    }
    if (name !== want) {
      warnings.push(`unexpected attribute ${name} from ${stream} (expecting: ${want})`);
      return bad();
    }
    const text = reader.next();
    if (text === undefined) return endOfInput(reader, stream, "input attribute value", warnings, bad().scanned);
    if (kind === "str") {
      (attrs[field] as string) = text;
    } else {
      const n = parseCUnsigned(text);
      if (n === undefined) {
        warnings.push(
          `malformed numerical data from ${stream} while reading input attribute value: ${text.slice(0, 100)}`,
        );
        return bad();
      }
      (attrs[field] as number) = n;
    }
  }
}

/**
 * The input ran out inside a request. Before end of input that only means
 * "wait for more" (undefined). After it, the reference logs which part it
 * was reading — "unexpected" when a token was cut, "premature" when the
 * input stopped between tokens — and answers what it had: nothing while
 * reading `request`, BAD inside a known request.
 */
function endOfInput(
  reader: TokenReader,
  stream: string,
  context: string,
  warnings: string[],
  scanned: Scanned,
): ScanResult | undefined {
  if (!reader.eof) return undefined;
  warnings.push(
    reader.cutInToken
      ? `unexpected end-of-input from ${stream} while reading ${context}`
      : `premature end-of-input on ${stream} while reading ${context}`,
  );
  reader.consumeAll();
  return { scanned, warnings };
}
