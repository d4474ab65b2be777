/**
 * Hand validation with one shape of answer: collect every violation, then
 * throw one INVALID_ARGUMENT listing them all (a caller fixes its request in
 * one round trip).
 */
import { invalidArgument, type FieldViolation } from "./errors.ts";

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/;
const CURRENCY = /^[A-Z]{3}$/;
const E164 = /^\+[1-9][0-9]{7,14}$/;

export class Validator {
  private readonly violations: FieldViolation[] = [];

  fail(field: string, description: string): this {
    this.violations.push({ field, description });
    return this;
  }

  /** A non-empty identifier (letters, digits, . _ : -; at most 128). */
  id(field: string, value: string): this {
    if (value === "") return this.fail(field, "required");
    if (!ID.test(value)) return this.fail(field, "must be an identifier (letters, digits, . _ : -; at most 128)");
    return this;
  }

  /** Optional identifier: empty is allowed. */
  optionalId(field: string, value: string): this {
    return value === "" ? this : this.id(field, value);
  }

  text(field: string, value: string, max = 256): this {
    if (value.trim() === "") return this.fail(field, "required");
    if (value.length > max) return this.fail(field, `at most ${max} characters`);
    return this;
  }

  optionalText(field: string, value: string, max = 256): this {
    return value.length > max ? this.fail(field, `at most ${max} characters`) : this;
  }

  email(field: string, value: string): this {
    return EMAIL.test(value) ? this : this.fail(field, "must be an email address");
  }

  /** A phone number in E.164 form, e.g. +15550100001. */
  phone(field: string, value: string): this {
    return E164.test(value) ? this : this.fail(field, "must be an E.164 phone number, e.g. +15550100001");
  }

  currency(field: string, value: string): this {
    return CURRENCY.test(value) ? this : this.fail(field, "must be an ISO 4217 code, e.g. USD");
  }

  /** Integer within [min, max] (bigint or number). */
  range(field: string, value: number | bigint, min: number | bigint, max: number | bigint): this {
    if (typeof value === "number" && !Number.isInteger(value)) return this.fail(field, "must be an integer");
    if (value < min || value > max) return this.fail(field, `must be between ${min} and ${max}`);
    return this;
  }

  /** An enum field that must be set to a known value. */
  enumValue(field: string, value: number, known: object): this {
    if (value === 0) return this.fail(field, "required");
    if (!Object.values(known).includes(value)) return this.fail(field, "unknown value");
    return this;
  }

  check(condition: boolean, field: string, description: string): this {
    return condition ? this : this.fail(field, description);
  }

  /** Throws INVALID_ARGUMENT with every violation found, if any. */
  done(): void {
    if (this.violations.length > 0) throw invalidArgument(this.violations);
  }
}

export function validate(): Validator {
  return new Validator();
}
