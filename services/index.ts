/**
 * The platform services' RPC implementations, by workload name. The mesh
 * serves every contract; a service listed here answers with its handlers,
 * the others answer UNIMPLEMENTED until their implementation lands.
 */
import type { ServiceRegistration } from "../src/server/routes.ts";
import type { ServiceName } from "../src/identity/workloads.ts";

export type ServiceFactory = () => ServiceRegistration;

export const implementations: Partial<Record<ServiceName, ServiceFactory>> = {};
