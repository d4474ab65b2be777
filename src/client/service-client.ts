/**
 * createServiceClient: what every generated `create<Service>Client(options)`
 * calls. Resolves the target address, builds (or reuses) the transport and
 * returns the connect-es typed client. Security and resilience arrive as
 * interceptors and transport options, never as a different client type.
 */
import * as grpc from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import type { ServiceContract } from "../contract/types.ts";
import { createGrpcJsTransport } from "./grpc-js-transport.ts";
import { resolveAddress } from "./address.ts";

export interface ClientTls {
  /** Trust roots (PEM) the server certificate must chain to. */
  readonly ca: string | Buffer;
  /** Our certificate and key (PEM) for mTLS. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface ServiceClientOptions {
  /** "host:port"; defaults to `<SERVICE>_RPC_ADDRESS`, then `<SERVICE>_SERVICE_URL`'s host with the RPC port, then localhost. */
  readonly address?: string;
  /** TLS for the channel, or "plaintext" (explicit, local debugging only). */
  readonly tls?: ClientTls | "plaintext";
  readonly interceptors?: readonly Interceptor[];
  /** A ready transport (shared across clients, or a test double); overrides address/tls/interceptors. */
  readonly transport?: Transport;
  readonly env?: NodeJS.ProcessEnv;
}

export function createServiceClient<S extends DescService>(contract: ServiceContract<S>, options: ServiceClientOptions): Client<S> {
  if (options.transport) return createClient(contract.service, options.transport);
  const address = options.address ?? resolveAddress(contract.name, contract.defaultPort, options.env ?? process.env);
  if (options.tls === undefined) {
    throw new Error(`${contract.name} client: no TLS configuration (pass tls, or "plaintext" for local debugging)`);
  }
  const credentials =
    options.tls === "plaintext"
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
          Buffer.from(options.tls.ca),
          options.tls.key ? Buffer.from(options.tls.key) : null,
          options.tls.cert ? Buffer.from(options.tls.cert) : null,
        );
  const transport = createGrpcJsTransport({
    address,
    credentials,
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  const client = createClient(contract.service, transport);
  closers.set(client, () => transport.close());
  return client;
}

const closers = new WeakMap<object, () => void>();

/**
 * Closes the connection behind a client made by createServiceClient (a no-op
 * for clients built on a caller-supplied transport, which the caller owns).
 */
export function closeClient(client: object): void {
  closers.get(client)?.();
  closers.delete(client);
}
