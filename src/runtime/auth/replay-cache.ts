/**
 * Remembers call-token `jti`s until their tokens can no longer be accepted,
 * so a captured token cannot be played twice against this instance.
 *
 * Why it cannot lock anyone out: the verifier accepts a token only within a
 * short freshness window after its `iat` (call-token.ts), so a jti needs
 * remembering for seconds; and every peer identity has its own storage and
 * its own quota, so a peer over its quota is refused alone (RESOURCE_EXHAUSTED)
 * and never takes capacity from another.
 *
 * Storage, per peer: "generations" keyed by keepUntil (one per
 * `generationSeconds` of keepUntil). Each generation is an append-only
 * open-addressing hash set of 16-byte jtis (the 22-char base64url jti decoded
 * to 4 uint32 words) in one Uint32Array; a whole generation is dropped once
 * its last keepUntil has passed. No deletions inside a table, so linear
 * probing stays simple and exact; no timers, so nothing keeps the process
 * alive; eviction is lazy, inside `check`.
 *
 * Memory bound (defaults, see REPLAY_CACHE_DEFAULTS): a generation holds at
 * most `maxPerGeneration` jtis in a table of at most 2 x that many 16-byte
 * slots (load <= 1/2); at most ceil(maxLiveSeconds / generationSeconds) + 1
 * generations are live per peer; at most `maxPeers` peers. So
 *   bytes <= maxPeers x generationsPerPeer x 2 x maxPerGeneration x 16.
 * `stats()` reports the bytes actually held by the tables.
 */
import { randomInt } from "node:crypto";

/** fresh: recorded; replayed: seen before; over_quota: this peer's quota is used up (only this peer is refused). */
export type ReplayVerdict = "fresh" | "replayed" | "over_quota";

/**
 * What the call-token verifier needs. `check` may be async so a shared Redis
 * backend (e.g. SET <peer>:<jti> NX EXAT keepUntil, plus a per-peer counter)
 * can implement it across instances; the in-memory one answers synchronously.
 */
export interface ReplayCache {
  /**
   * Records `jti` for `peer` (the verified mTLS identity) if unseen.
   * `keepUntil` is the epoch second from which the verifier rejects the token
   * anyway (see replayKeepUntil in call-token.ts).
   */
  check(peer: string, jti: string, keepUntil: number): ReplayVerdict | Promise<ReplayVerdict>;
}

export interface ReplayCacheStats {
  /** Live jtis over all peers. */
  entries: number;
  /** Bytes held by the hash tables (the jtis themselves; fixed per-peer bookkeeping is extra and small). */
  bytes: number;
  peers: number;
}

export interface MemoryReplayCache extends ReplayCache {
  check(peer: string, jti: string, keepUntil: number): ReplayVerdict;
  /** Live entries of one peer, or of all peers (expired generations are dropped first). */
  size(peer?: string): number;
  stats(): ReplayCacheStats;
  /** The configured worst case: what `stats().bytes` can never exceed. */
  readonly maxBytes: number;
}

export interface ReplayCacheOptions {
  /** Quota: new jtis one peer may add per generation (power of two). */
  maxPerGeneration?: number;
  /** Width of a generation, in seconds of keepUntil. */
  generationSeconds?: number;
  /** Longest a jti can need keeping after it is first seen: freshness window + 2 x clock skew. */
  maxLiveSeconds?: number;
  /** Distinct peer identities held at once; a further peer is answered over_quota. */
  maxPeers?: number;
  /** Clock in epoch milliseconds (tests inject one). */
  now?: () => number;
}

/** Bytes one jti takes in a table slot. */
export const REPLAY_ENTRY_BYTES = 16;

/**
 * Defaults sized for one busy peer at 20,000 calls/s: a 5 s generation takes
 * 131,072 jtis (26,214 calls/s sustained per peer). Live: 25 s (15 s window
 * + 2 x 5 s skew) -> 6 generations -> 786,432 jtis and 24 MiB per peer at
 * most; 32 peers (the platform has 22 workload identities) -> 768 MiB hard
 * ceiling, reached only if every peer sustains 26k calls/s at once. Memory
 * follows real traffic: tables start at 16 KiB and double as they fill.
 */
export const REPLAY_CACHE_DEFAULTS = {
  maxPerGeneration: 131_072,
  generationSeconds: 5,
  maxLiveSeconds: 25,
  maxPeers: 32,
} as const;

const MIN_SLOTS = 1024;

/** One generation's append-only hash set of 128-bit jtis. */
interface Generation {
  /** Index: floor(keepUntil / generationSeconds). */
  readonly index: number;
  /** 4 words per slot; an all-zero slot is empty. */
  words: Uint32Array;
  mask: number;
  count: number;
  /** The all-zero jti (valid, if unlikely) cannot live in a slot, so it is a flag. */
  hasZero: boolean;
}

