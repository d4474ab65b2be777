/**
 * Writes deploy/base/: one file per service contract (ServiceAccount and
 * the Role csi-driver-spiffe needs, headless Service, Deployment,
 * PodDisruptionBudget) and the kustomization
 * listing them. Generated from the contracts, so ports and downstream
 * addresses cannot drift from them; test/deploy/manifests.test.ts checks the
 * committed files equal what this renders.
 *
 *   npx tsx deploy/generate.ts
 *
 * Numbers that come from the runtime (README "Kubernetes"):
 * - gRPC port = the contract's default port; ops port = that + 2000.
 * - terminationGracePeriodSeconds = drain delay + drain grace + margin:
 *   on SIGTERM `tt-service` (`tt-rpc serve`) reports NOT_SERVING (readiness 503) at once
 *   and keeps serving for the drain delay (TT_RPC_DRAIN_DELAY_MS) while
 *   endpoints, resolvers and health-checking clients drop the pod, then
 *   stops accepting and lets in-flight calls finish for up to 10 s (the
 *   grace). No preStop pause: it would keep the pod SERVING meanwhile.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { serviceContracts } from "../src/contracts/gen/contracts.ts";
import type { ServiceContract } from "../src/runtime/contract/types.ts";
import { pkiPaths } from "../src/devtools/pki/dev-ca.ts";
import { addressVariable } from "../src/runtime/client/address.ts";

export const OPS_PORT_OFFSET = 2000;
/** `tt-service`'s drain delay (TT_RPC_DRAIN_DELAY_MS), set explicitly in the pod. */
export const DRAIN_DELAY_SECONDS = 5;
/** src/runtime/server/server.ts stop(): default grace for in-flight calls. */
export const DRAIN_GRACE_SECONDS = 10;
export const EXIT_MARGIN_SECONDS = 5;
export const IMAGE = "tt-rpc";
/** UID/GID the container runs as (non-root); csi-driver-spiffe hands the key to this group. */
export const RUN_AS = 10001;

/** Where things live inside the pod. */
export const POD_PATHS = {
  /** The PKI directory the material loader reads (src/runtime/identity/pki-files.ts layout), made of links. */
  certs: "/var/run/tt-rpc/certs",
  /** csi-driver-spiffe's volume: tls.crt, tls.key, ca.crt, rotated in place. */
  svid: "/var/run/tt-rpc/svid",
  /** Secret <service>-jwt-signing: jwt-signing.jwk.json. */
  jwt: "/var/run/tt-rpc/jwt",
  /** ConfigMap tt-rpc-trust-bundle: bundle.json. */
  trust: "/var/run/tt-rpc/trust",
  data: "/var/lib/tt-rpc",
  tmp: "/tmp",
} as const;

const PART_OF = "tickettoken";
const CLUSTER_DOMAIN = "svc.cluster.local";

type Contract = (typeof serviceContracts)[number] | ServiceContract;

/** Services whose contract lets `caller` call them: the addresses its Deployment needs. */
export function downstreamsOf(caller: string, contracts: readonly Contract[] = serviceContracts): Contract[] {
  return contracts.filter(
    (c) => c.name !== caller && Object.values(c.methods as Record<string, { access: { callers: readonly string[] } }>).some((m) => m.access.callers.includes(caller)),
  );
}

/** `dns:///<svc>.<ns>.svc.cluster.local:<port>`, the namespace filled in by Kubernetes from POD_NAMESPACE. */
export function downstreamAddress(c: Contract): string {
  return `dns:///${c.name}.$(POD_NAMESPACE).${CLUSTER_DOMAIN}:${c.defaultPort}`;
}

/**
 * The init step that lays the mounted files out as the loader expects:
 * <certs>/<service>/{tls.crt,tls.key,jwt-signing.jwk.json} and
 * <certs>/bundle/, as symlinks (so rotated files are read through them).
 * Plain Node: the image has no shell guarantee, it always has node.
 */
export function identityLayoutScript(service: string): string {
  const p = pkiPaths(POD_PATHS.certs);
  const w = p.workload(service);
  const links: [string, string][] = [
    [w.cert, `${POD_PATHS.svid}/tls.crt`],
    [w.key, `${POD_PATHS.svid}/tls.key`],
    [w.jwt, `${POD_PATHS.jwt}/jwt-signing.jwk.json`],
    [p.bundleDir, POD_PATHS.trust],
  ];
  return [
    `const fs = require("node:fs");`,
    `fs.mkdirSync(${JSON.stringify(w.dir)}, { recursive: true });`,
    ...links.map(([link, target]) => `fs.symlinkSync(${JSON.stringify(target)}, ${JSON.stringify(link)});`),
  ].join("\n");
}

const hardened = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
};

