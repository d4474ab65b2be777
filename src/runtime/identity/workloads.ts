/**
 * The platform's workload identities: the 21 TicketToken services plus the
 * operator identity used by humans with grpcurl. This list is the single
 * source of truth for caller names in contract access rules (the code
 * generator rejects any other name) and for the dev PKI.
 *
 * `httpPort` is the service's legacy HTTP port (api-gateway's service table);
 * its RPC port is 50000 + (httpPort - 3000).
 */
export const SERVICE_WORKLOADS = {
  "api-gateway": { httpPort: 3000 },
  "auth-service": { httpPort: 3001 },
  "venue-service": { httpPort: 3002 },
  "event-service": { httpPort: 3003 },
  "ticket-service": { httpPort: 3004 },
  "payment-service": { httpPort: 3005 },
  "marketplace-service": { httpPort: 3006 },
  "analytics-service": { httpPort: 3007 },
  "notification-service": { httpPort: 3008 },
  "integration-service": { httpPort: 3009 },
  "compliance-service": { httpPort: 3010 },
  "queue-service": { httpPort: 3011 },
  "search-service": { httpPort: 3012 },
  "file-service": { httpPort: 3013 },
  "monitoring-service": { httpPort: 3014 },
  "blockchain-service": { httpPort: 3015 },
  "order-service": { httpPort: 3016 },
  // Not in api-gateway's table; 3017 is the free slot between order and minting.
  "blockchain-indexer": { httpPort: 3017 },
  "minting-service": { httpPort: 3018 },
  "transfer-service": { httpPort: 3019 },
  "scanning-service": { httpPort: 3020 },
} as const satisfies Record<string, { httpPort: number }>;

export type ServiceName = keyof typeof SERVICE_WORKLOADS;

/** The operator identity: humans debugging with grpcurl or `buf curl`. */
export const OPERATOR_WORKLOAD = "ops";

export type WorkloadName = ServiceName | typeof OPERATOR_WORKLOAD;

export const SERVICE_NAMES = Object.keys(SERVICE_WORKLOADS) as ServiceName[];
export const WORKLOAD_NAMES: readonly WorkloadName[] = [...SERVICE_NAMES, OPERATOR_WORKLOAD];

export function isServiceName(name: string): name is ServiceName {
  return Object.hasOwn(SERVICE_WORKLOADS, name);
}

export function isWorkloadName(name: string): name is WorkloadName {
  return name === OPERATOR_WORKLOAD || isServiceName(name);
}

/** Default RPC port of a service: 50000 + (legacy HTTP port - 3000). */
export function defaultRpcPort(service: ServiceName): number {
  return 50000 + (SERVICE_WORKLOADS[service].httpPort - 3000);
}
