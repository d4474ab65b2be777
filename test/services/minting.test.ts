/**
 * minting-service over mTLS through its generated client: every RPC, success
 * and error paths; one mint per ticket (keyed retries and second requests
 * return the first mint, the fake Solana is asked once); the ticket update
 * (ticket-service UpdateNft) kept pending when it fails and re-sent by a
 * retry; tenant isolation; event blockchain config read only with the
 * events:read scope; a restart on a file database.
 *
 * ticket-service and event-service are built in parallel: small fake servers
 * stand in for them here, recording what they were asked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createMintingServiceClient, type MintingServiceClient } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_rpc.ts";
import { MintStatus } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import { mintingModule } from "../../services/minting/index.ts";
import { ACME, DEMO, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

const EVENT_TREE = "Tree1111111111111111111111111111111111111111";
const WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
const BASE58_ADDRESS = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;

/** UpdateNft calls the fake ticket-service received (every handler run), and how it answers. */
const nftUpdates: { tenantId: string; ticketId: string; mint: string | undefined; isMinted: boolean | undefined }[] = [];
let updateFailure: Code | undefined;
const eventLookups: string[] = [];

let pki: TestPki;
let ticketFake: RpcServer;
let eventFake: RpcServer;
let svc: ServiceHarness;
let tickets: MintingServiceClient;
let queue: MintingServiceClient;
let ops: MintingServiceClient;
const resilience = { registry: new ResilienceRegistry({ logger: silentLogger() }), retryMaxAttempts: 1, breakerMinCalls: 10_000 };
const dir = mkdtempSync(join(tmpdir(), "minting-svc-"));

async function startFakes(): Promise<void> {
  ticketFake = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        updateNft(req) {
          nftUpdates.push({ tenantId: req.tenantId, ticketId: req.ticketId, mint: req.nftMintAddress, isMinted: req.isMinted });
          if (updateFailure !== undefined) throw new ConnectError("update refused", updateFailure);
          return { ticketId: req.ticketId, nftMintAddress: req.nftMintAddress ?? "", ...(req.mintedAt ? { mintedAt: req.mintedAt } : {}) };
        },
      }),
    ],
  });
  eventFake = await createServer({
    identity: await pki.material("event-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(EventServiceContract, {
        getEventPda(req) {
          eventLookups.push(req.eventId);
          if (req.tenantId !== ACME || (req.eventId !== "e-1" && req.eventId !== "e-no-tree")) throw new ConnectError("event not found", Code.NotFound);
          const tree = req.eventId === "e-1" ? EVENT_TREE : "";
          return { eventId: req.eventId, tenantId: req.tenantId, hasBlockchainConfig: tree !== "", blockchain: { merkleTreeAddress: tree } };
        },
      }),
    ],
  });
}

async function startMinting(database?: string): Promise<void> {
  const env = { ...rpcAddressEnv("ticket-service", `127.0.0.1:${ticketFake.port}`), ...rpcAddressEnv("event-service", `127.0.0.1:${eventFake.port}`) };
  svc = await startService(pki, mintingModule, { env, resilience, ...(database ? { database } : {}) });
  tickets = await svc.client("ticket-service", createMintingServiceClient, { resilience });
  queue = await svc.client("queue-service", createMintingServiceClient, { resilience });
  ops = await svc.client("ops", createMintingServiceClient, { resilience });
}

async function as(tenantId: string, key?: string, scopes: string[] = []): Promise<CallOptions> {
  const opts = await svc.as(tenantId, "u-1", scopes);
  return key ? { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } } : opts;
}

function ticket(ticketId: string) {
  return { ticketId, userId: "u-1", eventId: "e-1", ticketTypeId: "tt-ga", metadata: { eventName: "Acme Summer Concert", ticketType: "General Admission" } };
}

function compressed(ticketId: string, eventId = "e-1") {
  return { tenantId: ACME, ticketId, eventId, userId: "u-1", recipientWallet: WALLET, metadata: { name: "Acme Summer Concert", symbol: "ACME", uri: "https://meta.test/x.json" } };
}

function count(sql: string, ...params: string[]): number {
  return Number((svc.service.runtime.db.prepare(sql).get(...params) as { n: number }).n);
}

function chainRequests(ticketId: string): number {
  return count("SELECT COUNT(*) AS n FROM fake_solana_requests WHERE tenant_id = ? AND ticket_id = ?", ACME, ticketId);
}

