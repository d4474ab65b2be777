/**
 * Reads and validates the framework's contract options from descriptors.
 * Works on the descriptors protoc hands the plugin, so it needs no generated
 * code of its own (the options may change in the same generate run).
 */
import {
  getOption,
  hasOption,
  ScalarType,
  type DescExtension,
  type DescFile,
  type DescMethod,
  type DescService,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  defaultRpcPort,
  isServiceName,
  isWorkloadName,
  WORKLOAD_NAMES,
  type ServiceName,
} from "@tickettoken/rpc/internal/identity/workloads";
import type { Idempotency } from "@tickettoken/rpc/internal/contract/types";

const OPTIONS_PACKAGE = "tickettoken.rpc.v1";
/** Services in these packages must carry complete contracts. */
const CONTRACT_PACKAGE_PREFIX = "tickettoken.";

export interface MethodModel {
  localName: string;
  path: string;
  callers: string[];
  scopes: string[];
  idempotency: Idempotency;
  timeoutMs?: number;
  idempotencyKey: boolean;
  tenantKey?: string;
}

export interface ServiceContractModel {
  service: DescService;
  /** Who implements it; undefined for a framework service, which every server hosts under its own identity. */
  identity: { name: ServiceName; defaultPort: number } | undefined;
  methods: MethodModel[];
}

export class ContractError extends Error {
  override name = "ContractError";
}

interface OptionExtensions {
  service: DescExtension;
  access: DescExtension;
  call: DescExtension;
  tenantKey: DescExtension;
}

function findExtensions(files: readonly DescFile[]): OptionExtensions | undefined {
  const byName = new Map<string, DescExtension>();
  const seen = new Set<DescFile>();
  const visit = (file: DescFile): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const ext of file.extensions) byName.set(ext.typeName, ext);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  const get = (n: string) => byName.get(`${OPTIONS_PACKAGE}.${n}`);
  const service = get("service");
  const access = get("access");
  const call = get("call");
  const tenantKey = get("tenant_key");
  if (!service || !access || !call || !tenantKey) return undefined;
  return { service, access, call, tenantKey };
}

/** Reads every contract service in `files`; throws ContractError naming the method on a bad contract. */
export function readServiceContracts(files: readonly DescFile[]): ServiceContractModel[] {
  const contractServices = files
    .filter((f) => f.proto.package.startsWith(CONTRACT_PACKAGE_PREFIX))
    .flatMap((f) => f.services);
  if (contractServices.length === 0) return [];
  const ext = findExtensions(files);
  if (!ext) {
    throw new ContractError(`contract services found but ${OPTIONS_PACKAGE} options are not imported`);
  }
  const errors: string[] = [];
  const models: ServiceContractModel[] = [];
  for (const service of contractServices) {
    const model = readService(service, ext, errors);
    if (model) models.push(model);
  }
  if (errors.length > 0) {
    throw new ContractError(`invalid contract options:\n  - ${errors.join("\n  - ")}`);
  }
  return models;
}

function readService(service: DescService, ext: OptionExtensions, errors: string[]): ServiceContractModel | undefined {
  // The framework's own services (admin) live beside the options and are hosted by every server.
  if (service.file.proto.package === OPTIONS_PACKAGE) {
    if (hasOption(service, ext.service)) {
      errors.push(`${service.typeName}: a framework service is hosted by every server and takes no (${OPTIONS_PACKAGE}.service) option`);
    }
    return { service, identity: undefined, methods: readMethods(service, ext, errors) };
  }
  if (!hasOption(service, ext.service)) {
    errors.push(`${service.typeName}: missing option (${OPTIONS_PACKAGE}.service) = {name, default_port}`);
    return undefined;
  }
  const identity = getOption(service, ext.service) as { name: string; defaultPort: number };
  if (!isServiceName(identity.name)) {
    errors.push(`${service.typeName}: unknown service name "${identity.name}" in (${OPTIONS_PACKAGE}.service).name`);
    return undefined;
  }
  const expectedPort = defaultRpcPort(identity.name);
  if (identity.defaultPort !== expectedPort) {
    errors.push(
      `${service.typeName}: default_port ${identity.defaultPort} does not follow the port rule ` +
        `(expected ${expectedPort} = 50000 + HTTP port - 3000)`,
    );
  }
  return { service, identity: { name: identity.name, defaultPort: identity.defaultPort }, methods: readMethods(service, ext, errors) };
}

