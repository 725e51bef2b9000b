/**
 * Python's `json.dumps` text (default `ensure_ascii=True`, separators `", "` and `": "`), so keys derived from
 * JSON match the reference byte for byte. Floats that Python prints as `1.0` cannot be told from integers once
 * parsed by JavaScript; payloads with integral floats get a different key.
 */
const escapeString = (text: string): string => {
  let out = "\""
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) out += "\\\""
    else if (c === 0x5c) out += "\\\\"
    else if (c >= 0x20 && c <= 0x7e) out += text[i]
    else if (c === 0x0a) out += "\\n"
    else if (c === 0x0d) out += "\\r"
    else if (c === 0x09) out += "\\t"
    else if (c === 0x08) out += "\\b"
    else if (c === 0x0c) out += "\\f"
    else out += `\\u${c.toString(16).padStart(4, "0")}`
  }
  return out + "\""
}

export const dumps = (value: unknown, sortKeys: boolean): string => {
  if (value === null || value === undefined) return "null"
  if (value === true) return "true"
  if (value === false) return "false"
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "NaN"
    if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity"
    return String(value)
  }
  if (typeof value === "string") return escapeString(value)
  if (Array.isArray(value)) return `[${value.map((v) => dumps(v, sortKeys)).join(", ")}]`
  if (typeof value === "object") {
    const keys = Object.keys(value)
    if (sortKeys) keys.sort()
    const record = value as Record<string, unknown>
    return `{${keys.map((k) => `${escapeString(k)}: ${dumps(record[k], sortKeys)}`).join(", ")}}`
  }
  return "null"
}
