/**
 * Turns a service implementation (connect-es ServiceImpl shape) into the
 * framework's per-method handler chain. Built once at start-up.
 */
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { MethodContract, ServiceContract } from "../contract/types.ts";
import { methodContract } from "../contract/types.ts";
import { ensureMessage } from "../wire/codec.ts";
import { chainInterceptors, type CallResult, type ServerCall, type ServerInterceptor, type ServerNext } from "../contract/call.ts";

export interface Route {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly contract: MethodContract;
  readonly handle: ServerNext;
}

/** A service to serve: its contract (generated) and its handlers. */
export interface ServiceRegistration<S extends DescService = DescService> {
  readonly contract: ServiceContract<S>;
  readonly impl: Partial<ServiceImpl<S>>;
}

/** Pairs a generated contract with its implementation, type-checked. */
export function implement<S extends DescService>(
  contract: ServiceContract<S>,
  impl: Partial<ServiceImpl<S>>,
): ServiceRegistration<S> {
  return { contract, impl };
}

type AnyImpl = (req: Message | AsyncIterable<Message>, ctx: ServerCall["context"]) => unknown;

function invokeHandler(method: DescMethod, impl: AnyImpl | undefined): ServerNext {
  if (impl === undefined) {
    const unimplemented = new ConnectError(`${method.parent.typeName}.${method.name} is not implemented`, Code.Unimplemented);
    return () => Promise.reject(unimplemented);
  }
  switch (method.methodKind) {
    case "unary":
      return async (call) => ({ kind: "unary", message: ensureMessage(method.output, await impl(call.request as Message, call.context)) });
    case "server_streaming":
      return async (call) => ({
        kind: "stream",
        messages: mapIterable(impl(call.request as Message, call.context) as AsyncIterable<unknown>, (m) => ensureMessage(method.output, m)),
      });
    case "bidi_streaming":
      return async (call) => ({
        kind: "stream",
        messages: mapIterable(impl(call.requests ?? emptyIterable(), call.context) as AsyncIterable<unknown>, (m) => ensureMessage(method.output, m)),
      });
    default:
      // No client-streaming contract exists; refuse loudly rather than misbehave.
      throw new Error(`${method.parent.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
  }
}

async function* emptyIterable(): AsyncIterable<Message> {}

async function* mapIterable<T, U>(it: AsyncIterable<T>, fn: (t: T) => U): AsyncIterable<U> {
  for await (const x of it) yield fn(x);
}

export function buildRoutes(services: readonly ServiceRegistration[], interceptors: readonly ServerInterceptor[]): Route[] {
  const routes: Route[] = [];
  const seen = new Set<string>();
  for (const { contract, impl } of services) {
    if (seen.has(contract.service.typeName)) throw new Error(`service ${contract.service.typeName} registered twice`);
    seen.add(contract.service.typeName);
    for (const method of contract.service.methods) {
      const handler = (impl as Record<string, AnyImpl | undefined>)[method.localName];
      routes.push({
        service: contract.service,
        method,
        contract: methodContract(contract, method),
        handle: chainInterceptors(invokeHandler(method, handler?.bind(impl)), interceptors),
      });
    }
  }
  return routes;
}

export type { CallResult };
