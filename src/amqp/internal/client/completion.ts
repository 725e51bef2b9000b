/**
 * A one-shot result that fibers wait for: the light Deferred of the hot paths (one per confirmed publish, one
 * per written batch). Waiting is a single `Effect.async`; completing resumes every waiter; the first result wins.
 *
 * A waiter that is interrupted stays registered: the fiber runtime ignores a resume of an async it has left.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { ClientError } from "../../ClientError.js"

type Resume = (exit: Exit.Exit<void, ClientError>) => void

export class Completion {
  private result: Exit.Exit<void, ClientError> | undefined = undefined
  /** One waiter (the common case) or many. */
  private waiters: Resume | Array<Resume> | undefined = undefined
  private waiting: Effect.Effect<void, ClientError> | undefined = undefined

  get isDone(): boolean {
    return this.result !== undefined
  }

  /** Completes with `exit` unless already completed; returns whether this call completed it. */
  done(exit: Exit.Exit<void, ClientError>): boolean {
    if (this.result !== undefined) return false
    this.result = exit
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters === undefined) return true
    if (typeof waiters === "function") waiters(exit)
    else for (let i = 0; i < waiters.length; i++) waiters[i]!(exit)
    return true
  }

  succeed(): boolean {
    return this.done(Exit.void)
  }

  fail(error: ClientError): boolean {
    return this.done(Exit.fail(error))
  }

  /** Calls `resume` with the result, at once when there is one: `await` without an Effect of its own. */
  listen(resume: Resume): void {
    if (this.result !== undefined) return resume(this.result)
    const waiters = this.waiters
    if (waiters === undefined) this.waiters = resume
    else if (typeof waiters === "function") this.waiters = [waiters, resume]
    else waiters.push(resume)
  }

  /** Waits for the result (at once when there is one). */
  get await(): Effect.Effect<void, ClientError> {
    return this.waiting ??= Effect.async<void, ClientError>((resume) => this.listen(resume))
  }
}
