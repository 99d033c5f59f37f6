/**
 * Typed errors (Lodestar style): every layer declares a string enum of codes and throws
 * `HyperMeshError<Code>` so callers switch on `error.code` instead of parsing messages.
 */
export class HyperMeshError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(
    code: Code,
    message: string,
    detail: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    // Subclasses need no constructor of their own to be named after themselves.
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
  }
}

export function isHyperMeshError<Code extends string>(
  value: unknown,
  code?: Code,
): value is HyperMeshError<Code> {
  return value instanceof HyperMeshError && (code === undefined || value.code === code);
}