interface PeerState {
  /** Live generations, few (<= generationsPerPeer); scanned linearly. */
  generations: Generation[];
  /** Sum of counts. */
  count: number;
}

// base64url alphabet -> 6-bit value; 255 = not in the alphabet.
const B64URL_VALUE = new Uint8Array(128).fill(255);
for (const [i, ch] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"].entries()) {
  B64URL_VALUE[ch.charCodeAt(0)] = i;
}

/**
 * Decodes a 22-char base64url jti (128 bits; the last char carries 2 bits,
 * the rest must be 0) into `out[0..3]` without allocating. False if malformed.
 */
function decodeJti(jti: string, out: Uint32Array): boolean {
  if (jti.length !== 22) return false;
  let word = 0;
  let bits = 0; // bits in `word` so far
  let w = 0;
  for (let i = 0; i < 22; i++) {
    const code = jti.charCodeAt(i);
    const v = code < 128 ? B64URL_VALUE[code]! : 255;
    if (v === 255) return false;
    if (i === 21) {
      if ((v & 0b1111) !== 0) return false; // non-canonical: 4 unused low bits set
      out[3] = ((word << 2) | (v >>> 4)) >>> 0;
      return true;
    }
    if (bits + 6 <= 32) {
      word = (word << 6) | v;
      bits += 6;
      if (bits === 32) {
        out[w++] = word >>> 0;
        word = 0;
        bits = 0;
      }
    } else {
      const take = 32 - bits; // high bits of v that complete this word
      out[w++] = ((word << take) | (v >>> (6 - take))) >>> 0;
      word = v & ((1 << (6 - take)) - 1);
      bits = 6 - take;
    }
  }
  return false; // unreachable: i === 21 returns
}

