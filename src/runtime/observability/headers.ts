/** Headers the framework propagates from the call being served to the calls it makes. */
export const REQUEST_ID_HEADER = "x-request-id";
export const TRACEPARENT_HEADER = "traceparent";
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
/** Which attempt of a logical call this is (2, 3, ...; absent on the first), for the server's call log. */
export const ATTEMPT_HEADER = "tt-attempt";