function updatesFor(ticketId: string) {
  return nftUpdates.filter((u) => u.ticketId === ticketId);
}

beforeAll(async () => {
  pki = await createTestPki();
  await startFakes();
  await startMinting();
});

afterAll(async () => {
  await svc?.stop();
  await Promise.all([ticketFake?.stop(1000), eventFake?.stop(1000)]);
  pki?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe("minting-service MintTicket", () => {
  it("mints on the fake chain, hands the NFT fields to ticket-service and reads back", async () => {
    const { result } = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m1") }, await as(ACME, "mint-t-m1"));
    expect(result).toMatchObject({ ticketId: "t-m1", status: MintStatus.CONFIRMED, error: "" });
    expect(result!.mintAddress).toMatch(BASE58_ADDRESS);
    expect(result!.transactionSignature.length).toBeGreaterThan(80);
    expect(updatesFor("t-m1")).toEqual([{ tenantId: ACME, ticketId: "t-m1", mint: result!.mintAddress, isMinted: true }]);
    const status = await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-m1" }, await as(ACME));
    expect(status).toMatchObject({ status: MintStatus.CONFIRMED, mintAddress: result!.mintAddress, transactionSignature: result!.transactionSignature, ticketUpdatePending: false });
    expect(status.confirmedAt).toBeDefined();
    expect(chainRequests("t-m1")).toBe(1);
  });

  it("a retry with the key and a second request for the ticket return the first mint; the chain is asked once", async () => {
    const first = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m2") }, await as(ACME, "mint-t-m2"));
    const retry = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m2") }, await as(ACME, "mint-t-m2"));
    const other = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m2") }, await as(ACME, "mint-t-m2-again"));
    expect(retry.result).toEqual(first.result);
    expect(other.result).toEqual(first.result);
    expect(count("SELECT COUNT(*) AS n FROM mints WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-m2")).toBe(1);
    expect(chainRequests("t-m2")).toBe(1);
    expect(updatesFor("t-m2")).toHaveLength(1);
  });

  it("ticket-service unreachable for UpdateNft: the confirmed mint is answered, the update stays pending; the next MintTicket re-sends it", async () => {
    updateFailure = Code.Unavailable;
    let answered: string | undefined;
    try {
      // The mint happened: the caller (ticket-service itself) records the address from this answer.
      const { result } = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m3") }, await as(ACME, "mint-t-m3"));
      expect(result?.status).toBe(MintStatus.CONFIRMED);
      answered = result?.mintAddress;
    } finally {
      updateFailure = undefined;
    }
    const pending = await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-m3" }, await as(ACME));
    expect(pending).toMatchObject({ status: MintStatus.CONFIRMED, ticketUpdatePending: true, mintAddress: answered });
    // A later request for the same ticket (e.g. queue-service's ProcessMint job) mints nothing new and re-sends the update.
    const { result } = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m3") }, await as(ACME, "mint-t-m3-again"));
    expect(result?.mintAddress).toBe(pending.mintAddress);
    expect(updatesFor("t-m3").map((u) => u.mint)).toEqual([pending.mintAddress, pending.mintAddress]);
    expect((await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-m3" }, await as(ACME))).ticketUpdatePending).toBe(false);
    expect(chainRequests("t-m3")).toBe(1);
  });

  it("ticket-service refusing the update is FAILED_PRECONDITION, the mint stays recorded", async () => {
    updateFailure = Code.NotFound;
    try {
      const err = await callError(tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m4") }, await as(ACME, "mint-t-m4")));
      expect(err.code).toBe(Code.FailedPrecondition);
    } finally {
      updateFailure = undefined;
    }
    expect((await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-m4" }, await as(ACME))).ticketUpdatePending).toBe(true);
  });

  it("invalid input is INVALID_ARGUMENT naming the fields; a compressed ticket is FAILED_PRECONDITION", async () => {
    expect(violatedFields(await callError(tickets.mintTicket({ tenantId: ACME }, await as(ACME, "mint-bad-1"))))).toEqual(["ticket"]);
    const err = await callError(tickets.mintTicket({ tenantId: ACME, ticket: { ticketId: "t 1", userId: "", eventId: "e-1" } }, await as(ACME, "mint-bad-2")));
    expect(violatedFields(err).sort()).toEqual(["ticket.ticket_id", "ticket.user_id"]);
    await queue.mintCompressed(compressed("t-m5"), await as(ACME, "cmp-t-m5", ["events:read"]));
    const kind = await callError(tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-m5") }, await as(ACME, "mint-t-m5")));
    expect(kind.code).toBe(Code.FailedPrecondition);
  });
});

describe("minting-service GetMintStatus", () => {
  it("reads the seeded mint, also for ops", async () => {
    const demo = DEMO.mints[0];
    const res = await ops.getMintStatus({ tenantId: ACME, ticketId: "t-1" }, await as(ACME));
    expect(res).toMatchObject({ ticketId: "t-1", status: MintStatus.CONFIRMED, mintAddress: demo.mintAddress, transactionSignature: demo.signature });
  });

  it("another tenant's mint and an unminted ticket are NOT_FOUND; a bad id is INVALID_ARGUMENT", async () => {
    expect((await callError(tickets.getMintStatus({ tenantId: GLOBEX, ticketId: "t-1" }, await as(GLOBEX)))).code).toBe(Code.NotFound);
    expect((await callError(tickets.getMintStatus({ tenantId: ACME, ticketId: "t-2" }, await as(ACME)))).code).toBe(Code.NotFound);
    expect(violatedFields(await callError(tickets.getMintStatus({ tenantId: ACME, ticketId: "" }, await as(ACME))))).toEqual(["ticket_id"]);
  });
});

describe("minting-service BatchMintTickets", () => {
  it("one result per ticket in order: new mints, an existing mint, a ticket that cannot be minted", async () => {
    await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-b0") }, await as(ACME, "mint-t-b0"));
    await queue.mintCompressed(compressed("t-bc"), await as(ACME, "cmp-t-bc"));
    const { results } = await tickets.batchMintTickets({ tenantId: ACME, tickets: [ticket("t-b1"), ticket("t-b0"), ticket("t-bc"), ticket("t-b2")] }, await as(ACME, "batch-1"));
    expect(results.map((r) => [r.ticketId, r.status])).toEqual([
      ["t-b1", MintStatus.CONFIRMED],
      ["t-b0", MintStatus.CONFIRMED],
      ["t-bc", MintStatus.FAILED],
      ["t-b2", MintStatus.CONFIRMED],
    ]);
    expect(results[2]!.error).toBe("ticket already minted as a compressed NFT");
    for (const id of ["t-b0", "t-b1", "t-b2"]) {
      expect(chainRequests(id)).toBe(1);
      expect(updatesFor(id)).toHaveLength(1);
    }
    // Naturally idempotent: a new batch with the same tickets mints nothing more.
    const again = await tickets.batchMintTickets({ tenantId: ACME, tickets: [ticket("t-b1"), ticket("t-b2")] }, await as(ACME, "batch-2"));
    expect(again.results.map((r) => r.mintAddress)).toEqual([results[0]!.mintAddress, results[3]!.mintAddress]);
    expect(chainRequests("t-b1") + chainRequests("t-b2")).toBe(2);
  });

  it("an empty batch or a ticket twice is INVALID_ARGUMENT", async () => {
    expect(violatedFields(await callError(tickets.batchMintTickets({ tenantId: ACME, tickets: [] }, await as(ACME, "batch-bad-1"))))).toEqual(["tickets"]);
    const dup = await callError(tickets.batchMintTickets({ tenantId: ACME, tickets: [ticket("t-d"), ticket("t-d")] }, await as(ACME, "batch-bad-2")));
    expect(violatedFields(dup)).toEqual(["tickets[1].ticket_id"]);
    expect(count("SELECT COUNT(*) AS n FROM mints WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-d")).toBe(0);
  });

  it("a failed ticket update fails the batch after minting; the retry mints nothing new and re-sends the updates", async () => {
    updateFailure = Code.Unavailable;
    try {
      expect((await callError(tickets.batchMintTickets({ tenantId: ACME, tickets: [ticket("t-b3"), ticket("t-b4")] }, await as(ACME, "batch-3")))).code).toBe(Code.Unavailable);
    } finally {
      updateFailure = undefined;
    }
    const { results } = await tickets.batchMintTickets({ tenantId: ACME, tickets: [ticket("t-b3"), ticket("t-b4")] }, await as(ACME, "batch-3"));
    expect(results.map((r) => r.status)).toEqual([MintStatus.CONFIRMED, MintStatus.CONFIRMED]);
    expect(chainRequests("t-b3") + chainRequests("t-b4")).toBe(2);
    for (const id of ["t-b3", "t-b4"]) {
      expect((await tickets.getMintStatus({ tenantId: ACME, ticketId: id }, await as(ACME))).ticketUpdatePending).toBe(false);
      // One failed attempt, one re-sent.
      expect(updatesFor(id)).toHaveLength(2);
    }
  });
});

describe("minting-service MintCompressed", () => {
  it("mints into the event's merkle tree read from event-service (events:read); a retry returns the same asset", async () => {
    const first = await queue.mintCompressed(compressed("t-c1"), await as(ACME, "cmp-t-c1", ["events:read"]));
    expect(first).toMatchObject({ ticketId: "t-c1", status: MintStatus.CONFIRMED, merkleTreeAddress: EVENT_TREE });
    expect(first.assetId).toMatch(BASE58_ADDRESS);
    const retry = await queue.mintCompressed(compressed("t-c1"), await as(ACME, "cmp-t-c1", ["events:read"]));
    expect(retry).toEqual(first);
    expect(chainRequests("t-c1")).toBe(1);
    expect(count("SELECT COUNT(*) AS n FROM mints WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-c1")).toBe(1);
    // Compressed mints leave the ticket update to their caller (queue-service's job).
    expect(updatesFor("t-c1")).toEqual([]);
  });

  it("without events:read the event is not read and the mint still succeeds, in the event's default tree", async () => {
    const before = eventLookups.length;
    const res = await queue.mintCompressed(compressed("t-c2"), await as(ACME, "cmp-t-c2"));
    expect(res.status).toBe(MintStatus.CONFIRMED);
    expect(res.merkleTreeAddress).toMatch(BASE58_ADDRESS);
    expect(res.merkleTreeAddress).not.toBe(EVENT_TREE);
    expect(eventLookups.length).toBe(before);
    const noTree = await queue.mintCompressed(compressed("t-c3", "e-no-tree"), await as(ACME, "cmp-t-c3", ["events:read"]));
    expect(noTree.merkleTreeAddress).toMatch(BASE58_ADDRESS);
  });

  it("a missing event is NOT_FOUND, a bad wallet INVALID_ARGUMENT, an NFT-minted ticket FAILED_PRECONDITION", async () => {
    expect((await callError(queue.mintCompressed(compressed("t-c4", "e-missing"), await as(ACME, "cmp-t-c4", ["events:read"])))).code).toBe(Code.NotFound);
    expect(count("SELECT COUNT(*) AS n FROM mints WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-c4")).toBe(0);
    const bad = await callError(queue.mintCompressed({ ...compressed("t-c5"), recipientWallet: "0xnotbase58", metadata: { name: "" } }, await as(ACME, "cmp-t-c5")));
    expect(violatedFields(bad).sort()).toEqual(["metadata.name", "recipient_wallet"]);
    expect((await callError(queue.mintCompressed(compressed("t-m1"), await as(ACME, "cmp-t-m1")))).code).toBe(Code.FailedPrecondition);
  });
});

describe("minting-service restart", () => {
  it("MintTicket retried with its key after a restart completes the pending update; one mint, one chain request", async () => {
    await svc.stop();
    const database = join(dir, "minting.db");
    await startMinting(database);
    updateFailure = Code.Unavailable;
    let first: string;
    try {
      await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-r1") }, await as(ACME, "mint-t-r1"));
      first = (await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-r1" }, await as(ACME))).mintAddress;
    } finally {
      updateFailure = undefined;
    }
    await svc.stop();
    await startMinting(database);
    const { result } = await tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-r1") }, await as(ACME, "mint-t-r1"));
    expect(result).toMatchObject({ status: MintStatus.CONFIRMED, mintAddress: first });
    expect(count("SELECT COUNT(*) AS n FROM mints WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-r1")).toBe(1);
    expect(chainRequests("t-r1")).toBe(1);
    expect((await tickets.getMintStatus({ tenantId: ACME, ticketId: "t-r1" }, await as(ACME))).ticketUpdatePending).toBe(false);
    // The stored key still belongs to t-r1: used for another ticket it is refused, nothing minted.
    await svc.stop();
    await startMinting(database);
    const reused = await callError(tickets.mintTicket({ tenantId: ACME, ticket: ticket("t-r2") }, await as(ACME, "mint-t-r1")));
    expect(reused.code).toBe(Code.FailedPrecondition);
    expect(chainRequests("t-r2")).toBe(0);
  });
});