export function createReplayCache({
  maxPerGeneration = REPLAY_CACHE_DEFAULTS.maxPerGeneration,
  generationSeconds = REPLAY_CACHE_DEFAULTS.generationSeconds,
  maxLiveSeconds = REPLAY_CACHE_DEFAULTS.maxLiveSeconds,
  maxPeers = REPLAY_CACHE_DEFAULTS.maxPeers,
  now = Date.now,
}: ReplayCacheOptions = {}): MemoryReplayCache {
  if (!(Number.isSafeInteger(maxPerGeneration) && maxPerGeneration > 0 && (maxPerGeneration & (maxPerGeneration - 1)) === 0)) {
    throw new RangeError("maxPerGeneration must be a positive power of two");
  }
  if (!(Number.isSafeInteger(generationSeconds) && generationSeconds > 0)) throw new RangeError("generationSeconds must be a positive integer");
  if (!(maxLiveSeconds > 0)) throw new RangeError("maxLiveSeconds must be positive");
  if (!(Number.isSafeInteger(maxPeers) && maxPeers > 0)) throw new RangeError("maxPeers must be a positive integer");

  const maxSlots = maxPerGeneration * 2;
  const initialSlots = Math.min(MIN_SLOTS, maxSlots);
  const generationsPerPeer = Math.ceil(maxLiveSeconds / generationSeconds) + 1;
  const maxBytes = maxPeers * generationsPerPeer * maxSlots * REPLAY_ENTRY_BYTES;
  const peers = new Map<string, PeerState>();
  // Keyed mixing, so a peer cannot pick jtis that all land in one probe chain.
  const seed = randomInt(0, 2 ** 32) >>> 0;
  const key = new Uint32Array(4); // scratch: the decoded jti of the current check
  // Earliest end of any live generation: the common call compares one number.
  let nextExpiry = Infinity;

  function newGeneration(index: number): Generation {
    return { index, words: new Uint32Array(initialSlots * 4), mask: initialSlots - 1, count: 0, hasZero: false };
  }

  /** The slot holding `key` (>= 0), or ~slot of the empty slot where it would go (< 0). Not for the zero key. */
  function find(words: Uint32Array, mask: number): number {
    const k0 = key[0]!, k1 = key[1]!, k2 = key[2]!, k3 = key[3]!;
    let h = (k0 ^ seed) >>> 0;
    h = Math.imul(h ^ k1, 0x9e3779b1);
    h = Math.imul(h ^ k2, 0x85ebca6b);
    h = Math.imul(h ^ k3, 0xc2b2ae35);
    let slot = (h ^ (h >>> 15)) & mask;
    // Load <= 1/2, so an empty slot always ends the probe.
    for (;;) {
      const o = slot * 4;
      const w0 = words[o]!, w1 = words[o + 1]!, w2 = words[o + 2]!, w3 = words[o + 3]!;
      if (w0 === k0 && w1 === k1 && w2 === k2 && w3 === k3) return slot;
      if ((w0 | w1 | w2 | w3) === 0) return ~slot;
      slot = (slot + 1) & mask;
    }
  }

  function has(g: Generation, zero: boolean): boolean {
    return zero ? g.hasZero : find(g.words, g.mask) >= 0;
  }

  function add(g: Generation, zero: boolean): void {
    if (zero) g.hasZero = true;
    else {
      if ((g.count + 1) * 2 > g.mask + 1) grow(g);
      g.words.set(key, ~find(g.words, g.mask) * 4);
    }
    g.count++;
  }

  /** Doubles a table (amortised O(1) per insert); never beyond maxSlots because count <= maxPerGeneration. */
  function grow(g: Generation): void {
    const old = g.words;
    const saved = Uint32Array.from(key);
    g.words = new Uint32Array(old.length * 2);
    g.mask = old.length / 2 - 1;
    for (let o = 0; o < old.length; o += 4) {
      if ((old[o]! | old[o + 1]! | old[o + 2]! | old[o + 3]!) === 0) continue;
      key.set(old.subarray(o, o + 4));
      g.words.set(key, ~find(g.words, g.mask) * 4);
    }
    key.set(saved);
  }

  function evict(nowSeconds: number): void {
    if (nowSeconds < nextExpiry) return;
    nextExpiry = Infinity;
    for (const [peer, state] of peers) {
      // Generation g holds keepUntil in [g*s, (g+1)*s): all are past once now >= (g+1)*s.
      const live = state.generations.filter((g) => (g.index + 1) * generationSeconds > nowSeconds);
      if (live.length === 0) {
        peers.delete(peer);
        continue;
      }
      if (live.length !== state.generations.length) {
        state.generations = live;
        state.count = live.reduce((n, g) => n + g.count, 0);
      }
      for (const g of live) nextExpiry = Math.min(nextExpiry, (g.index + 1) * generationSeconds);
    }
  }

  function tableBytes(state: PeerState): number {
    let bytes = 0;
    for (const g of state.generations) bytes += g.words.byteLength;
    return bytes;
  }

  return {
    maxBytes,
    check(peer, jti, keepUntil) {
      if (typeof peer !== "string" || peer.length === 0) throw new TypeError("peer must be a non-empty string");
      if (typeof jti !== "string" || !decodeJti(jti, key)) throw new TypeError("jti must be 22 base64url chars (128 bits)");
      if (!Number.isFinite(keepUntil)) throw new TypeError("keepUntil must be a finite number");
      const nowSeconds = now() / 1000;
      // The memory bound rests on this: no entry outlives maxLiveSeconds.
      if (keepUntil > nowSeconds + maxLiveSeconds) throw new RangeError("keepUntil is further ahead than maxLiveSeconds");
      evict(nowSeconds);
      const zero = (key[0]! | key[1]! | key[2]! | key[3]!) === 0;

      let state = peers.get(peer);
      // A replay carries the same signed iat/exp, so it lands in the same
      // generation; looking in all of this peer's generations also refuses a
      // peer that reuses its own jti with other claims.
      if (state !== undefined) for (const g of state.generations) if (has(g, zero)) return "replayed";

      const index = Math.floor(keepUntil / generationSeconds);
      // Already past (the verifier's clock read a moment earlier): every later
      // presentation is stale, so there is nothing to remember.
      if ((index + 1) * generationSeconds <= nowSeconds) return "fresh";
      if (state === undefined) {
        if (peers.size >= maxPeers) return "over_quota";
        state = { generations: [], count: 0 };
        peers.set(peer, state);
      }
      let g: Generation | undefined;
      for (const candidate of state.generations) if (candidate.index === index) g = candidate;
      if (g === undefined) {
        g = newGeneration(index);
        state.generations.push(g);
        nextExpiry = Math.min(nextExpiry, (index + 1) * generationSeconds);
      }
      if (g.count >= maxPerGeneration) return "over_quota";
      add(g, zero);
      state.count++;
      return "fresh";
    },
    size(peer) {
      evict(now() / 1000);
      if (peer !== undefined) return peers.get(peer)?.count ?? 0;
      let n = 0;
      for (const state of peers.values()) n += state.count;
      return n;
    },
    stats() {
      evict(now() / 1000);
      let entries = 0;
      let bytes = 0;
      for (const state of peers.values()) {
        entries += state.count;
        bytes += tableBytes(state);
      }
      return { entries, bytes, peers: peers.size };
    },
  };
}
