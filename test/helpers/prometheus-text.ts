/**
 * prometheus-text.ts - a strict reader of Prometheus's text exposition
 * format (0.0.4) for tests, written from the format's description, not
 * from src/ (the tests must not trust the writer they test). It throws on
 * anything a Prometheus server or node_exporter's textfile collector would
 * refuse: a sample before its family's # TYPE, a family split in two,
 * malformed names, labels or values, duplicate series, histogram buckets
 * that are not cumulative or whose +Inf differs from _count.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`label without '=': ${text}`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name ${JSON.stringify(name)}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted: ${text}`);
    let j = eq + 2;
    let value = "";
    for (;;) {
      if (j >= text.length) throw new Error(`unterminated label value: ${text}`);
      const c = text[j];
      if (c === "\\") {
        const n = text[j + 1];
        if (n === "n") value += "\n";
        else if (n === "\\" || n === '"') value += n;
        else throw new Error(`bad escape \\${n} in ${text}`);
        j += 2;
        continue;
      }
      if (c === '"') break;
      if (c === "\n") throw new Error("raw newline in label value");
      value += c;
      j++;
    }
    if (name in out) throw new Error(`label ${name} twice`);
    out[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (i < text.length) throw new Error(`expected ',' in ${text}`);
  }
  return out;
}

function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === "histogram") return base;
    }
  }
  return name;
}

export function parseExposition(textIn: string): Exposition {
  if (!textIn.endsWith("\n")) throw new Error("exposition must end with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const done = new Set<string>();
  let current = "";
  const seen = new Set<string>();
  for (const line of textIn.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type)) throw new Error(`bad type ${type}`);
      if (types.has(name)) throw new Error(`# TYPE ${name} twice`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith("#") || line === "") continue;
    const m = /^([^{\s]+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`malformed sample line: ${line}`);
    const [, name, labelText, valueText] = m;
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    const fam = familyOf(name, types);
    if (!types.has(fam)) throw new Error(`sample ${name} before its # TYPE`);
    if (fam !== current) {
      if (done.has(fam)) throw new Error(`family ${fam} is split`);
      if (current) done.add(current);
      current = fam;
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value ${valueText}`);
    const labels = parseLabels(labelText ?? "");
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series ${key}`);
    seen.add(key);
    if (types.get(fam) === "counter" && value < 0) throw new Error(`negative counter ${line}`);
    samples.push({ name, labels, value });
  }
  checkHistograms(types, samples);
  return { types, samples };
}

function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [fam, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
    for (const s of samples) {
      if (!s.name.startsWith(fam)) continue;
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      const e = series.get(key) ?? { buckets: [] };
      series.set(key, e);
      if (s.name === `${fam}_bucket`) {
        if (le === undefined) throw new Error(`${fam}_bucket without le`);
        e.buckets.push([le === "+Inf" ? Infinity : Number(le), s.value]);
      } else if (s.name === `${fam}_count`) e.count = s.value;
    }
    for (const [key, e] of series) {
      const sorted = [...e.buckets].sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < sorted.length; i++) if (sorted[i][1] < sorted[i - 1][1]) throw new Error(`${fam}${key}: buckets not cumulative`);
      const inf = sorted.at(-1);
      if (!inf || inf[0] !== Infinity) throw new Error(`${fam}${key}: no +Inf bucket`);
      if (e.count !== inf[1]) throw new Error(`${fam}${key}: +Inf ${inf[1]} != _count ${e.count}`);
    }
  }
}
