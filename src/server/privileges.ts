/**
 * privileges.ts - the -c (chroot) and -u (unprivileged user) options, in
 * Postfix's order (chroot_uid): look the user up, setgid, initgroups, then
 * chroot and chdir("/"), then setuid last, so that the jail is entered with
 * root's power and nothing after it runs as root.
 *
 * Also the mail_owner checks Postfix makes at start-up (mail_params.c): the
 * user must exist, must not have user or group ID 0, and must not share its
 * user ID with another name.
 *
 * Uses process.setgid/initgroups/setuid and libc chroot(2)/getpwnam(3)
 * through bun:ffi. Reads: the passwd database. Logs: Postfix's fatal texts
 * ("unknown user: %s", "setgid(%ld): %m", "initgroups: %m", "chroot(%s): %m",
 * "chdir(/): %m", "setuid(%ld): %m"), verbose "chroot DIR user NAME".
 */
import { msg } from "../log/msg";
import { chroot, getpwnam, getpwuid, strerror } from "../sys/libc";

/** The POSIX credential calls of Node's process object (present on Linux). */
const posix = process as unknown as {
  setgid(gid: number): void;
  setuid(uid: number): void;
  initgroups(user: string, gid: number): void;
};

/** %m for a Node/Bun system error. */
function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err.errno === "number") return strerror(Math.abs(err.errno));
  return err.message;
}

/** Postfix's check_mail_owner(); mainCf is "<config dir>/main.cf". */
export function checkMailOwner(owner: string, mainCf: string): void {
  const pw = getpwnam(owner);
  if (!pw) return msg.fatal(`file ${mainCf}: parameter mail_owner: unknown user name value: ${owner}`);
  if (pw.uid === 0) msg.fatal(`file ${mainCf}: parameter mail_owner: user ${owner} has privileged user ID`);
  if (pw.gid === 0) msg.fatal(`file ${mainCf}: parameter mail_owner: user ${owner} has privileged group ID`);
  const same = getpwuid(pw.uid);
  if (same && same.name !== owner)
    msg.fatal(`file ${mainCf}: parameter mail_owner: user ${owner} has same user ID as ${same.name}`);
}

/** Enter rootDir (if any) and become userName (if any), Postfix's chroot_uid(). */
export function chrootUid(rootDir: string | undefined, userName: string | undefined): void {
  let uid = -1;
  if (userName !== undefined) {
    const pw = getpwnam(userName);
    if (!pw) return msg.fatal(`unknown user: ${userName}`);
    uid = pw.uid;
    try {
      posix.setgid(pw.gid);
    } catch (e) {
      msg.fatal(`setgid(${pw.gid}): ${errText(e)}`);
    }
    try {
      posix.initgroups(userName, pw.gid);
    } catch (e) {
      msg.fatal(`initgroups: ${errText(e)}`);
    }
  }
  if (rootDir !== undefined) {
    const e = chroot(rootDir);
    if (e) msg.fatal(`chroot(${rootDir}): ${strerror(e)}`);
    try {
      process.chdir("/");
    } catch (err) {
      msg.fatal(`chdir(/): ${errText(err)}`);
    }
  }
  if (userName !== undefined) {
    try {
      posix.setuid(uid);
    } catch (e) {
      msg.fatal(`setuid(${uid}): ${errText(e)}`);
    }
  }
  if (msg.verbose > 1) msg.info(`chroot ${rootDir ?? "(none)"} user ${userName ?? "(none)"}`);
}
