/**
 * The one place that imports @peculiar/x509. Its DI container (tsyringe)
 * needs the Reflect metadata polyfill loaded first; ESM evaluates imports in
 * order, so "reflect-metadata" runs before the library.
 */
import "reflect-metadata";
export * from "@peculiar/x509";
