/**
 * `<NAME>_RPC_ADDRESS` forms for many replicas per target, and the errors
 * a wrong value gets: each names the variable and the forms expected.
 */
import { describe, expect, it } from "vitest";
import { addressVariable, parseRpcAddress, resolveAddress } from "../../src/runtime/client/address.ts";

describe("RPC address forms", () => {
  it.each([
    ["localhost:50004", "localhost:50004"],
    ["ticket-service.prod.svc.cluster.local:50004", "ticket-service.prod.svc.cluster.local:50004"],
    ["10.1.2.3:50004", "10.1.2.3:50004"],
    ["[::1]:50004", "[::1]:50004"],
    ["dns:///ticket-service.prod.svc.cluster.local:50004", "dns:///ticket-service.prod.svc.cluster.local:50004"],
    ["dns:ticket-service:50004", "dns:///ticket-service:50004"],
    ["ipv4:127.0.0.1:5001,127.0.0.1:5002", "ipv4:127.0.0.1:5001,127.0.0.1:5002"],
    ["ipv6:[::1]:5001,[::1]:5002", "ipv6:[::1]:5001,[::1]:5002"],
    // A bare list of IP literals is the static-list shorthand.
    ["127.0.0.1:5001, 127.0.0.2:5002", "ipv4:127.0.0.1:5001,127.0.0.2:5002"],
    ["[::1]:5001,[::1]:5002", "ipv6:[::1]:5001,[::1]:5002"],
  ])("%s -> grpc-js target %s", (value, target) => {
    expect(parseRpcAddress(value, "TICKET_RPC_ADDRESS")).toBe(target);
  });

  it.each([
    ["ticket-service", "is not host:port"],
    ["ticket-service:0", 'port "0" is not 1-65535'],
    ["ticket-service:65536", 'port "65536" is not 1-65535'],
    ["ticket_service:50004", "is not a host name"],
    ["http://ticket-service:50004", 'unsupported scheme "http"'],
    ["unix:/run/ticket.sock", 'unsupported scheme "unix"'],
    ["dns://10.0.0.10/ticket-service:50004", "DNS server authority is not supported"],
    ["dns:///ticket-service", "is not host:port"],
    ["ipv4:ticket-service:50004", '"ticket-service" is not an IPv4 address'],
    ["ipv4:127.0.0.1", "is not host:port"],
    ["ipv4:127.0.0.1:5001,,127.0.0.1:5002", "empty entry"],
    ["ticket-a:5001,ticket-b:5002", "use dns:///name:port for a name"],
    ["127.0.0.1:5001,[::1]:5002", '"[::1]" is not an IPv4 address'],
    ["ipv6:::1:5001", "is not host:port"],
  ])("%s is refused: %s", (value, why) => {
    let message = "";
    try {
      parseRpcAddress(value, "TICKET_RPC_ADDRESS");
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("TICKET_RPC_ADDRESS must be host:port, dns:///host:port, ipv4:IP:port");
    expect(message).toContain(JSON.stringify(value));
    expect(message).toContain(why);
  });

  it("reads <NAME>_RPC_ADDRESS, then <NAME>_SERVICE_URL's host with the RPC port, then localhost", () => {
    expect(addressVariable("blockchain-indexer")).toBe("BLOCKCHAIN_INDEXER_RPC_ADDRESS");
    expect(resolveAddress("ticket-service", 50004, { TICKET_RPC_ADDRESS: "dns:///ticket-service.prod.svc.cluster.local:50004" })).toBe(
      "dns:///ticket-service.prod.svc.cluster.local:50004",
    );
    expect(resolveAddress("ticket-service", 50004, { TICKET_RPC_ADDRESS: "10.0.0.1:50004,10.0.0.2:50004" })).toBe("ipv4:10.0.0.1:50004,10.0.0.2:50004");
    expect(resolveAddress("ticket-service", 50004, { TICKET_SERVICE_URL: "http://ticket-service:3004" })).toBe("ticket-service:50004");
    expect(resolveAddress("ticket-service", 50004, {})).toBe("localhost:50004");
    expect(() => resolveAddress("blockchain-indexer", 50020, { BLOCKCHAIN_INDEXER_RPC_ADDRESS: "indexer" })).toThrow(/^BLOCKCHAIN_INDEXER_RPC_ADDRESS must be/);
  });
});
