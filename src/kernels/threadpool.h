// A persistent thread pool for the kernels: threads are created once and park
// between calls, so a decode step costs two wake-ups, not thread creation.
// Waiting spins briefly and then sleeps on a futex (std::atomic::wait), so a
// pool that shares its cores with another process slows down in proportion
// instead of burning the stolen core in a spin loop.
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
  // dynamically (a slow or preempted thread simply takes fewer chunks).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_main(int ith);
  void wait_for_work(uint32_t seen);

  int n_threads_ = 1;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> generation_{0};  // bumped once per run()
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
};

}  // namespace slim
