// A persistent thread pool for the kernels: threads are created once and park
// between calls, so a decode step costs wake-ups, not thread creation.
// Waiting spins briefly and then sleeps on a futex (std::atomic::wait), so a
// pool that shares its cores with another process slows down in proportion
// instead of burning the stolen core in a spin loop.
//
// parallel_for does not wait for threads that have not started: work is handed
// out in small chunks from a shared counter, the caller works too, and when all
// chunks are taken the job is closed — a worker that wakes late (its core was
// taken by another process) finds the job closed and goes back to sleep, so the
// caller only ever waits for chunks actually in progress, never for a thread
// that is not running. run() (every thread once) still waits for every thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace slim {

// Number of physical cores this process may run on (hyper-threads counted once).
int physical_core_count();

class ThreadPool {
 public:
  // n_threads <= 0: physical_core_count(). The calling thread is worker 0.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread and returns when all
  // are done. Not re-entrant: fn must not call run() on the same pool.
  void run(const std::function<void(int ith, int nth)>& fn);

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items handed out
  // dynamically (a slow or preempted thread simply takes fewer chunks, and one
  // that never starts is not waited for).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

  // Calls fn(begin, end) over [0, n), n < 2^31, split into one contiguous
  // share a thread. A thread walks its own share front to back in chunks of
  // half what is left (at least `grain`), then takes such chunks from the
  // back of the other shares. Memory-bound decode wants this: each thread
  // streams one long run, and one that starts late or runs slow leaves the end
  // of its share to the others instead of being waited for at the barrier.
  // As in parallel_for, a thread that never starts is not waited for.
  void parallel_for_shares(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_main(int ith);
  // Publishes job_ / all_ under a new generation and wakes the workers.
  void start_job(const std::function<void(int, int)>* fn, bool all);
  // After the caller's part of a parallel_for: closes the job and waits for the threads inside.
  void finish_job();
  // A loop the caller runs alone (calling fn(0, n) unless n <= 0): nothing to
  // split, one chunk, or one thread. Clamps grain to at least 1.
  bool runs_alone(int64_t n, int64_t& grain, const std::function<void(int64_t, int64_t)>& fn) const;

  int n_threads_ = 1;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* job_ = nullptr;
  bool all_ = false;                      // run(): every worker must take part
  std::atomic<uint32_t> generation_{0};   // bumped once per job; workers wait on it
  // Job admission: generation (high 24 bits), closed flag, threads inside (low 7 bits).
  std::atomic<uint32_t> state_{0};
  std::atomic<int> pending_{0};           // run(): workers still running the current job
  std::atomic<int> sleepers_{0};          // workers blocked in the futex
  std::atomic<int> caller_sleeping_{0};   // the caller blocked waiting for state_ / pending_
  std::atomic<bool> stop_{false};
  // parallel_for_shares: per thread, the front and back of its share's
  // unclaimed part (front in the high 32 bits), one cache line each
  struct alignas(64) Share {
    std::atomic<uint64_t> span{0};
  };
  std::vector<Share> shares_;
};

}  // namespace slim
