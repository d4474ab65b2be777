/**
 * A loopback TCP proxy in front of a real server, for failure scenarios over
 * real sockets (TLS passes through untouched): it can delay new connections,
 * drop them (accept, never forward), reset them (RST), reset every open one
 * mid-call, and refuse (stop listening, so connects get ECONNREFUSED).
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export type ProxyMode = "pass" | "drop" | "reset";

export interface FaultProxy {
  readonly port: number;
  readonly address: string;
  /** What happens to the next connections. */
  mode: ProxyMode;
  /** Wait before forwarding a new connection. */
  delayMs: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** RST every open connection (both sides). */
  resetAll(): void;
  /** Stop listening and drop open connections (as if the process died): connects are refused until accept(). */
  refuse(): Promise<void>;
  /** Listen again on the same port. */
  accept(): Promise<void>;
  close(): Promise<void>;
}

export async function createFaultProxy(targetPort: number): Promise<FaultProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  let server: Server;
  const state = { mode: "pass" as ProxyMode, delayMs: 0 };

  function track(socket: Socket): void {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  function onConnection(client: Socket): void {
    accepted++;
    track(client);
    if (state.mode === "reset") return void client.resetAndDestroy();
    if (state.mode === "drop") return; // held open, never forwarded: the peer sees silence
    const forward = () => {
      if (client.destroyed) return;
      const upstream = connect({ host: "127.0.0.1", port: targetPort });
      track(upstream);
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    };
    if (state.delayMs > 0) setTimeout(forward, state.delayMs);
    else forward();
  }

  function listen(port: number): Promise<void> {
    server = createServer(onConnection);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  }

  await listen(0);
  const port = (server!.address() as { port: number }).port;

  function stopListening(): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of open) s.destroy();
    return closed;
  }

  return {
    port,
    address: `127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: ProxyMode) {
      state.mode = m;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get accepted() {
      return accepted;
    },
    resetAll() {
      for (const s of open) s.resetAndDestroy();
    },
    refuse: () => stopListening(),
    accept: () => listen(port),
    async close() {
      if (server.listening) await stopListening();
      for (const s of open) s.destroy();
    },
  };
}
