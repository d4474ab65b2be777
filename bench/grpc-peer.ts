/**
 * Configurations (a) and (b): a plain grpc-js server and client over mTLS,
 * as a team would write them, with optional interceptors.
 */
import * as grpc from "@grpc/grpc-js";
import type { IdentityMaterial } from "../src/runtime/identity/material.ts";
import type { GetTicketStatusRequest, ListTicketsByEventRequest } from "../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { grpcDefinition, statusOf, ticketsOf, uriSan } from "./shared.ts";

export async function startGrpcPeer(m: IdentityMaterial, interceptors: grpc.ServerInterceptor[]): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new grpc.Server({ interceptors });
  server.addService(grpcDefinition as unknown as grpc.ServiceDefinition, {
    getTicketStatus: ((call: grpc.ServerUnaryCall<GetTicketStatusRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, statusOf(call.request))) as grpc.UntypedHandleCall,
    listTicketsByEvent: (async (call: grpc.ServerWritableStream<ListTicketsByEventRequest, unknown>) => {
      // Respect flow control: wait for drain when the write buffer is full.
      for await (const item of ticketsOf(call.request)) if (!call.write(item)) await new Promise((r) => call.once("drain", r));
      call.end();
    }) as grpc.UntypedHandleCall,
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(m.bundle.caPem), [{ private_key: Buffer.from(m.workload.keyPem), cert_chain: Buffer.from(m.workload.certPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        // Bounded: a call still open after a second is cut.
        const t = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => (clearTimeout(t), resolve()));
      }),
  };
}

export interface GrpcPeerClient {
  getTicketStatus(req: unknown, cb: (err: grpc.ServiceError | null, res?: unknown) => void): void;
  listTicketsByEvent(req: unknown): NodeJS.EventEmitter;
  waitForReady(deadline: grpc.Deadline, callback: (error?: Error) => void): void;
  close(): void;
}

/** One channel (one HTTP/2 connection); the server must present `expectedServer` as its SPIFFE URI SAN. */
export function grpcPeerClient(
  m: IdentityMaterial,
  address: string,
  expectedServer: string,
  serverName: string,
  interceptors: grpc.Interceptor[],
  /** (e) wraps the credentials to learn each connection's TLS exporter key. */
  wrap: (creds: grpc.ChannelCredentials) => grpc.ChannelCredentials = (c) => c,
): GrpcPeerClient {
  const creds = grpc.credentials.createSsl(Buffer.from(m.bundle.caPem), Buffer.from(m.workload.keyPem), Buffer.from(m.workload.certPem), {
    checkServerIdentity: (_host, cert) => (uriSan(cert.subjectaltname) === expectedServer ? undefined : new Error("unexpected server identity")),
  });
  const Ctor = grpc.makeGenericClientConstructor(grpcDefinition as unknown as grpc.ServiceDefinition, "TicketService");
  return new Ctor(address, wrap(creds), { interceptors, "grpc.ssl_target_name_override": serverName }) as unknown as GrpcPeerClient;
}
