/**
 * smtp.ts - a minimal SMTP client for end-to-end tests that drive a real
 * Postfix smtpd or postscreen: one session, the reply (all lines) to each
 * command (smtpSession), or just the greeting (smtpGreetAndQuit).
 *
 * Logs nothing; a session that gets no reply within 20 s yields
 * "(no reply: ...)" for that command instead of throwing.
 */
import { connect, createConnection, createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (for an smtpd listener of the test's own). */
export async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof a === "object" && a ? a.port : 0;
}

/**
 * One SMTP session from local address `from` to 127.0.0.1:port: the reply
 * (all lines) to each command, after the 220 greeting. Only the greeting,
 * if it is not a 220.
 */
export async function smtpSession(port: number, from: string, commands: string[]): Promise<string[]> {
  const sock = createConnection({ host: "127.0.0.1", port, localAddress: from });
  let buf = "";
  const waiters: (() => void)[] = [];
  sock.on("data", (d) => {
    buf += d.toString("latin1");
    waiters.splice(0).forEach((w) => w());
  });
  sock.on("error", () => waiters.splice(0).forEach((w) => w()));
  // A reply ends with a line "DDD text" (no dash after the code).
  const reply = async (): Promise<string> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buf);
      if (m) {
        buf = buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (Date.now() > deadline || sock.destroyed) return `(no reply: ${JSON.stringify(buf)})`;
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const out: string[] = [];
  try {
    const greeting = await reply();
    if (!greeting.startsWith("220")) return [greeting];
    for (const c of commands) {
      sock.write(c + "\r\n");
      out.push(await reply());
    }
  } finally {
    sock.end();
  }
  return out;
}

/** The last line of a (multi-line) reply, without its CR. */
export const lastLine = (r: string): string => r.split("\n").at(-1)!.replace(/\r$/, "");

/**
 * Connect, wait for the 220 greeting (postscreen hands the client over to
 * smtpd), QUIT. Resolves with everything the server sent (and "QUIT-SENT"
 * where the client quit), when the server closes or after timeoutMs.
 */
export function smtpGreetAndQuit(port: number, timeoutMs = 15000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    let got = "";
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, timeoutMs);
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (/^220 /m.test(got) && !got.includes("QUIT-SENT")) {
        s.write("QUIT\r\n");
        got += "QUIT-SENT\n";
      }
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
