/**
 * Raw Connect-protocol unary calls over mTLS, HTTP/2 (node:http2) or
 * HTTP/1.1 (node:https), with exactly the headers and body a test gives:
 * what curl or an attacker sends, no client library in between. The outcome
 * is the HTTP status, the Connect error (code, message) if any, and the body.
 */
import * as http2 from "node:http2";
import * as https from "node:https";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

export interface MtlsPeer {
  readonly port: number;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ConnectOutcome {
  readonly status: number;
  /** 0 for a 200 answer, else the Connect error's code (Code.Unknown if the body is not a Connect error). */
  readonly code: number;
  readonly message: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface ConnectRequest {
  readonly path: string;
  /** Header fields in order; a name may repeat (HTTP/1.1 sends each; HTTP/2 refuses repeated authorization). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;
  /** Default application/proto. */
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

function outcome(status: number, headers: ConnectOutcome["headers"], body: Buffer): ConnectOutcome {
  if (status === 200) return { status, code: 0, message: "", body, headers };
  try {
    const err = JSON.parse(body.toString("utf8")) as { code?: string; message?: string };
    return { status, code: codeFromString(err.code ?? "") ?? Code.Unknown, message: err.message ?? "", body, headers };
  } catch {
    return { status, code: Code.Unknown, message: body.toString("utf8").slice(0, 200), body, headers };
  }
}

/** An HTTP/2 session over mTLS to 127.0.0.1 (session errors ignored: tests read each stream's outcome). */
export function mtlsSession(peer: MtlsPeer): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${peer.port}`, {
    ca: peer.ca,
    cert: peer.cert,
    key: peer.key,
    checkServerIdentity: () => undefined,
  });
  session.on("error", () => {});
  return session;
}

/** The same, once the server's SETTINGS arrived: the server accepted the connection. */
export function mtlsSessionReady(peer: MtlsPeer): Promise<http2.ClientHttp2Session> {
  const session = mtlsSession(peer);
  return new Promise((resolve, reject) => {
    session.once("remoteSettings", () => resolve(session));
    session.once("close", () => reject(new Error("session closed before SETTINGS")));
  });
}

/** One HTTP/2 connection for many calls (close() it). */
export function connectH2(peer: MtlsPeer) {
  const session = mtlsSession(peer);
  return {
    session,
    call(req: ConnectRequest): Promise<ConnectOutcome> {
      return new Promise((resolve, reject) => {
        const headers: http2.OutgoingHttpHeaders = {
          ":method": "POST",
          ":path": req.path,
          "content-type": req.contentType ?? "application/proto",
        };
        for (const [k, v] of req.headers ?? []) {
          const prev = headers[k];
          headers[k] = prev === undefined ? v : ([] as string[]).concat(prev as string | string[], v);
        }
        const stream = session.request(headers);
        const chunks: Buffer[] = [];
        let status = 0;
        let resHeaders: ConnectOutcome["headers"] = {};
        const timer = setTimeout(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(new Error(`no answer on ${req.path} within ${req.timeoutMs ?? 5000} ms`));
        }, req.timeoutMs ?? 5000);
        stream.on("response", (h) => {
          status = Number(h[":status"]);
          resHeaders = h;
        });
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          clearTimeout(timer);
          resolve(outcome(status, resHeaders, Buffer.concat(chunks)));
        });
        stream.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
        stream.end(Buffer.from(req.body));
      });
    },
    close(): void {
      session.close();
    },
  };
}

/** One HTTP/1.1 request on its own connection. */
export function connectH1(peer: MtlsPeer, req: ConnectRequest): Promise<ConnectOutcome> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { "content-type": req.contentType ?? "application/proto" };
    for (const [k, v] of req.headers ?? []) {
      const prev = headers[k];
      headers[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
    }
    const r = https.request(
      {
        host: "127.0.0.1",
        port: peer.port,
        method: "POST",
        path: req.path,
        ca: peer.ca,
        cert: peer.cert,
        key: peer.key,
        checkServerIdentity: () => undefined,
        agent: false,
        headers,
        timeout: req.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(outcome(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`no answer on ${req.path}`)));
    r.on("error", reject);
    r.end(Buffer.from(req.body));
  });
}
