/**
 * Where a service lives. Today's `*_SERVICE_URL` variables keep working:
 * their host is reused with the service's RPC port.
 */
export function resolveAddress(service: string, defaultPort: number, env: NodeJS.ProcessEnv): string {
  const key = addressEnvKey(service);
  const explicit = env[`${key}_RPC_ADDRESS`];
  if (explicit) return validateHostPort(explicit, `${key}_RPC_ADDRESS`);
  const legacy = env[`${key}_SERVICE_URL`];
  if (legacy) {
    let url: URL;
    try {
      url = new URL(legacy);
    } catch {
      throw new Error(`${key}_SERVICE_URL is not a URL: ${JSON.stringify(legacy)}`);
    }
    return `${url.hostname}:${defaultPort}`;
  }
  return `localhost:${defaultPort}`;
}

function validateHostPort(value: string, name: string): string {
  const m = /^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value) ?? /^dns:\/\/\/.+:(\d{1,5})$/.exec(value);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`${name} must be host:port, got ${JSON.stringify(value)}`);
  return value;
}

/** The variable prefix of a service's address: "ticket-service" -> "TICKET" (TICKET_RPC_ADDRESS, TICKET_SERVICE_URL). */
export function addressEnvKey(service: string): string {
  return service.replace(/-service$/, "").replace(/-/g, "_").toUpperCase();
}
