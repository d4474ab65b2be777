/**
 * deploy/ validated without a cluster: every YAML document parses and passes
 * the Kubernetes schema of its kind (kubernetes-models), every kustomization
 * reference exists, the base is what deploy/generate.ts renders from the
 * contracts, and each service's Deployment has what running it needs: probes
 * on the ops port, a headless Service and a PDB, an address for every
 * downstream its contract allows it to call, hardening, a drain-sized grace
 * period. The identity layout step is run for real against files shaped like
 * csi-driver-spiffe's, and the material loader must accept the result.
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { addressVariable, parseRpcAddress } from "../../src/runtime/client/address.ts";
import { initPki, pkiPaths, rotateLeaf } from "../../src/devtools/pki/dev-ca.ts";
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { DRAIN_GRACE_SECONDS, POD_PATHS, downstreamsOf, renderBase } from "../../deploy/generate.ts";
import { REPO_ROOT } from "../support/exec.ts";

const DEPLOY = join(REPO_ROOT, "deploy");

interface Doc {
  readonly file: string;
  readonly obj: Record<string, any>;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "pki" ? [] : yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

function loadDocs(): Doc[] {
  return yamlFiles(DEPLOY).flatMap((file) =>
    parseAllDocuments(readFileSync(file, "utf8")).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${relative(REPO_ROOT, file)}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return { file: relative(DEPLOY, file), obj: doc.toJS() as Record<string, any> };
    }),
  );
}

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Namespace": Namespace,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
};

const docs = loadDocs();
const inBase = (kind: string, name: string) => docs.find((d) => d.file.startsWith("base/") && d.obj.kind === kind && d.obj.metadata?.name === name)?.obj;
const kustomizations = docs.filter((d) => d.obj.kind === "Kustomization");
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe("deploy/ manifests", () => {
  it("every document parses and validates against its kind's Kubernetes schema", () => {
    expect(docs.length).toBeGreaterThan(serviceContracts.length * 6);
    for (const { file, obj } of docs) {
      if (obj.kind === "Kustomization") {
        expect(obj.apiVersion, file).toBe("kustomize.config.k8s.io/v1beta1");
        continue;
      }
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      expect(Model, `${file}: no schema for ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      expect(() => new Model!(obj).validate(), `${file}: ${obj.kind} ${obj.metadata?.name}`).not.toThrow();
    }
  });

  it("the schema check catches a broken object (the validator is live)", () => {
    const broken = structuredClone(inBase("Deployment", "ticket-service")!);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "fifty thousand";
    expect(() => new Deployment(broken).validate()).toThrow(/containerPort/);
    const noSelector = structuredClone(inBase("Deployment", "ticket-service")!);
    delete noSelector.spec.selector;
    expect(() => new Deployment(noSelector).validate()).toThrow(/selector/);
  });

  it("the base is what deploy/generate.ts renders from the contracts (regenerate after a contract change)", () => {
    const rendered = renderBase();
    const onDisk = readdirSync(join(DEPLOY, "base")).filter((f) => f.endsWith(".yaml")).sort();
    expect(onDisk).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(readFileSync(join(DEPLOY, "base", file), "utf8"), file).toBe(text);
  });

  describe("kustomization references", () => {
    let pkiDir: string;
    beforeAll(async () => {
      // The files the dev overlay's generators read are the ones `tt-rpc certs init` writes.
      pkiDir = mkdtempSync(join(tmpdir(), "tt-deploy-pki-"));
      await initPki({ dir: pkiDir, env: "dev" });
    });
    afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));

    it("resources, patches and generator files all exist", () => {
      expect(kustomizations.map((k) => k.file).sort()).toEqual(["base/kustomization.yaml", "overlays/dev/kustomization.yaml"]);
      for (const { file, obj } of kustomizations) {
        const dir = join(DEPLOY, dirname(file));
        for (const r of obj.resources ?? []) {
          const path = join(dir, r);
          expect(existsSync(path), `${file}: resource ${r}`).toBe(true);
          if (statSync(path).isDirectory()) expect(existsSync(join(path, "kustomization.yaml")), `${file}: ${r} is not a kustomization`).toBe(true);
        }
        for (const p of obj.patches ?? []) if (p.path) expect(existsSync(join(dir, p.path)), `${file}: patch ${p.path}`).toBe(true);
        for (const g of [...(obj.configMapGenerator ?? []), ...(obj.secretGenerator ?? [])]) {
          for (const entry of g.files ?? []) {
            const source: string = entry.includes("=") ? entry.slice(entry.indexOf("=") + 1) : entry;
            if (source.startsWith("pki/")) expect(existsSync(join(pkiDir, source.slice(4))), `${file}: ${source} is not a file certs init writes`).toBe(true);
            else expect(existsSync(join(dir, source)), `${file}: ${source}`).toBe(true);
          }
        }
      }
    });

    it("the dev overlay provides every Secret and ConfigMap the base mounts or reads", () => {
      const dev = kustomizations.find((k) => k.file === "overlays/dev/kustomization.yaml")!.obj;
      expect(dev.namespace).toBe("dev");
      const provided = new Set([...dev.configMapGenerator, ...dev.secretGenerator].map((g: { name: string }) => g.name));
      for (const c of serviceContracts) {
        const pod: IPodSpec = inBase("Deployment", c.name)!.spec.template.spec;
        for (const v of pod.volumes ?? []) {
          if (v.secret) expect(provided.has(v.secret.secretName!), `${c.name}: Secret ${v.secret.secretName}`).toBe(true);
          if (v.configMap) expect(provided.has(v.configMap.name!), `${c.name}: ConfigMap ${v.configMap.name}`).toBe(true);
        }
        for (const e of pod.containers[0]!.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(provided.has(ref.name!), `${c.name}: Secret ${ref.name} for ${e.name}`).toBe(true);
        }
      }
    });
  });

  describe.each(serviceContracts.map((c) => [c.name, c] as const))("%s", (name, contract) => {
    const deployment = inBase("Deployment", name);
    const pod: IPodSpec = deployment?.spec.template.spec;
    const container = () => pod.containers.find((c) => c.name === name) as IContainer;
    const env = (n: string) => container().env?.find((e) => e.name === n);
    const opsPort = contract.defaultPort + 2000;

    it("runs `tt-service` (the services package bin) on the contract's port, Connect off, ops port = port + 2000 on all interfaces", () => {
      expect(deployment).toBeDefined();
      expect(container().command).toEqual(["tt-service", name, "--host", "0.0.0.0", "--port", String(contract.defaultPort)]);
      expect(container().command).not.toContain("--connect-port");
      expect(container().ports).toEqual([
        { name: "grpc", containerPort: contract.defaultPort, protocol: "TCP" },
        { name: "ops", containerPort: opsPort, protocol: "TCP" },
      ]);
      expect(env("TT_RPC_OPS_PORT")?.value).toBe(String(opsPort));
      expect(env("TT_RPC_OPS_HOST")?.value).toBe("0.0.0.0");
    });

    it("probes liveness (/healthz) and readiness (/readyz) on the ops port", () => {
      const c = container();
      const port = (p: string | number | undefined) => (typeof p === "number" ? p : c.ports!.find((x) => x.name === p)?.containerPort);
      expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
      expect(port(c.livenessProbe?.httpGet?.port)).toBe(opsPort);
      expect(c.readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(port(c.readinessProbe?.httpGet?.port)).toBe(opsPort);
      expect(port(c.startupProbe?.httpGet?.port)).toBe(opsPort);
    });

    it("has a headless Service and a PodDisruptionBudget selecting its pods", () => {
      const labels = deployment!.spec.template.metadata.labels;
      expect(matches(deployment!.spec.selector.matchLabels, labels)).toBe(true);
      const service = inBase("Service", name)!;
      expect(service.spec.clusterIP).toBe("None");
      expect(matches(service.spec.selector, labels)).toBe(true);
      expect(service.spec.ports).toContainEqual(expect.objectContaining({ name: "grpc", port: contract.defaultPort, targetPort: "grpc" }));
      const pdb = inBase("PodDisruptionBudget", name)!;
      expect(matches(pdb.spec.selector.matchLabels, labels)).toBe(true);
      expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
      // The SPIFFE ID csi-driver-spiffe issues names the pod's service account: it must be the service's name.
      expect(pod.serviceAccountName).toBe(name);
      expect(inBase("ServiceAccount", name)).toBeDefined();
      // ...which csi-driver-spiffe uses to request it: allowed to create CertificateRequests.
      const binding = docs.find((d) => d.file.startsWith("base/") && d.obj.kind === "RoleBinding" && d.obj.subjects?.some((s: { name: string }) => s.name === name))?.obj;
      const role = inBase("Role", binding?.roleRef.name);
      expect(role?.rules).toContainEqual({ apiGroups: ["cert-manager.io"], resources: ["certificaterequests"], verbs: ["create"] });
    });

    it("gets a dns:/// address for every downstream its contract allows it to call, each one valid", () => {
      const downstreams = downstreamsOf(name);
      const vars = (container().env ?? []).filter((e) => e.name.endsWith("_RPC_ADDRESS"));
      expect(vars.map((e) => e.name).sort()).toEqual(downstreams.map((d) => addressVariable(d.name)).sort());
      const names = (container().env ?? []).map((e) => e.name);
      expect(env("POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.namespace");
      for (const d of downstreams) {
        const value = env(addressVariable(d.name))!.value!;
        expect(value).toBe(`dns:///${d.name}.$(POD_NAMESPACE).svc.cluster.local:${d.defaultPort}`);
        // Kubernetes expands $(POD_NAMESPACE) only from variables defined earlier in the list.
        expect(names.indexOf("POD_NAMESPACE")).toBeLessThan(names.indexOf(addressVariable(d.name)));
        expect(parseRpcAddress(value.replace("$(POD_NAMESPACE)", "dev"), addressVariable(d.name))).toBe(value.replace("$(POD_NAMESPACE)", "dev"));
      }
    });

    it("is hardened: non-root, read-only root filesystem, no privilege escalation, resources set", () => {
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.automountServiceAccountToken).toBe(false);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        expect(c.securityContext?.runAsNonRoot, c.name).toBe(true);
        expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.securityContext?.capabilities?.drop, c.name).toEqual(["ALL"]);
        expect(c.resources?.requests?.cpu && c.resources?.requests?.memory, c.name).toBeTruthy();
        expect(c.resources?.limits?.memory, c.name).toBeTruthy();
      }
    });

    it("keeps data and certificates on volumes, Redis URL from a Secret, and a grace period covering the drain", () => {
      const mounts = container().volumeMounts ?? [];
      const mounted = (path: string) => mounts.some((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
      expect(mounted(env("TT_RPC_DATA_DIR")!.value!)).toBe(true);
      // The SQLite store survives rescheduling: a claim of its own, one replica (one writer), Recreate.
      const data = pod.volumes?.find((v) => v.name === "data");
      expect(data?.persistentVolumeClaim?.claimName).toBe(`${deployment!.metadata!.name}-data`);
      expect(inBase("PersistentVolumeClaim", `${deployment!.metadata!.name}-data`)?.spec.accessModes).toEqual(["ReadWriteOnce"]);
      expect([deployment!.spec!.replicas, deployment!.spec!.strategy?.type]).toEqual([1, "Recreate"]);
      expect(mounted(env("TT_RPC_CERTS_DIR")!.value!)).toBe(true);
      expect(env("TT_RPC_REDIS_URL")?.valueFrom?.secretKeyRef).toEqual({ name: "tt-rpc-redis", key: "url" });
      const preStop = container().lifecycle?.preStop?.sleep?.seconds ?? 0;
      const drainDelaySeconds = Number(env("TT_RPC_DRAIN_DELAY_MS")?.value) / 1000;
      expect(drainDelaySeconds).toBeGreaterThan(0);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drainDelaySeconds + DRAIN_GRACE_SECONDS + 1);
    });
  });

  describe("identity layout (the init container, run for real)", () => {
    let root: string;
    let pkiDir: string;
    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), "tt-deploy-pod-"));
      pkiDir = join(root, "issuer");
      await initPki({ dir: pkiDir, env: "dev" });
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    const inPod = (podRoot: string, path: string) => join(podRoot, path);

    it.each(serviceContracts.map((c) => c.name))("%s: the loader accepts the linked files and follows a rotation", async (name) => {
      const podRoot = join(root, name);
      const p = pkiPaths(pkiDir);
      // What the mounts hold: csi-driver-spiffe's volume (tls.crt, tls.key, ca.crt), the JWT Secret, the bundle ConfigMap.
      const place = (from: string, to: string) => {
        mkdirSync(dirname(inPod(podRoot, to)), { recursive: true });
        copyFileSync(from, inPod(podRoot, to));
      };
      place(p.workload(name).cert, `${POD_PATHS.svid}/tls.crt`);
      place(p.workload(name).key, `${POD_PATHS.svid}/tls.key`);
      place(p.caCert, `${POD_PATHS.svid}/ca.crt`);
      place(p.workload(name).jwt, `${POD_PATHS.jwt}/jwt-signing.jwk.json`);
      place(p.bundleJson, `${POD_PATHS.trust}/bundle.json`);
      mkdirSync(inPod(podRoot, POD_PATHS.certs), { recursive: true });

      const pod: IPodSpec = inBase("Deployment", name)!.spec.template.spec;
      const init = pod.initContainers!.find((c) => c.name === "identity-layout")!;
      const [cmd, flag, script] = init.command!;
      expect([cmd, flag]).toEqual(["node", "-e"]);
      // Every path the script touches is one of the pod paths (rewritten here under a temp root).
      const rewritten = script!.replaceAll('"/var/run/tt-rpc/', `"${podRoot}/var/run/tt-rpc/`);
      expect(rewritten.match(/"\/var\/run/g)).toBeNull();
      await promisify(execFile)(process.execPath, ["-e", rewritten], { timeout: 10_000 });
      // The main container mounts every link target.
      const mounts = pod.containers[0]!.volumeMounts!.map((m) => m.mountPath);
      for (const target of [POD_PATHS.svid, POD_PATHS.jwt, POD_PATHS.trust, POD_PATHS.certs]) expect(mounts).toContain(target);

      const material = await createMaterialSource({ dir: inPod(podRoot, POD_PATHS.certs), workload: name, pollMs: 0, debounceMs: 0 });
      try {
        expect(material.current().workload.spiffeId).toBe(workloadSpiffeId(name, "dev"));
        // The issuer rotates; the driver swaps the files in its volume; the reload sees it through the links.
        const before = material.current().workload.certPem;
        await rotateLeaf({ dir: pkiDir, workload: name });
        for (const f of ["tls.key", "tls.crt"] as const) {
          const target = inPod(podRoot, `${POD_PATHS.svid}/${f}`);
          copyFileSync(f === "tls.crt" ? p.workload(name).cert : p.workload(name).key, `${target}.new`);
          renameSync(`${target}.new`, target);
        }
        expect(await material.refresh()).toBe(true);
        expect(material.current().workload.certPem).not.toBe(before);
      } finally {
        material.close();
      }
    });
  });
});
