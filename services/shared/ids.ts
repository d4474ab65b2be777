/** New row ids: a readable prefix and a random UUID. */
import { randomUUID } from "node:crypto";

export function newId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}