function labels(service: string): Record<string, string> {
  return { "app.kubernetes.io/name": service, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": "rpc" };
}

function objectsFor(c: Contract): object[] {
  const name = c.name;
  const grpcPort = c.defaultPort;
  const opsPort = grpcPort + OPS_PORT_OFFSET;
  const selector = { "app.kubernetes.io/name": name };
  const metadata = { name, labels: labels(name) };
  const httpProbe = (path: string, extra: object) => ({ httpGet: { path, port: "ops" }, ...extra });
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata, automountServiceAccountToken: false },
    // csi-driver-spiffe requests the pod's certificate with the pod's service account token.
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: `${name}-svid`, labels: labels(name) },
      rules: [{ apiGroups: ["cert-manager.io"], resources: ["certificaterequests"], verbs: ["create"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `${name}-svid`, labels: labels(name) },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${name}-svid` },
      subjects: [{ kind: "ServiceAccount", name }],
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata,
      spec: {
        // Headless: DNS answers every ready pod, clients balance over them (dns:/// + round_robin).
        clusterIP: "None",
        selector,
        ports: [
          { name: "grpc", port: grpcPort, targetPort: "grpc", protocol: "TCP" },
          { name: "ops", port: opsPort, targetPort: "ops", protocol: "TCP" },
        ],
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        // One replica while the store is the embedded SQLite: one writer, one file on a persistent volume.
        // Replicas need the store behind a shared database (PostgreSQL behind the store interface); the
        // framework side (dns:/// + round_robin, Redis for dedupe and replay) already runs N (README "Kubernetes").
        replicas: 1,
        selector: { matchLabels: selector },
        // The volume is ReadWriteOnce and SQLite has one writer: the old pod goes before the new one starts.
        strategy: { type: "Recreate" },
        template: {
          metadata: {
            labels: labels(name),
            annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(opsPort), "prometheus.io/path": "/metrics" },
          },
          spec: {
            // csi-driver-spiffe issues spiffe://<trust domain>/ns/<namespace>/sa/<service account>: our identity.
            serviceAccountName: name,
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: DRAIN_DELAY_SECONDS + DRAIN_GRACE_SECONDS + EXIT_MARGIN_SECONDS,
            securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, fsGroup: RUN_AS, seccompProfile: { type: "RuntimeDefault" } },
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
            ],
            initContainers: [
              {
                name: "identity-layout",
                image: IMAGE,
                command: ["node", "-e", identityLayoutScript(name)],
                securityContext: hardened,
                resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { cpu: "100m", memory: "64Mi" } },
                volumeMounts: [{ name: "certs", mountPath: POD_PATHS.certs }],
              },
            ],
            containers: [
              {
                name,
                image: IMAGE,
                command: ["tt-service", name, "--host", "0.0.0.0", "--port", String(grpcPort)],
                ports: [
                  { name: "grpc", containerPort: grpcPort, protocol: "TCP" },
                  { name: "ops", containerPort: opsPort, protocol: "TCP" },
                ],
                env: [
                  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                  { name: "TT_RPC_CERTS_DIR", value: POD_PATHS.certs },
                  { name: "TT_RPC_DATA_DIR", value: POD_PATHS.data },
                  { name: "TT_RPC_OPS_HOST", value: "0.0.0.0" },
                  { name: "TT_RPC_OPS_PORT", value: String(opsPort) },
                  { name: "TT_RPC_LOG_LEVEL", value: "info" },
                  { name: "TT_RPC_DRAIN_DELAY_MS", value: String(DRAIN_DELAY_SECONDS * 1000) },
                  { name: "TT_RPC_REDIS_URL", valueFrom: { secretKeyRef: { name: "tt-rpc-redis", key: "url" } } },
                  { name: "NODE_OPTIONS", value: "--max-old-space-size=384" },
                  ...downstreamsOf(name).map((d) => ({ name: addressVariable(d.name), value: downstreamAddress(d) })),
                ],
                resources: { requests: { cpu: "100m", memory: "192Mi" }, limits: { cpu: "1", memory: "512Mi" } },
                startupProbe: httpProbe("/healthz", { periodSeconds: 2, failureThreshold: 30 }),
                livenessProbe: httpProbe("/healthz", { periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 }),
                readinessProbe: httpProbe("/readyz", { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 }),
                securityContext: hardened,
                volumeMounts: [
                  { name: "certs", mountPath: POD_PATHS.certs, readOnly: true },
                  { name: "svid", mountPath: POD_PATHS.svid, readOnly: true },
                  { name: "jwt-signing", mountPath: POD_PATHS.jwt, readOnly: true },
                  { name: "trust-bundle", mountPath: POD_PATHS.trust, readOnly: true },
                  { name: "data", mountPath: POD_PATHS.data },
                  { name: "tmp", mountPath: POD_PATHS.tmp },
                ],
              },
            ],
            volumes: [
              { name: "certs", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
              {
                name: "svid",
                csi: { driver: "spiffe.csi.cert-manager.io", readOnly: true, volumeAttributes: { "spiffe.csi.cert-manager.io/fs-group": String(RUN_AS) } },
              },
              // 0440 (288): readable by the fsGroup, i.e. the service, only.
              { name: "jwt-signing", secret: { secretName: `${name}-jwt-signing`, defaultMode: 0o440 } },
              { name: "trust-bundle", configMap: { name: "tt-rpc-trust-bundle" } },
              // The service's SQLite database: acknowledged writes survive pod restarts and rescheduling.
              { name: "data", persistentVolumeClaim: { claimName: `${name}-data` } },
              { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: `${name}-data`, labels: labels(name) },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    },
    {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata,
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
  ];
}

// No anchors/aliases: every object spelled out, as reviewers and kubectl diff expect.
const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;

const HEADER = "# Generated by deploy/generate.ts from the contracts: edit the generator, not this file.\n";

/** File name (under deploy/base) -> content. */
export function renderBase(contracts: readonly Contract[] = serviceContracts): Map<string, string> {
  const files = new Map<string, string>();
  for (const c of contracts) {
    files.set(`${c.name}.yaml`, HEADER + objectsFor(c).map((o) => stringify(o, YAML_OPTIONS)).join("---\n"));
  }
  const kustomization = { apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", resources: [...files.keys()] };
  const imageNote = `# The image "${IMAGE}" is a placeholder: overlays set it (images: - name: ${IMAGE}, newName: <registry>/tt-rpc, newTag: <version>).\n`;
  files.set("kustomization.yaml", HEADER + imageNote + stringify(kustomization, YAML_OPTIONS));
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = fileURLToPath(new URL("./base/", import.meta.url));
  for (const [file, text] of renderBase()) writeFileSync(dir + file, text);
  console.log(`wrote ${renderBase().size} files in ${dir}`);
}
