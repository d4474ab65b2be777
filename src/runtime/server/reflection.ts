/**
 * gRPC server reflection (grpc.reflection.v1 and the older v1alpha that many
 * tools still try), so operators can use grpcurl / `buf curl` without .proto
 * files. Answers come from protobuf-es descriptors already in memory; the
 * index is built once, so a request is a map lookup.
 */
import { create, fromBinary, toBinary, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  SourceCodeInfoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import { sourceCodeInfo } from "../gen/source_info.ts";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { ServiceName } from "../identity/workloads.ts";
import { frameworkContract, REFLECTION_CALLERS } from "./framework-contracts.ts";
import { implement, type ServiceRegistration } from "./routes.ts";

// google.rpc.Code values carried in ErrorResponse.error_code.
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

export interface Reflection {
  /** The fully-qualified names reflection lists (served services + reflection itself). */
  readonly services: readonly string[];
  registrations(host: ServiceName): ServiceRegistration[];
}

/** The request fields v1 and v1alpha share (they differ only in package). */
type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** A response body both versions accept as init shape. */
interface Answer {
  validHost: string;
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };
}

interface Index {
  readonly services: readonly string[];
  readonly files: ReadonlyMap<string, DescFile>;
  /** Every declared full name (types, fields, oneofs, enum values, services, methods) -> its file. */
  readonly symbols: ReadonlyMap<string, DescFile>;
  readonly messages: ReadonlySet<string>;
  /** extendee full name -> field number -> declaring file. */
  readonly extensions: ReadonlyMap<string, ReadonlyMap<number, DescFile>>;
}

/**
 * `sourceInfo`: comments of the served contracts' files (generated with each
 * contract package, by file name); the framework's own files' comments are built in.
 */
