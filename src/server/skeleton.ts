/**
 * skeleton.ts - life of a proxymap process that serves many clients at once:
 * the equivalent of Postfix's multi_server skeleton, on Bun's event loop.
 *
 * Sockets: under master, the listening sockets inherited on fd 6, 7, ...
 * (-s count), accepted with Bun.listen({ fd }); without master (--listen), a
 * UNIX socket of our own. Every process of the service listens on the same
 * sockets and the kernel hands each connection to one of them.
 *
 * Exit (status 0), as Postfix's multi_server does:
 *   - master went away: the status channel (fd 5) reads end-of-file;
 *   - max_idle seconds without any client connected;
 *   - max_use clients served and disconnected: from then on no new client is
 *     accepted (the process reports itself taken, so master starts a fresh one
 *     when needed) and it exits when its last client is gone (Postfix keeps
 *     accepting and exits at a moment with no client; with persistent clients
 *     that moment may never come);
 *   - only with proxymap_table_change_restart = yes: the read service sees that
 *     a file table it opened changed on disk when a new client arrives ("table
 *     NAME has changed -- restarting"), and exits, dropping its clients (they
 *     reconnect), as Postfix does. By default it goes on serving: the dict
 *     layer re-opens a changed table on the next request that names it, so
 *     no client loses its connection;
 *   - SIGTERM: default action, as in Postfix.
 * Time limits, checked by a sweep timer while clients are connected:
 *   - ipc_timeout: a request that stays incomplete that long since the last
 *     byte, or output the client does not read for that long, closes the
 *     connection with a warning (Postfix 3.7's proxymap gives a whole request
 *     1 second of I/O; being event-driven, a slow client costs nobody else
 *     here, so the general IPC limit applies);
 *   - daemon_timeout: the service answers a request that waits that long on
 *     its table with RETRY; as a backstop, a client whose requests still get
 *     no reply after twice that long is disconnected with a warning; and a
 *     watchdog (watchdog.ts) ends the process if the event loop itself stops
 *     for daemon_timeout seconds.
 * Busy/idle reports to master: see busy.ts for the rule.
 * Client limit (proxymap_client_limit): with that many clients connected the
 * process stops accepting (the listening sockets stay open; the kernel hands
 * new connections to the other processes of the service) and reports itself
 * taken, so that master starts another process when every process is full;
 * it accepts again, and reports itself available unless saturated, once a
 * client leaves. (Connections accepted in the same burst as the one that
 * reached the limit are served: dropping them would cost their clients a
 * retry.) Each listening socket is served through a duplicate of its
 * descriptor, since stopping a Bun listener closes the descriptor it has.
 *
 * Reads: the service, the sockets, the status channel. Logs: verbose
 * connection events like Postfix ("connection established", "connection
 * closed", "idle timeout -- exiting", "master disconnect -- exiting"),
 * warnings on time-outs, and the table-change restart.
 */
import type { Socket, SocketHandler } from "bun";
import { msg } from "../log/msg";
import type { ProxymapService } from "../service/proxymap";
import type { ServerParams } from "./params";
import { ClientConn, type ConnOwner } from "./clientConn";
import { BusyMonitor } from "./busy";
import { MasterStatus, MASTER_STAT_AVAIL, MASTER_STAT_TAKEN } from "./masterStatus";
import { startWatchdog } from "./watchdog";
import { offloadStalled } from "../tables/offload/pool";
import { IdleCollector } from "./idleGc";
import { closeFd, dupFd, strerror } from "../sys/libc";

export interface MultiServerOptions {
  service: ProxymapService;
  params: ServerParams;
  /** Service name for log lines ("proxymap socket"). */
  serviceName: string;
  /** Exit after max_idle seconds without clients. */
  idleExit: boolean;
  /** Stop accepting after max_use disconnects, exit when the last client is gone. */
  useExit: boolean;
  /** Status channel to master (absent without master). */
  status?: MasterStatus;
  /** How to end the process; tests may replace it. */
  exit?: (code: number) => void;
}

interface Listener {
  stop(closeActive?: boolean): void;
}

export class MultiServer implements ConnOwner {
  private readonly conns = new Set<ClientConn>();
  private readonly listeners: Listener[] = [];
  /** The listening sockets as given (master's fds, or --listen's): never closed here. */
  private readonly listenFds: number[] = [];
  private clientCount = 0;
  private useCount = 0;
  private draining = false;
  /** proxymap_client_limit reached: not accepting. */
  private full = false;
  /** What master was last told: taken (true) or available. */
  private reportedTaken = false;
  private exiting = false;
  /** The first request has been handled (becameInteractive). */
  private interactive = false;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private readonly sweepMs: number;
  private readonly busy: BusyMonitor;
  private readonly idleGc = new IdleCollector();
  private watchdog: { stop(): void } | undefined;
  private readonly handler: SocketHandler<ClientConn>;

