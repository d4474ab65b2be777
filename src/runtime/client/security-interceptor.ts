/**
 * Client side of the secure call path: every attempt gets a fresh call token
 * (aud = the target's SPIFFE ID, mth = the method), and the context token of
 * the call being served (or one set explicitly by the edge) travels unchanged.
 * Innermost in the chain, so a retry never reuses a token.
 */
import type { Interceptor } from "@connectrpc/connect";
import { createCallTokenMinter, type CallTokenMinter } from "../auth/call-token.ts";
import { AUTHORIZATION_HEADER, CONTEXT_TOKEN_HEADER } from "../auth/call-context.ts";
import type { MaterialSource } from "../identity/material.ts";
import { currentCallScope } from "../observability/call-scope.ts";
import { directCredentialsKey, passCallCredentials } from "../wire/call-credentials.ts";

/**
 * Mints with the JWT key that is due now (a rotated-in key signs only once it
 * has been published long enough for every verifier to know it), rebuilding
 * the minter when that key changes.
 */
export function rotatingMinter(material: MaterialSource): CallTokenMinter {
  let kid: string | undefined;
  let minter: CallTokenMinter | undefined;
  return {
    mint(input) {
      const { workload } = material.current();
      const key = workload.jwt.signingKey();
      if (!minter || key.kid !== kid) {
        kid = key.kid;
        minter = createCallTokenMinter({ identity: workload.spiffeId, key });
      }
      return minter.mint(input);
    },
  };
}

export function callTokenInterceptor(minter: CallTokenMinter, audience: string): Interceptor {
  return (next) => async (req) => {
    const explicit = req.header.get(CONTEXT_TOKEN_HEADER);
    const contextToken = explicit ?? currentCallScope()?.contextToken;
    const token = await minter.mint({ audience, method: `/${req.service.typeName}/${req.method.name}`, contextToken });
    const fromScope = explicit === null ? contextToken : undefined;
    if (req.contextValues.get(directCredentialsKey)) {
      // Our grpc-js transport puts them into its metadata itself (wire/call-credentials.ts: no `Headers` round trip).
      passCallCredentials(req, { authorization: `Bearer ${token}`, contextToken: fromScope });
    } else {
      if (fromScope !== undefined) req.header.set(CONTEXT_TOKEN_HEADER, fromScope);
      req.header.set(AUTHORIZATION_HEADER, `Bearer ${token}`);
    }
    return next(req);
  };
}