export function createReflection(
  sources: readonly DescFile[] | readonly DescService[],
  sourceInfo: readonly (Readonly<Record<string, string>> | undefined)[] = [],
): Reflection {
  const comments: Readonly<Record<string, string>> = Object.assign({}, ...sourceInfo, sourceCodeInfo);
  const served: DescService[] = [];
  for (const s of sources) served.push(...(s.kind === "file" ? s.services : [s]));
  served.push(v1.ServerReflection, v1alpha.ServerReflection);
  const index = buildIndex(served, sources.flatMap((s) => (s.kind === "file" ? [s] : [])));
  const encoded = new Map<DescFile, Uint8Array>();

  // The requested file first, then its transitive imports, each once: clients need the closure to build types.
  function fileAnswer(file: DescFile): Answer["messageResponse"] {
    const out: Uint8Array[] = [];
    for (const f of closure([file])) {
      let bytes = encoded.get(f);
      if (!bytes) encoded.set(f, (bytes = encodeWithComments(f, comments[f.proto.name])));
      out.push(bytes);
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  // Names the kind only: never echo request content into a message.
  function notFound(what: string): Answer["messageResponse"] {
    return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
  }

  function answer(req: Request): Answer {
    const r = req.messageRequest;
    let messageResponse: Answer["messageResponse"];
    switch (r.case) {
      case "listServices":
        messageResponse = { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
        break;
      case "fileByFilename": {
        const file = index.files.get(r.value);
        messageResponse = file ? fileAnswer(file) : notFound("file");
        break;
      }
      case "fileContainingSymbol": {
        // Tools sometimes send a leading dot (protobuf's absolute-name syntax).
        const file = index.symbols.get(r.value.replace(/^\./, ""));
        messageResponse = file ? fileAnswer(file) : notFound("symbol");
        break;
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const file = index.extensions.get(containingType)?.get(extensionNumber);
        messageResponse = file ? fileAnswer(file) : notFound("extension");
        break;
      }
      case "allExtensionNumbersOfType": {
        const numbers = index.extensions.get(r.value);
        messageResponse =
          numbers || index.messages.has(r.value)
            ? { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: [...(numbers?.keys() ?? [])] } }
            : notFound("message type");
        break;
      }
      default:
        messageResponse = { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
    return { validHost: req.host, messageResponse };
  }

  return {
    services: index.services,
    registrations(host) {
      return [
        implement(frameworkContract(v1.ServerReflection, host, REFLECTION_CALLERS), {
          async *serverReflectionInfo(requests) {
            for await (const req of requests) yield { ...answer(req), originalRequest: req };
          },
        }),
        implement(frameworkContract(v1alpha.ServerReflection, host, REFLECTION_CALLERS), {
          async *serverReflectionInfo(requests) {
            for await (const req of requests) yield { ...answer(req), originalRequest: req };
          },
        }),
      ];
    },
  };
}

/**
 * The file's descriptor with its comments put back (protobuf-es embeds
 * descriptors without source info; codegen keeps it in each package's
 * gen/source_info.ts), so `grpcurl describe` shows what each service, method
 * and field is for.
 */
function encodeWithComments(f: DescFile, info: string | undefined): Uint8Array {
  if (info === undefined) return toBinary(FileDescriptorProtoSchema, f.proto);
  const proto = create(FileDescriptorProtoSchema, { ...f.proto, sourceCodeInfo: fromBinary(SourceCodeInfoSchema, Buffer.from(info, "base64")) });
  return toBinary(FileDescriptorProtoSchema, proto);
}

/** Files in dependency closure order: roots first, then imports breadth-first, no repeats (by file name). */
function closure(roots: readonly DescFile[]): DescFile[] {
  const seen = new Set<string>();
  const out: DescFile[] = [];
  const queue = [...roots];
  for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
    if (seen.has(f.proto.name)) continue;
    seen.add(f.proto.name);
    out.push(f);
    queue.push(...f.dependencies);
  }
  return out;
}

function buildIndex(served: readonly DescService[], extraFiles: readonly DescFile[]): Index {
  const services = [...new Set(served.map((s) => s.typeName))];
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const messages = new Set<string>();
  const extensions = new Map<string, Map<number, DescFile>>();

  // Protobuf scoping: enum values are siblings of their enum, not children.
  const addEnum = (scope: string, e: EnumDescriptorProto, file: DescFile) => {
    symbols.set(`${scope}${e.name}`, file);
    for (const v of e.value) symbols.set(`${scope}${v.name}`, file);
  };
  // Walks the DescriptorProto (not DescMessage) so synthetic map-entry messages resolve too.
  const addMessage = (scope: string, m: DescriptorProto, file: DescFile) => {
    const name = `${scope}${m.name}`;
    symbols.set(name, file);
    messages.add(name);
    for (const f of [...m.field, ...m.extension]) symbols.set(`${name}.${f.name}`, file);
    for (const o of m.oneofDecl) symbols.set(`${name}.${o.name}`, file);
    for (const e of m.enumType) addEnum(`${name}.`, e, file);
    for (const n of m.nestedType) addMessage(`${name}.`, n, file);
  };
  const addExtension = (ext: DescExtension) => {
    const byNumber = extensions.get(ext.extendee.typeName) ?? new Map<number, DescFile>();
    byNumber.set(ext.number, ext.file);
    extensions.set(ext.extendee.typeName, byNumber);
  };
  const addNestedExtensions = (m: DescMessage) => {
    m.nestedExtensions.forEach(addExtension);
    m.nestedMessages.forEach(addNestedExtensions);
  };

  for (const file of closure([...served.map((s) => s.file), ...extraFiles])) {
    files.set(file.proto.name, file);
    const p = file.proto;
    const scope = p.package ? `${p.package}.` : "";
    for (const m of p.messageType) addMessage(scope, m, file);
    for (const e of p.enumType) addEnum(scope, e, file);
    for (const x of p.extension) symbols.set(`${scope}${x.name}`, file);
    for (const s of p.service) {
      symbols.set(`${scope}${s.name}`, file);
      for (const m of s.method) symbols.set(`${scope}${s.name}.${m.name}`, file);
    }
    file.extensions.forEach(addExtension);
    file.messages.forEach(addNestedExtensions);
  }
  return { services, files, symbols, messages, extensions };
}
