/**
 * Every AMQP 0-9-1 method (with RabbitMQ's extensions) as a typed value, derived from the data in `Spec`.
 *
 * A method is a plain object: its `_tag` (`"BasicPublish"`) and its arguments by name, typed per wire type:
 * octet/short/long → `number`, longlong → `bigint`, shortstr → `string` (≤ 255 bytes of UTF-8),
 * longstr → `Uint8Array`, bit → `boolean`, table → `Table.FieldTable`.
 *
 * @example
 * import { Methods } from "effect-wire/amqp"
 *
 * const declare = Methods.make("QueueDeclare", { queue: "jobs", durable: true })
 * // { _tag: "QueueDeclare", ticket: 0, queue: "jobs", passive: false, durable: true, exclusive: false, … }
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Types from "effect/Types"
import { AmqpError } from "./AmqpError.js"
import * as Codec from "./internal/methods.js"
import * as Wire from "./internal/wire.js"
import type * as Spec from "./Spec.js"
import * as Table from "./Table.js"

/**
 * The in-memory type of each wire type.
 *
 * @since 0.1.0
 * @category models
 */
export interface ArgTypes {
  readonly octet: number
  readonly short: number
  readonly long: number
  readonly longlong: bigint
  readonly shortstr: string
  readonly longstr: Uint8Array
  readonly bit: boolean
  readonly table: Table.FieldTable
}

type Definitions = (typeof Spec.methods)[number]

type ArgsOf<A extends ReadonlyArray<Spec.ArgDefinition>> = {
  readonly [E in A[number] as E[0]]: ArgTypes[E[1]]
}

type RequiredArgsOf<A extends ReadonlyArray<Spec.ArgDefinition>> = {
  readonly [E in A[number] as E extends readonly [string, Spec.ArgType, unknown] ? never : E[0]]: ArgTypes[E[1]]
}

type OptionalArgsOf<A extends ReadonlyArray<Spec.ArgDefinition>> = {
  readonly [E in A[number] as E extends readonly [string, Spec.ArgType, unknown] ? E[0] : never]?: ArgTypes[E[1]]
}

/**
 * The method value of one definition.
 *
 * @since 0.1.0
 * @category models
 */
export type MethodOf<D extends Spec.MethodDefinition> = Types.Simplify<{ readonly _tag: D["tag"] } & ArgsOf<D["args"]>>

/**
 * Any method.
 *
 * @since 0.1.0
 * @category models
 */
export type Method = Definitions extends infer D ? D extends Spec.MethodDefinition ? MethodOf<D> : never : never

/**
 * @since 0.1.0
 * @category models
 */
export type Tag = Method["_tag"]

/**
 * The method with a given tag: `Methods.ByTag<"BasicDeliver">`.
 *
 * @since 0.1.0
 * @category models
 */
export type ByTag<T extends Tag> = Extract<Method, { readonly _tag: T }>

/**
 * What `make` needs for a method: its required arguments, and any argument that has a default.
 *
 * @since 0.1.0
 * @category models
 */
export type Args<T extends Tag> = Extract<Definitions, { readonly tag: T }> extends infer D
  ? D extends Spec.MethodDefinition ? Types.Simplify<RequiredArgsOf<D["args"]> & OptionalArgsOf<D["args"]>> : never
  : never

/**
 * Builds a method, filling every argument the caller leaves out with its spec default.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <T extends Tag>(tag: T, args: Args<T>): ByTag<T> => {
  const c = Codec.byTag.get(tag)!
  const source = args as Readonly<Record<string, unknown>>
  const out: Record<string, unknown> = { _tag: tag }
  for (let i = 0; i < c.names.length; i++) {
    const name = c.names[i]!
    out[name] = source[name] ?? c.defaults[i]
  }
  return out as ByTag<T>
}

/**
 * The definition of a method by tag.
 *
 * @since 0.1.0
 * @category getters
 */
export const definition = <T extends Tag>(tag: T): Extract<Definitions, { readonly tag: T }> =>
  Codec.byTag.get(tag)!.definition as Extract<Definitions, { readonly tag: T }>

