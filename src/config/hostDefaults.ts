/**
 * The three defaults Postfix computes at run time instead of taking from its
 * table (global/mail_params.c, global/mynetworks.c):
 *
 *  - myhostname: the machine's hostname; when it has no dot, ".$mydomain"
 *    (main.cf's mydomain, or "localdomain") is appended.
 *  - mydomain: what follows the first dot of $myhostname, or "localdomain".
 *  - mynetworks: the networks of this machine's interfaces in the
 *    mynetworks_style (host, subnet or class), IPv4 first, duplicates
 *    dropped, each followed by a space as Postfix writes it.
 *
 * Reads: os.hostname(), os.networkInterfaces(). Logs nothing.
 *
 * mynetworks is an approximation of Postfix's interface walk: inet_interfaces
 * "all" and "loopback-only" are followed, an explicit list keeps only the
 * listed IP addresses (host names are not resolved). Only the proxymap
 * service's $mynetworks expansion can see it, and it never names a table.
 */
import { hostname, networkInterfaces } from "node:os";

export const DEFAULT_MYDOMAIN = "localdomain";

/** myhostname's computed default; `mydomain` is main.cf's (expanded), if set. */
export function defaultMyhostname(mydomain: string | undefined): string {
  const name = hostname();
  if (name.includes(".")) return name;
  return `${name}.${mydomain ?? DEFAULT_MYDOMAIN}`;
}

/** mydomain's computed default from the effective myhostname. */
export function defaultMydomain(myhostname: string): string {
  const dot = myhostname.indexOf(".");
  return dot < 0 ? DEFAULT_MYDOMAIN : myhostname.slice(dot + 1);
}

interface Addr {
  family: 4 | 6;
  bytes: number[];
  prefix: number;
  loopback: boolean;
}

function v4Bytes(text: string): number[] {
  return text.split(".").map((p) => Number(p));
}

function v6Bytes(text: string): number[] {
  let t = text.split("%")[0];
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    tail = v4Bytes(v4[1]);
    t = t.slice(0, -v4[1].length) + "0:0";
  }
  const [head, rest] = t.includes("::") ? t.split("::") : [t, undefined];
  const h = head ? head.split(":") : [];
  const r = rest !== undefined && rest !== "" ? rest.split(":") : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill("0"), ...r];
  const bytes: number[] = [];
  for (const g of groups) {
    const v = parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** inet_ntop(AF_INET6): longest run (2+ groups) of zero groups becomes "::". */
function v6Text(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  const hex = (g: number) => g.toString(16);
  if (bestBase < 0) return groups.map(hex).join(":");
  const left = groups.slice(0, bestBase).map(hex).join(":");
  const right = groups.slice(bestBase + bestLen).map(hex).join(":");
  return `${left}::${right}`;
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

function listProtocols(inetProtocols: string): { v4: boolean; v6: boolean } {
  const words = inetProtocols.split(/[, \t\r\n]+/).filter(Boolean);
  let v4 = false;
  let v6 = false;
  for (const w of words.map((x) => x.toLowerCase())) {
    if (w === "all") v4 = v6 = true;
    if (w === "ipv4") v4 = true;
    if (w === "ipv6") v6 = true;
  }
  return { v4, v6 };
}

function interfaceAddrs(): Addr[] {
  const v4: Addr[] = [];
  const v6: Addr[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const prefix = Number((a.cidr ?? "/0").split("/")[1]);
      if (a.family === "IPv4") v4.push({ family: 4, bytes: v4Bytes(a.address), prefix, loopback: a.internal });
      else v6.push({ family: 6, bytes: v6Bytes(a.address), prefix, loopback: a.internal });
    }
  }
  return [...v4, ...v6];
}

/** mynetworks' computed default. */
export function defaultMynetworks(style: string, inetInterfaces: string, inetProtocols: string): string {
  const protocols = listProtocols(inetProtocols);
  if (!protocols.v4 && !protocols.v6) return "";
  let addrs = interfaceAddrs().filter((a) => (a.family === 4 ? protocols.v4 : protocols.v6));
  const wanted = inetInterfaces.trim().toLowerCase();
  if (wanted === "loopback-only") {
    addrs = addrs.filter((a) => a.loopback);
  } else if (wanted !== "all") {
    const listed = new Set(
      inetInterfaces
        .split(/[ \t,]+/)
        .filter(Boolean)
        .map((h) => h.replace(/^\[|\]$/g, "").toLowerCase()),
    );
    addrs = addrs.filter((a) => listed.has(a.family === 4 ? a.bytes.join(".") : v6Text(a.bytes)));
  }
  const out: string[] = [];
  for (const a of addrs) {
    let prefix: number;
    if (a.family === 4) {
      if (style === "host") prefix = 32;
      else if (style === "class") {
        const first = a.bytes[0];
        prefix = first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : 4;
      } else prefix = a.prefix;
      out.push(`${maskBytes(a.bytes, prefix).join(".")}/${prefix}`);
    } else {
      prefix = style === "host" ? 128 : a.prefix;
      out.push(`[${v6Text(maskBytes(a.bytes, prefix))}]/${prefix}`);
    }
  }
  const unique = [...new Set(out)];
  return unique.map((x) => `${x} `).join("");
}
