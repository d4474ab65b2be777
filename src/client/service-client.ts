/**
 * createServiceClient: what every generated `create<Service>Client(options)`
 * calls. Resolves the target address, builds the mTLS transport with the
 * framework's client interceptors (context propagation, your interceptors,
 * then a fresh call token per attempt) and returns the connect-es typed
 * client. Resilience policies slot in as interceptors, never a new client type.
 */
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import type { ServiceContract } from "../contract/types.ts";
import type { MaterialSource } from "../identity/material.ts";
import { workloadSpiffeId } from "../identity/spiffe-id.ts";
import { createGrpcJsTransport } from "./grpc-js-transport.ts";
import { resolveAddress } from "./address.ts";
import { mtlsChannelCredentials } from "./tls-credentials.ts";
import { callTokenInterceptor, rotatingMinter } from "./security-interceptor.ts";
import { contextPropagationInterceptor } from "./context-interceptor.ts";

export interface ServiceClientOptions {
  /** Our own identity material: certificate, key, JWT signing key, trust bundle. */
  readonly identity: MaterialSource;
  /** "host:port"; defaults to `<SERVICE>_RPC_ADDRESS`, then `<SERVICE>_SERVICE_URL`'s host with the RPC port, then localhost. */
  readonly address?: string;
  /** Run after context propagation and before the call token is minted (resilience policies go here). */
  readonly interceptors?: readonly Interceptor[];
  readonly env?: NodeJS.ProcessEnv;
}

export function createServiceClient<S extends DescService>(contract: ServiceContract<S>, options: ServiceClientOptions): Client<S> {
  const transport = createServiceTransport(contract, options);
  const client = createClient(contract.service, transport);
  closers.set(client, () => transport.close());
  return client;
}

/** The transport behind a generated client, for callers that share one across clients. */
export function createServiceTransport(contract: ServiceContract, options: ServiceClientOptions): Transport & { close(): void } {
  const { identity } = options;
  if (!identity) throw new Error(`${contract.name} client: no identity material (certificate, key, JWT key, trust bundle)`);
  const address = options.address ?? resolveAddress(contract.name, contract.defaultPort, options.env ?? process.env);
  const server = workloadSpiffeId(contract.name, identity.current().workload.env, identity.current().bundle.trustDomain);
  const tls = mtlsChannelCredentials(identity, server);
  const transport = createGrpcJsTransport({
    address,
    credentials: tls.credentials,
    // SNI names the service (an IP is not a valid server name); identity is checked by SPIFFE ID anyway.
    channelOptions: { "grpc.ssl_target_name_override": contract.name },
    interceptors: [contextPropagationInterceptor(), ...(options.interceptors ?? []), callTokenInterceptor(rotatingMinter(identity), server)],
  });
  return {
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close() {
      transport.close();
      tls.dispose();
    },
  };
}

const closers = new WeakMap<object, () => void>();

/** Closes the connection behind a client made by createServiceClient. */
export function closeClient(client: object): void {
  closers.get(client)?.();
  closers.delete(client);
}
