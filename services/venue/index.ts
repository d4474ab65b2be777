/** venue-service: venues and venue staff (no downstream calls). */
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { venueService } from "./handlers.ts";
import { seedVenues } from "./seed.ts";
import { createSqliteVenueStore } from "./store.ts";

export const venueModule: ServiceModule = {
  name: "venue-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedVenues,
  create: (rt) => venueService(createSqliteVenueStore(rt.db)),
};
