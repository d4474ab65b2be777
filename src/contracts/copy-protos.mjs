// `npm pack` of @tickettoken/contracts (prepack): the package ships the .proto sources it was
// generated from (the repository's proto/, without the buf breaking baseline).
import { cpSync, rmSync } from "node:fs";

const here = new URL(".", import.meta.url);
const target = new URL("proto/", here);
rmSync(target, { recursive: true, force: true });
cpSync(new URL("../../proto/", here), target, { recursive: true, filter: (src) => !src.endsWith(".binpb") });