  constructor(private readonly o: MultiServerOptions) {
    const p = o.params;
    this.sweepMs = Math.min(1000, Math.max(50, (Math.min(p.ipcTimeout, p.daemonTimeout) * 1000) / 4));
    this.busy = new BusyMonitor(
      { lagMs: p.busyLagMs, cpuPercent: p.busyCpuPercent, requests: p.busyRequests },
      () => o.service.inFlight,
      () => this.updateStatus(),
      offloadStalled,
    );
    const self = this;
    this.handler = {
      open(sock) {
        self.accepted(sock);
      },
      data(sock, chunk) {
        self.received(sock.data, chunk);
      },
      drain(sock) {
        sock.data?.drained();
      },
      end(sock) {
        sock.data?.ended();
      },
      close(sock) {
        sock.data?.socketClosed();
      },
      error(sock, err) {
        if (msg.verbose) msg.info(`${self.o.serviceName} socket: ${err.message}`);
        sock.data?.destroy();
      },
    };
  }

  /** Accept on an inherited listening socket (master's fd 6, 7, ...). */
  listenFd(fd: number): void {
    this.listenFds.push(fd);
    this.acceptOn(fd);
  }

  /** Start a Bun listener on a duplicate of fd (stop() closes the listener's descriptor). */
  private acceptOn(fd: number): void {
    const copy = dupFd(fd);
    if (copy < 0) return msg.fatal(`cannot accept connections on file descriptor ${fd}: ${strerror(-copy)}`);
    try {
      const l = Bun.listen<ClientConn>({
        fd: copy,
        allowHalfOpen: true,
        socket: this.handler,
      } as unknown as Parameters<typeof Bun.listen<ClientConn>>[0]);
      this.listeners.push(l);
    } catch (e) {
      msg.fatal(`cannot accept connections on file descriptor ${fd}: ${(e as Error).message}`);
    }
  }

  /** For good: no listener will be made again. */
  private closeListenFds(): void {
    for (const fd of this.listenFds.splice(0)) closeFd(fd);
  }

  private stopAccepting(): void {
    for (const l of this.listeners) l.stop(false);
    this.listeners.length = 0;
  }

  /** Start timers and the status channel; the event loop does the rest. */
  async start(): Promise<void> {
    if (this.o.status) await this.o.status.open();
    this.armIdle();
    this.watchdog = startWatchdog(this.o.params.daemonTimeout);
  }

  /** Stop listening, drop every client and every timer, without exiting (embedding, tests). */
  shutdown(): void {
    for (const l of this.listeners) l.stop(true);
    this.listeners.length = 0;
    this.closeListenFds();
    for (const c of [...this.conns]) c.destroy();
    this.busy.stop();
    this.idleGc.stop();
    this.stopSweep();
    this.cancelIdle();
    this.watchdog?.stop();
    this.exiting = true;
  }

  get clients(): number {
    return this.clientCount;
  }

  // Events.

  private accepted(sock: Socket<ClientConn>): void {
    if (this.draining || this.exiting) {
      sock.terminate();
      return;
    }
    this.cancelIdle();
    const svc = this.o.service;
    if (!svc.writer && this.o.params.tableChangeRestart) {
      const changed = svc.changedTable();
      if (changed) {
        sock.terminate();
        msg.info(`table ${changed} has changed -- restarting`);
        this.exit(0);
        return;
      }
    }
    const conn = new ClientConn(sock, this);
    sock.data = conn;
    this.conns.add(conn);
    this.clientCount++;
    if (msg.verbose) msg.info(`connection established`);
    if (this.clientCount >= this.o.params.clientLimit && !this.full) {
      this.full = true;
      this.stopAccepting();
      if (msg.verbose) msg.info(`client limit reached (proxymap_client_limit = ${this.o.params.clientLimit}): no new clients for now`);
      this.updateStatus();
    }
    if (!this.sweepTimer) this.startSweep();
    try {
      conn.session = svc.connect(conn);
    } catch (e) {
      msg.warn(`${this.o.serviceName} socket: cannot start session: ${(e as Error).message}`);
      conn.destroy();
    }
  }

