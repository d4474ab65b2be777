/**
 * @tickettoken/rpc/jws: the framework's strict ES256 compact JWS, for a service
 * that issues tokens of its own (auth-service's user tokens): one signer, one
 * verifier that checks alg, typ, kid, size and the time window the same way the
 * call and context tokens are checked.
 */
export { AuthError } from "./auth/errors.ts";
export { createJwsSigner, createVerifyKeyCache, publicJwk, timeWindowProblem, verifyStrictJws, type VerifiedJws, type StrictJwsOptions } from "./auth/keys.ts";
export { generateSigningKey, thumbprintKid, type SigningJwk } from "./identity/jwk.ts";
