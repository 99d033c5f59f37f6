/**
 * The part of sodium-native (libsodium bindings, prebuilt per platform in the npm package) this
 * project calls. Typed here because @types/sodium-native describes an older major version.
 */
declare module 'sodium-native' {
  /** A CommonJS module: imported as its default export. */
  const sodium: {
    /** libsodium `crypto_sign_verify_detached`; throws on wrong-length signature or key. */
    crypto_sign_verify_detached(
      signature: Uint8Array,
      message: Uint8Array,
      publicKey: Uint8Array,
    ): boolean;
  };
  export default sodium;
}
