/**
 * The AMQP 0-9-1 method table with RabbitMQ's extensions, as data: classes, methods, typed arguments in wire
 * order with their defaults, and which methods are synchronous, carry content or answer another.
 *
 * Every method codec, Schema and TypeScript type of `Methods` is derived from this table.
 *
 * @since 0.1.0
 */

/**
 * The wire types of method arguments.
 *
 * @since 0.1.0
 * @category models
 */
export type ArgType = "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "bit" | "table"

/**
 * One argument: `[name, type]`, or `[name, type, default]` when the spec gives a default.
 *
 * Defaults are written as wire-neutral data: a longstr default is its text (encoded as UTF-8), a table default is
 * the empty table `"{}"`.
 *
 * @since 0.1.0
 * @category models
 */
export type ArgDefinition =
  | readonly [name: string, type: ArgType]
  | readonly [name: string, type: ArgType, defaultValue: number | string | boolean]

/**
 * @since 0.1.0
 * @category models
 */
export interface MethodDefinition {
  /** `ConnectionStart`, `BasicPublish`, … */
  readonly tag: string
  /** `connection.start`, `basic.publish`, … (spec XML spelling). */
  readonly name: string
  readonly classId: number
  readonly methodId: number
  readonly args: ReadonlyArray<ArgDefinition>
  /** The sender waits for a reply (unless it sets `nowait`). */
  readonly synchronous: boolean
  /** The tags of the methods that answer this one. */
  readonly replies: ReadonlyArray<string>
  /** Followed by a content header and body frames. */
  readonly content: boolean
  /** A RabbitMQ extension rather than AMQP 0-9-1 proper. */
  readonly extension: boolean
}

const m = <const Tag extends string, const Args extends ReadonlyArray<ArgDefinition>>(
  classId: number,
  methodId: number,
  tag: Tag,
  name: string,
  args: Args,
  options: { readonly replies?: ReadonlyArray<string>; readonly content?: boolean; readonly extension?: boolean } = {}
) => ({
  tag,
  name,
  classId,
  methodId,
  args,
  synchronous: options.replies !== undefined,
  replies: options.replies ?? [],
  content: options.content ?? false,
  extension: options.extension ?? false
})

/**
 * Every method, grouped by class in id order.
 *
 * @since 0.1.0
 * @category data
 */