/**
 * The definition of a method by its ids, or `undefined` when there is none.
 *
 * @since 0.1.0
 * @category getters
 */
export const definitionById = (classId: number, methodId: number): Spec.MethodDefinition | undefined =>
  Codec.lookup(classId, methodId)?.definition

/**
 * Class id and method id of a method.
 *
 * @since 0.1.0
 * @category getters
 */
export const ids = (method: Method): readonly [classId: number, methodId: number] => {
  const c = Codec.byTag.get(method._tag)!
  return [c.classId, c.methodId]
}

/**
 * Whether a method is followed by a content header and body.
 *
 * @since 0.1.0
 * @category getters
 */
export const hasContent = (method: Method): boolean => Codec.byTag.get(method._tag)!.definition.content

/**
 * @since 0.1.0
 * @category guards
 */
export const is = <T extends Tag>(tag: T) => (method: Method): method is ByTag<T> => method._tag === tag

/**
 * Encodes a method payload: class id, method id and the arguments.
 *
 * @since 0.1.0
 * @category codec
 */
export const encode = (method: Method): Either.Either<Uint8Array, AmqpError> => {
  const c = Codec.byTag.get(method._tag)
  if (c === undefined) return Either.left(new AmqpError({ reason: "InvalidValue", detail: `unknown method tag ${String(method._tag)}` }))
  const size = Codec.size(c, method)
  if (typeof size !== "number") return Either.left(size)
  const w = new Wire.Writer(new Uint8Array(size))
  Codec.write(w, c, method)
  return Either.right(w.buf)
}

/**
 * Decodes a method payload spanning all of `bytes`. Long strings are views into `bytes`.
 *
 * @since 0.1.0
 * @category codec
 */
export const decode = (bytes: Uint8Array): Either.Either<Method, AmqpError> => {
  const r = new Wire.Reader(bytes, 0, bytes.length)
  const m = Codec.decode(r)
  return m === undefined || r.error !== undefined ? Either.left(r.error!) : Either.right(m as Method)
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------------------

const argSchemas: { readonly [K in Spec.ArgType]: Schema.Schema<ArgTypes[K]> } = {
  octet: Table.Octet,
  short: Table.Short,
  long: Table.Long,
  longlong: Table.LongLong,
  shortstr: Table.ShortString,
  longstr: Schema.Uint8ArrayFromSelf,
  bit: Schema.Boolean,
  table: Table.FieldTable
}

const schemaOf = (c: Codec.Compiled) =>
  Schema.TaggedStruct(
    c.tag,
    Object.fromEntries(c.definition.args.map(([name, type]) => [name, argSchemas[type] as Schema.Schema.Any]))
  ).annotations({ identifier: c.tag })

// The Schemas are built at runtime from the same table the types are derived from, so TypeScript cannot follow
// the construction; the casts below state what the table guarantees.

/**
 * One Schema per method, by tag (validation and Arbitrary generation of that method).
 *
 * @since 0.1.0
 * @category schemas
 */
export const schemas: { readonly [T in Tag]: Schema.Schema<ByTag<T>> } = Object.fromEntries(
  Codec.all.map((c) => [c.tag, schemaOf(c)])
) as unknown as { readonly [T in Tag]: Schema.Schema<ByTag<T>> }

/**
 * Any method (a union of the per-method Schemas).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Method: Schema.Schema<Method> = Schema.Union(
  ...Codec.all.map(schemaOf)
).annotations({ identifier: "Method" }) as unknown as Schema.Schema<Method>

/**
 * A method from its payload bytes (class id, method id, arguments), with the frame codec's encoder and decoder.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MethodFromBytes: Schema.Schema<Method, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  Method,
  {
    strict: true,
    decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.message)),
    encode: (m, _, ast) => Either.mapLeft(encode(m), (e) => new ParseResult.Type(ast, m, e.message))
  }
).annotations({ identifier: "MethodFromBytes" })
