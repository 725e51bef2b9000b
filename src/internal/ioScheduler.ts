import * as Scheduler from "effect/Scheduler"

/**
 * The scheduler of the fibers a connection or session owns (readers, writers, watchdogs) in every protocol.
 *
 * Effect's default scheduler runs tasks in microtask batches and, after a long run of them, falls back to
 * `setTimeout(0)` to let I/O in; Node clamps that timer to about 1 ms, which on a busy connection becomes a 1 ms
 * stall in the middle of the frame pipeline. This one yields to the event loop with `setImmediate` instead: I/O
 * still gets its turn, without the clamp.
 */
const defaultMaxOpsBeforeYield = 2048

class IoScheduler implements Scheduler.Scheduler {
  private tasks = new Scheduler.PriorityBuckets()
  private running = false
  private depth = 0

  // Called on every operation of every fiber here: the op count is compared with Effect's default budget before
  // the fiber-ref lookups of `defaultShouldYield`, which only a fiber due to yield pays for. A fiber given a
  // smaller budget than the default yields at the default one.
  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]): number | false {
    return fiber.currentOpCount > defaultMaxOpsBeforeYield ? Scheduler.defaultShouldYield(fiber) : false
  }

  scheduleTask(task: Scheduler.Task, priority: number): void {
    this.tasks.scheduleTask(task, priority)
    if (!this.running) {
      this.running = true
      this.schedule()
    }
  }

  private schedule(): void {
    if (this.depth >= 2048) {
      this.depth = 0
      setImmediate(this.drain)
    } else {
      this.depth++
      queueMicrotask(this.drain)
    }
  }

  private readonly drain = (): void => {
    const buckets = this.tasks.buckets
    this.tasks.buckets = []
    for (const [, tasks] of buckets) {
      for (let i = 0; i < tasks.length; i++) tasks[i]!()
    }
    // `depth` is not reset when the queue empties: two schedulers that resume each other (a writer here, its caller
    // on Effect's default scheduler) each empty their queue on every turn, and with a reset they would chain
    // microtasks for ever and starve timers and I/O. Only the `setImmediate` turn in `schedule` resets it.
    if (this.tasks.buckets.length === 0) {
      this.running = false
    } else {
      this.schedule()
    }
  }
}

export const ioScheduler: Scheduler.Scheduler = new IoScheduler()