function readMethods(service: DescService, ext: OptionExtensions, errors: string[]): MethodModel[] {
  const methods: MethodModel[] = [];
  for (const method of service.methods) {
    const m = readMethod(method, ext, errors);
    if (m) methods.push(m);
  }
  return methods;
}

function readMethod(method: DescMethod, ext: OptionExtensions, errors: string[]): MethodModel | undefined {
  const where = `${method.parent.typeName}.${method.name}`;
  if (!hasOption(method, ext.access)) {
    errors.push(`${where}: no access rule; every RPC needs option (${OPTIONS_PACKAGE}.access) (deny by default)`);
    return undefined;
  }
  const access = getOption(method, ext.access) as { callers: string[]; scopes: string[] };
  if (access.callers.length === 0) {
    errors.push(`${where}: access rule lists no callers`);
  }
  for (const caller of access.callers) {
    if (!isWorkloadName(caller)) {
      errors.push(`${where}: unknown caller "${caller}" in access rule (known: ${WORKLOAD_NAMES.join(", ")})`);
    }
  }
  if (new Set(access.callers).size !== access.callers.length) {
    errors.push(`${where}: duplicate caller in access rule`);
  }
  for (const scope of access.scopes) {
    if (!/^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)+$/.test(scope)) {
      errors.push(`${where}: malformed scope "${scope}" (expected resource:action, e.g. events:read)`);
    }
  }
  const behavior = hasOption(method, ext.call)
    ? (getOption(method, ext.call) as { timeoutMs: number; idempotencyKey: boolean })
    : { timeoutMs: 0, idempotencyKey: false };
  if (behavior.timeoutMs > 300_000) {
    errors.push(`${where}: timeout_ms ${behavior.timeoutMs} exceeds the 300000 ms ceiling`);
  }
  const idempotency = idempotencyOf(method);
  // Mutating calls must say how a retry is made safe, so the client can retry and the server can dedupe.
  if (idempotency === "unknown" && !behavior.idempotencyKey) {
    errors.push(
      `${where}: mutating RPC declares neither idempotency_level = IDEMPOTENT nor ` +
        `(${OPTIONS_PACKAGE}.call) = {idempotency_key: true}; decide which makes a retry safe`,
    );
  }
  if (behavior.idempotencyKey && idempotency === "no_side_effects") {
    errors.push(`${where}: idempotency_key on a NO_SIDE_EFFECTS method (nothing to deduplicate)`);
  }
  if (behavior.idempotencyKey && method.methodKind !== "unary") {
    errors.push(`${where}: idempotency_key is only supported on unary methods (the stored response is one message)`);
  }
  const tenantFields = method.input.fields.filter((f) => hasOption(f, ext.tenantKey) && getOption(f, ext.tenantKey) === true);
  if (tenantFields.length > 1) {
    errors.push(`${where}: request ${method.input.typeName} marks ${tenantFields.length} fields as tenant_key (at most one)`);
  }
  const tenant = tenantFields[0];
  if (tenant && !(tenant.fieldKind === "scalar" && tenant.scalar === ScalarType.STRING)) {
    errors.push(`${where}: tenant_key field ${tenant.name} must be a singular string`);
  }
  const path = `/${method.parent.typeName}/${method.name}`;
  return {
    localName: method.localName,
    path,
    callers: access.callers,
    scopes: access.scopes,
    idempotency,
    ...(behavior.timeoutMs > 0 ? { timeoutMs: behavior.timeoutMs } : {}),
    idempotencyKey: behavior.idempotencyKey,
    ...(tenant ? { tenantKey: tenant.localName } : {}),
  };
}

function idempotencyOf(method: DescMethod): Idempotency {
  switch (method.idempotency) {
    case MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS:
      return "no_side_effects";
    case MethodOptions_IdempotencyLevel.IDEMPOTENT:
      return "idempotent";
    default:
      return "unknown";
  }
}
