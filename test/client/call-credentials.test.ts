/**
 * The call-token interceptor's two ways of handing over the per-attempt
 * credentials: straight to a transport that takes them (our grpc-js transport
 * flags itself in the context values), else in the request headers as before
 * (any other transport). Real servers accepting what the grpc-js transport
 * sends are covered by test/security and test/e2e.
 */
import { describe, expect, it } from "vitest";
import { createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { callTokenInterceptor } from "../../src/runtime/client/security-interceptor.ts";
import { directCredentialsKey, takeCallCredentials } from "../../src/runtime/wire/call-credentials.ts";
import { runInCallScope } from "../../src/runtime/observability/call-scope.ts";
import type { CallTokenMinter, MintCallTokenInput } from "../../src/runtime/auth/call-token.ts";
import { TicketService } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

const minted: MintCallTokenInput[] = [];
const minter: CallTokenMinter = {
  mint(input) {
    minted.push(input);
    return Promise.resolve(`token-${minted.length}`);
  },
};

function request(direct: boolean, header: Headers = new Headers()): UnaryRequest {
  const contextValues = createContextValues();
  if (direct) contextValues.set(directCredentialsKey, true);
  return { header, contextValues, service: TicketService, method: TicketService.method.getTicketStatus } as unknown as UnaryRequest;
}

/** Runs the interceptor and returns the request as the transport received it. */
async function intercept(req: UnaryRequest): Promise<UnaryRequest> {
  let seen: UnaryRequest | undefined;
  await callTokenInterceptor(minter, "spiffe://tickettoken.internal/ns/prod/sa/ticket-service")((r) => {
    seen = r as UnaryRequest;
    return Promise.resolve({} as UnaryResponse);
  })(req);
  return seen!;
}

const scope = (contextToken: string) => ({ contextToken, deadline: undefined, requestId: "r", traceparent: undefined, signal: new AbortController().signal, tenantId: undefined, userId: undefined });

describe("call credentials hand-over", () => {
  it("puts them in the headers for a transport that does not take them directly", async () => {
    const seen = await runInCallScope(scope("ctx-from-scope"), () => intercept(request(false)));
    expect(seen.header.get("authorization")).toMatch(/^Bearer token-\d+$/);
    expect(seen.header.get("tt-context")).toBe("ctx-from-scope");
    expect(takeCallCredentials(seen)).toBeUndefined();
  });

  it("passes them to the flagged transport once, keyed by the request, and leaves the headers alone", async () => {
    const seen = await runInCallScope(scope("ctx-from-scope"), () => intercept(request(true)));
    expect(seen.header.has("authorization")).toBe(false);
    expect(seen.header.has("tt-context")).toBe(false);
    const credentials = takeCallCredentials(seen);
    expect(credentials?.authorization).toMatch(/^Bearer token-\d+$/);
    expect(credentials?.contextToken).toBe("ctx-from-scope");
    expect(minted.at(-1)?.contextToken).toBe("ctx-from-scope");
    expect(takeCallCredentials(seen)).toBeUndefined();
  });

  it("keeps an explicit context token in the headers and binds the call token to it", async () => {
    const seen = await intercept(request(true, new Headers({ "tt-context": "explicit" })));
    expect(seen.header.get("tt-context")).toBe("explicit");
    expect(takeCallCredentials(seen)?.contextToken).toBeUndefined();
    expect(minted.at(-1)?.contextToken).toBe("explicit");
  });

  it("mints a fresh token for every attempt on the same request", async () => {
    const req = request(true);
    const first = takeCallCredentials(await intercept(req))!.authorization;
    const second = takeCallCredentials(await intercept(req))!.authorization;
    expect(second).not.toBe(first);
  });
});