export const methods = [
  // connection (10), always on channel 0
  m(10, 10, "ConnectionStart", "connection.start", [
    ["versionMajor", "octet", 0],
    ["versionMinor", "octet", 9],
    ["serverProperties", "table"],
    ["mechanisms", "longstr", "PLAIN"],
    ["locales", "longstr", "en_US"]
  ], { replies: ["ConnectionStartOk"] }),
  m(10, 11, "ConnectionStartOk", "connection.start-ok", [
    ["clientProperties", "table"],
    ["mechanism", "shortstr", "PLAIN"],
    ["response", "longstr"],
    ["locale", "shortstr", "en_US"]
  ]),
  m(10, 20, "ConnectionSecure", "connection.secure", [["challenge", "longstr"]], { replies: ["ConnectionSecureOk"] }),
  m(10, 21, "ConnectionSecureOk", "connection.secure-ok", [["response", "longstr"]]),
  m(10, 30, "ConnectionTune", "connection.tune", [
    ["channelMax", "short", 0],
    ["frameMax", "long", 0],
    ["heartbeat", "short", 0]
  ], { replies: ["ConnectionTuneOk"] }),
  m(10, 31, "ConnectionTuneOk", "connection.tune-ok", [
    ["channelMax", "short", 0],
    ["frameMax", "long", 0],
    ["heartbeat", "short", 0]
  ]),
  m(10, 40, "ConnectionOpen", "connection.open", [
    ["virtualHost", "shortstr", "/"],
    ["capabilities", "shortstr", ""],
    ["insist", "bit", false]
  ], { replies: ["ConnectionOpenOk"] }),
  m(10, 41, "ConnectionOpenOk", "connection.open-ok", [["knownHosts", "shortstr", ""]]),
  m(10, 50, "ConnectionClose", "connection.close", [
    ["replyCode", "short"],
    ["replyText", "shortstr", ""],
    ["classId", "short"],
    ["methodId", "short"]
  ], { replies: ["ConnectionCloseOk"] }),
  m(10, 51, "ConnectionCloseOk", "connection.close-ok", []),
  m(10, 60, "ConnectionBlocked", "connection.blocked", [["reason", "shortstr", ""]], { extension: true }),
  m(10, 61, "ConnectionUnblocked", "connection.unblocked", [], { extension: true }),
  m(10, 70, "ConnectionUpdateSecret", "connection.update-secret", [
    ["newSecret", "longstr"],
    ["reason", "shortstr"]
  ], { replies: ["ConnectionUpdateSecretOk"], extension: true }),
  m(10, 71, "ConnectionUpdateSecretOk", "connection.update-secret-ok", [], { extension: true }),

  // channel (20)
  m(20, 10, "ChannelOpen", "channel.open", [["outOfBand", "shortstr", ""]], { replies: ["ChannelOpenOk"] }),
  m(20, 11, "ChannelOpenOk", "channel.open-ok", [["channelId", "longstr", ""]]),
  m(20, 20, "ChannelFlow", "channel.flow", [["active", "bit"]], { replies: ["ChannelFlowOk"] }),
  m(20, 21, "ChannelFlowOk", "channel.flow-ok", [["active", "bit"]]),
  m(20, 40, "ChannelClose", "channel.close", [
    ["replyCode", "short"],
    ["replyText", "shortstr", ""],
    ["classId", "short"],
    ["methodId", "short"]
  ], { replies: ["ChannelCloseOk"] }),
  m(20, 41, "ChannelCloseOk", "channel.close-ok", []),

  // access (30), legacy: decode it, never send it
  m(30, 10, "AccessRequest", "access.request", [
    ["realm", "shortstr", "/data"],
    ["exclusive", "bit", false],
    ["passive", "bit", true],
    ["active", "bit", true],
    ["write", "bit", true],
    ["read", "bit", true]
  ], { replies: ["AccessRequestOk"] }),
  m(30, 11, "AccessRequestOk", "access.request-ok", [["ticket", "short", 1]]),

  // exchange (40)
  m(40, 10, "ExchangeDeclare", "exchange.declare", [
    ["ticket", "short", 0],
    ["exchange", "shortstr"],
    ["type", "shortstr", "direct"],
    ["passive", "bit", false],
    ["durable", "bit", false],
    ["autoDelete", "bit", false],
    ["internal", "bit", false],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["ExchangeDeclareOk"] }),
  m(40, 11, "ExchangeDeclareOk", "exchange.declare-ok", []),
  m(40, 20, "ExchangeDelete", "exchange.delete", [
    ["ticket", "short", 0],
    ["exchange", "shortstr"],
    ["ifUnused", "bit", false],
    ["nowait", "bit", false]
  ], { replies: ["ExchangeDeleteOk"] }),
  m(40, 21, "ExchangeDeleteOk", "exchange.delete-ok", []),
  m(40, 30, "ExchangeBind", "exchange.bind", [
    ["ticket", "short", 0],
    ["destination", "shortstr"],
    ["source", "shortstr"],
    ["routingKey", "shortstr", ""],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["ExchangeBindOk"], extension: true }),
  m(40, 31, "ExchangeBindOk", "exchange.bind-ok", [], { extension: true }),
  m(40, 40, "ExchangeUnbind", "exchange.unbind", [
    ["ticket", "short", 0],
    ["destination", "shortstr"],
    ["source", "shortstr"],
    ["routingKey", "shortstr", ""],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["ExchangeUnbindOk"], extension: true }),
  // 51, not 41.
  m(40, 51, "ExchangeUnbindOk", "exchange.unbind-ok", [], { extension: true }),

  // queue (50)
  m(50, 10, "QueueDeclare", "queue.declare", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["passive", "bit", false],
    ["durable", "bit", false],
    ["exclusive", "bit", false],
    ["autoDelete", "bit", false],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["QueueDeclareOk"] }),
  m(50, 11, "QueueDeclareOk", "queue.declare-ok", [
    ["queue", "shortstr"],
    ["messageCount", "long"],
    ["consumerCount", "long"]
  ]),
  m(50, 20, "QueueBind", "queue.bind", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr", ""],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["QueueBindOk"] }),
  m(50, 21, "QueueBindOk", "queue.bind-ok", []),
  m(50, 30, "QueuePurge", "queue.purge", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["nowait", "bit", false]
  ], { replies: ["QueuePurgeOk"] }),
  m(50, 31, "QueuePurgeOk", "queue.purge-ok", [["messageCount", "long"]]),
  m(50, 40, "QueueDelete", "queue.delete", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["ifUnused", "bit", false],
    ["ifEmpty", "bit", false],
    ["nowait", "bit", false]
  ], { replies: ["QueueDeleteOk"] }),
  m(50, 41, "QueueDeleteOk", "queue.delete-ok", [["messageCount", "long"]]),
  // No nowait (errata §24).
  m(50, 50, "QueueUnbind", "queue.unbind", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr", ""],
    ["arguments", "table", "{}"]
  ], { replies: ["QueueUnbindOk"] }),
  m(50, 51, "QueueUnbindOk", "queue.unbind-ok", []),

  // basic (60)
  m(60, 10, "BasicQos", "basic.qos", [
    ["prefetchSize", "long", 0],
    ["prefetchCount", "short", 0],
    ["global", "bit", false]
  ], { replies: ["BasicQosOk"] }),
  m(60, 11, "BasicQosOk", "basic.qos-ok", []),
  m(60, 20, "BasicConsume", "basic.consume", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["consumerTag", "shortstr", ""],
    ["noLocal", "bit", false],
    ["noAck", "bit", false],
    ["exclusive", "bit", false],
    ["nowait", "bit", false],
    ["arguments", "table", "{}"]
  ], { replies: ["BasicConsumeOk"] }),
  m(60, 21, "BasicConsumeOk", "basic.consume-ok", [["consumerTag", "shortstr"]]),
  m(60, 30, "BasicCancel", "basic.cancel", [
    ["consumerTag", "shortstr"],
    ["nowait", "bit", false]
  ], { replies: ["BasicCancelOk"] }),
  m(60, 31, "BasicCancelOk", "basic.cancel-ok", [["consumerTag", "shortstr"]]),
  m(60, 40, "BasicPublish", "basic.publish", [
    ["ticket", "short", 0],
    ["exchange", "shortstr", ""],
    ["routingKey", "shortstr", ""],
    ["mandatory", "bit", false],
    ["immediate", "bit", false]
  ], { content: true }),
  m(60, 50, "BasicReturn", "basic.return", [
    ["replyCode", "short"],
    ["replyText", "shortstr", ""],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"]
  ], { content: true }),
  m(60, 60, "BasicDeliver", "basic.deliver", [
    ["consumerTag", "shortstr"],
    ["deliveryTag", "longlong"],
    ["redelivered", "bit", false],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"]
  ], { content: true }),
  m(60, 70, "BasicGet", "basic.get", [
    ["ticket", "short", 0],
    ["queue", "shortstr", ""],
    ["noAck", "bit", false]
  ], { replies: ["BasicGetOk", "BasicGetEmpty"] }),
  m(60, 71, "BasicGetOk", "basic.get-ok", [
    ["deliveryTag", "longlong"],
    ["redelivered", "bit", false],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"],
    ["messageCount", "long"]
  ], { content: true }),
  m(60, 72, "BasicGetEmpty", "basic.get-empty", [["clusterId", "shortstr", ""]]),
  m(60, 80, "BasicAck", "basic.ack", [
    ["deliveryTag", "longlong", 0],
    ["multiple", "bit", false]
  ]),
  m(60, 90, "BasicReject", "basic.reject", [
    ["deliveryTag", "longlong"],
    ["requeue", "bit", true]
  ]),
  m(60, 100, "BasicRecoverAsync", "basic.recover-async", [["requeue", "bit", false]]),
  // Synchronous although the XML does not flag it (errata §28).
  m(60, 110, "BasicRecover", "basic.recover", [["requeue", "bit", false]], { replies: ["BasicRecoverOk"] }),
  m(60, 111, "BasicRecoverOk", "basic.recover-ok", []),
  m(60, 120, "BasicNack", "basic.nack", [
    ["deliveryTag", "longlong", 0],
    ["multiple", "bit", false],
    ["requeue", "bit", true]
  ], { extension: true }),

  // confirm (85, RabbitMQ)
  m(85, 10, "ConfirmSelect", "confirm.select", [["nowait", "bit", false]], {
    replies: ["ConfirmSelectOk"],
    extension: true
  }),
  m(85, 11, "ConfirmSelectOk", "confirm.select-ok", [], { extension: true }),

  // tx (90)
  m(90, 10, "TxSelect", "tx.select", [], { replies: ["TxSelectOk"] }),
  m(90, 11, "TxSelectOk", "tx.select-ok", []),
  m(90, 20, "TxCommit", "tx.commit", [], { replies: ["TxCommitOk"] }),
  m(90, 21, "TxCommitOk", "tx.commit-ok", []),
  m(90, 30, "TxRollback", "tx.rollback", [], { replies: ["TxRollbackOk"] }),
  m(90, 31, "TxRollbackOk", "tx.rollback-ok", [])
] as const satisfies ReadonlyArray<MethodDefinition>

/**
 * The classes and their ids.
 *
 * @since 0.1.0
 * @category data
 */
export const classes = [
  { id: 10, name: "connection" },
  { id: 20, name: "channel" },
  { id: 30, name: "access" },
  { id: 40, name: "exchange" },
  { id: 50, name: "queue" },
  { id: 60, name: "basic" },
  { id: 85, name: "confirm", extension: true },
  { id: 90, name: "tx" }
] as const

/**
 * The basic class's content properties in flag order (bit 15 first), with their wire types.
 *
 * @since 0.1.0
 * @category data
 */
export const basicProperties = [
  ["contentType", "shortstr"],
  ["contentEncoding", "shortstr"],
  ["headers", "table"],
  ["deliveryMode", "octet"],
  ["priority", "octet"],
  ["correlationId", "shortstr"],
  ["replyTo", "shortstr"],
  ["expiration", "shortstr"],
  ["messageId", "shortstr"],
  ["timestamp", "timestamp"],
  ["type", "shortstr"],
  ["userId", "shortstr"],
  ["appId", "shortstr"],
  ["clusterId", "shortstr"]
] as const
