/** Headers the framework propagates from the call being served to the calls it makes. */
export const REQUEST_ID_HEADER = "x-request-id";
export const TRACEPARENT_HEADER = "traceparent";
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