  private received(conn: ClientConn | undefined, chunk: Uint8Array): void {
    if (!conn || conn.isClosed || !conn.session) return;
    const s = conn.session;
    const waiting = s.pending > 0;
    conn.lastRead = performance.now();
    this.idleGc.moved(chunk.length);
    try {
      s.feed(chunk);
    } catch (e) {
      // Session.feed must not throw; if it does, this client alone pays.
      msg.warn(`${this.o.serviceName} socket: request handling failed: ${(e as Error).message}`);
      conn.destroy();
      return;
    }
    if (!waiting && s.pending > 0) conn.replyClock = conn.lastRead;
    this.busy.activity();
    if (!this.interactive) this.becameInteractive();
  }

  /**
   * The first request is handled: start-up is over. The executable starts
   * with JavaScriptCore's tier-up thresholds raised (build.ts: jitPolicy),
   * so that code that runs once at start-up (configuration, the first
   * open) is interpreted instead of compiled; from here on the JIT works
   * as usual for the code that serves requests.
   */
  private becameInteractive(): void {
    this.interactive = true;
    (Bun as unknown as { unsafe: { setJITPolicy?(scale: number): void } }).unsafe.setJITPolicy?.(1);
  }

  moved(bytes: number): void {
    this.idleGc.moved(bytes);
  }

  connClosed(conn: ClientConn): void {
    if (!this.conns.delete(conn)) return;
    this.clientCount--;
    if (this.useCount < 0x7fffffff) this.useCount++;
    if (msg.verbose) msg.info(`connection closed`);
    if (this.clientCount === 0) {
      this.stopSweep();
      this.armIdle();
    }
    if (this.o.useExit && !this.draining && this.useCount >= this.o.params.maxUse) this.drain();
    if (this.draining && this.clientCount === 0) this.exit(0);
    if (this.full && !this.draining && !this.exiting && this.clientCount < this.o.params.clientLimit) {
      this.full = false;
      for (const fd of this.listenFds) this.acceptOn(fd);
      if (msg.verbose) msg.info(`below the client limit: accepting again`);
      this.updateStatus();
    }
  }

  /** master went away (status channel end-of-file). */
  masterGone(): void {
    if (msg.verbose) msg.info("master disconnect -- exiting");
    this.exit(0);
  }

  // Limits.

  private drain(): void {
    this.draining = true;
    this.stopAccepting();
    this.closeListenFds();
    this.busy.drain();
    if (msg.verbose) msg.info(`use limit reached: no new clients`);
  }

  private armIdle(): void {
    const t = this.o.params.maxIdle;
    if (!this.o.idleExit || t <= 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.clientCount > 0) return;
      if (msg.verbose) msg.info("idle timeout -- exiting");
      this.exit(0);
    }, t * 1000);
  }

  private cancelIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private startSweep(): void {
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Enforce ipc_timeout and daemon_timeout on every connection. */
  private sweep(): void {
    const now = performance.now();
    const ipc = this.o.params.ipcTimeout * 1000;
    const daemon = this.o.params.daemonTimeout * 2000; // backstop behind the service's own limit
    const name = this.o.serviceName;
    for (const c of this.conns) {
      const s = c.session;
      if (!s) continue;
      let why: string | undefined;
      if (s.partial && now - c.lastRead > ipc) why = `timeout reading a request from ${name} socket`;
      else if (c.backlog > 0 && now - c.lastDrain > ipc) why = `timeout writing a reply to ${name} socket`;
      else if (s.pending > 0 && now - c.replyClock > daemon)
        why = `request on ${name} socket not answered within twice daemon_timeout (${2 * this.o.params.daemonTimeout}s)`;
      if (why) {
        msg.warn(`${why}: closing the connection`);
        c.destroy();
      }
    }
  }

  /** Tell master "taken" while saturated (busy.ts), at the client limit or draining; else "available". */
  private updateStatus(): void {
    const busy = this.busy.isBusy || this.full;
    if (busy === this.reportedTaken) return;
    this.reportedTaken = busy;
    const st = this.o.status;
    if (!st) return;
    if (!st.notify(busy ? MASTER_STAT_TAKEN : MASTER_STAT_AVAIL) && !busy) {
      // Postfix: a failed "available" report means master is gone.
      this.masterGone();
    }
  }

  private exit(code: number): void {
    if (this.exiting) return;
    this.exiting = true;
    this.busy.stop();
    this.idleGc.stop();
    this.stopSweep();
    this.cancelIdle();
    this.watchdog?.stop();
    (this.o.exit ?? ((c: number) => process.exit(c)))(code);
  }
}
