// Thread pool implementation: generation counter + pending counter, each
// waited on with spin-then-futex.
#include "kernels/threadpool.h"

#include <sched.h>

#include <fstream>
#include <set>
#include <string>

namespace slim {
namespace {

// Spin budget before sleeping: long enough to cover the gap between two
// matmuls of one decode step (microseconds), short enough that an idle pool
// or a contended core goes to sleep quickly.
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() { __builtin_ia32_pause(); }

template <class T, class Pred>
void spin_then_wait(std::atomic<T>& a, Pred done) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (done(a.load(std::memory_order_acquire))) return;
    cpu_relax();
  }
  for (;;) {
    T v = a.load(std::memory_order_acquire);
    if (done(v)) return;
    a.wait(v, std::memory_order_acquire);
  }
}

}  // namespace

int physical_core_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int allowed = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
  if (allowed <= 0) allowed = (int)std::max(1u, std::thread::hardware_concurrency());
  // one entry per physical core: the sibling list of each allowed logical cpu
  std::set<std::string> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE && (int)cores.size() < allowed; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    std::ifstream f("/sys/devices/system/cpu/cpu" + std::to_string(cpu) +
                    "/topology/thread_siblings_list");
    std::string s;
    if (!(f >> s)) return allowed;  // no topology info: trust the affinity mask
    cores.insert(s);
  }
  return cores.empty() ? allowed : (int)cores.size();
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : physical_core_count();
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::wait_for_work(uint32_t seen) {
  spin_then_wait(generation_, [seen](uint32_t g) { return g != seen; });
}

void ThreadPool::worker_main(int ith) {
  uint32_t seen = 0;
  for (;;) {
    wait_for_work(seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(ith, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);  // publishes job_ and pending_
  generation_.notify_all();
  fn(0, n_threads_);
  spin_then_wait(pending_, [](int p) { return p == 0; });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || n_threads_ == 1) {
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    for (;;) {
      const int64_t begin = next.fetch_add(grain, std::memory_order_relaxed);
      if (begin >= n) return;
      fn(begin, std::min(n, begin + grain));
    }
  });
}

}  // namespace slim
