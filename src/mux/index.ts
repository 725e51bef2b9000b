/**
 * muxado v2 stream multiplexing, wire-compatible with Go's `github.com/inconshreveable/muxado` and
 * `golang.ngrok.com/muxado/v2`: sessions, streams, typed streams and heartbeats.
 *
 * @since 0.1.0
 */
export * as Frame from "./Frame.js"
export * as Heartbeat from "./Heartbeat.js"
export * as MuxError from "./MuxError.js"
export * as Session from "./Session.js"
export * as Stream from "./Stream.js"
export * as TypedSession from "./TypedSession.js"
