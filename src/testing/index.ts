/**
 * Test harnesses: an in-memory network with fault injection.
 *
 * @since 0.1.0
 */
export * as MemoryNetwork from "./MemoryNetwork.js"
