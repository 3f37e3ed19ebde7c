/**
 * smtp.ts - the smallest SMTP client the end-to-end tests need: connect,
 * wait for the 220 greeting (postscreen hands the client over to smtpd),
 * QUIT. Resolves with everything the server sent (and "QUIT-SENT" where
 * the client quit), when the server closes or after timeoutMs.
 */
import { connect } from "node:net";

export function smtpSession(port: number, timeoutMs = 15000): Promise<string> {
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
