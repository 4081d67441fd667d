// Thread pool implementation. Workers wait (spin, then futex) for the
// generation counter to move, then try to enter the job through state_: the
// entry only succeeds while the job of that generation is open, so the caller
// can close a parallel_for once every chunk is taken and wait only for the
// threads inside it. Futex wake-ups are only issued when someone sleeps.
#include "kernels/threadpool.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>

namespace slim {
namespace {

// Spin budgets before sleeping. Workers: long enough to bridge the gap between
// two matmuls of one decode step (a few microseconds of norms and rope), short
// enough that an idle pool or a stolen core is given up quickly. The caller
// waits only for chunks in progress, which are short.
constexpr int kWorkerSpin = 1 << 12;
constexpr int kCallerSpin = 1 << 13;

constexpr uint32_t kClosed = 1u << 7;
constexpr uint32_t kCountMask = kClosed - 1;
constexpr int kGenShift = 8;

inline void cpu_relax() { __builtin_ia32_pause(); }

inline uint32_t gen_bits(uint32_t g) { return g << kGenShift; }

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
  n_threads_ = std::min(n_threads_, (int)kCountMask);
  state_.store(kClosed);
  shares_ = std::vector<Share>(n_threads_);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker_main(int ith) {
  uint32_t seen = 0;
  for (;;) {
    // wait for a new generation: spin, then sleep
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kWorkerSpin; ++i) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      sleepers_.fetch_add(1);  // seq_cst: pairs with the caller's store then load
      generation_.wait(seen);
      sleepers_.fetch_sub(1);
      g = generation_.load();
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    // enter the job of generation g if it is still open
    const uint32_t want = gen_bits(g);
    uint32_t s = state_.load(std::memory_order_acquire);
    bool entered = false;
    while ((s & ~(kClosed | kCountMask)) == (want & ~(kClosed | kCountMask)) && !(s & kClosed)) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;  // a later job, or this one already closed: nothing to do
    const bool all = all_;
    (*job_)(ith, n_threads_);
    if (all) {
      if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) pending_.notify_one();
    }
    const uint32_t prev = state_.fetch_sub(1);
    if ((prev & kClosed) && (prev & kCountMask) == 1 && caller_sleeping_.load()) state_.notify_one();
  }
}

void ThreadPool::start_job(const std::function<void(int, int)>* fn, bool all) {
  job_ = fn;
  all_ = all;
  const uint32_t g = generation_.load(std::memory_order_relaxed) + 1;
  state_.store(gen_bits(g), std::memory_order_release);  // open, nobody inside
  generation_.store(g);                                   // seq_cst: then read sleepers_
  if (sleepers_.load() > 0) generation_.notify_all();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  start_job(&fn, true);
  fn(0, n_threads_);
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kCallerSpin) { cpu_relax(); continue; }
    caller_sleeping_.store(1);
    int p = pending_.load();
    if (p != 0) pending_.wait(p);
    caller_sleeping_.store(0);
  }
  // every worker has left fn; close the job so the admission word is quiet
  state_.fetch_or(kClosed);
  for (int i = 0; (state_.load(std::memory_order_acquire) & kCountMask) != 0; ++i) cpu_relax();
}

namespace {

constexpr uint64_t span_of(int64_t front, int64_t back) { return (uint64_t)front << 32 | (uint64_t)back; }

// Claims [front, front + c) of a share, c = max(grain, half what is left);
// false once the share is empty. take_back claims the end of it the same way:
// the thief's chunk is then also long and read forwards, which matters when a
// thread never starts and the others take its whole share (read backwards in
// small pieces, it ran at a quarter of the speed).
bool take_front(std::atomic<uint64_t>& span, int64_t grain, int64_t& begin, int64_t& end) {
  uint64_t s = span.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t f = (int64_t)(s >> 32), b = (int64_t)(s & 0xFFFFFFFFu);
    if (f >= b) return false;
    const int64_t e = std::min(b, f + std::max(grain, (b - f) / 2));
    if (span.compare_exchange_weak(s, span_of(e, b), std::memory_order_relaxed)) {
      begin = f, end = e;
      return true;
    }
  }
}

bool take_back(std::atomic<uint64_t>& span, int64_t grain, int64_t& begin, int64_t& end) {
  uint64_t s = span.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t f = (int64_t)(s >> 32), b = (int64_t)(s & 0xFFFFFFFFu);
    if (f >= b) return false;
    const int64_t a = b - std::min(b - f, std::max(grain, (b - f) / 2));
    if (span.compare_exchange_weak(s, span_of(f, a), std::memory_order_relaxed)) {
      begin = a, end = b;
      return true;
    }
  }
}

}  // namespace

bool ThreadPool::runs_alone(int64_t n, int64_t& grain, const std::function<void(int64_t, int64_t)>& fn) const {
  if (grain < 1) grain = 1;
  if (n > 0 && (n <= grain || n_threads_ == 1)) fn(0, n);
  return n <= grain || n_threads_ == 1;
}

void ThreadPool::parallel_for_shares(int64_t n, int64_t grain,
                                     const std::function<void(int64_t, int64_t)>& fn) {
  if (runs_alone(n, grain, fn)) return;
  const int nth = n_threads_;
  for (int i = 0; i < nth; ++i)
    shares_[i].span.store(span_of(n * i / nth, n * (i + 1) / nth), std::memory_order_relaxed);
  const std::function<void(int, int)> body = [&](int ith, int) {
    int64_t a, b;
    while (take_front(shares_[ith].span, grain, a, b)) fn(a, b);
    for (int k = 1; k < nth; ++k)
      while (take_back(shares_[(ith + k) % nth].span, grain, a, b)) fn(a, b);
  };
  // start_job publishes the spans (release) along with the job
  start_job(&body, false);
  body(0, nth);
  finish_job();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (runs_alone(n, grain, fn)) return;
  std::atomic<int64_t> next{0};
  const std::function<void(int, int)> body = [&](int, int) {
    for (;;) {
      const int64_t begin = next.fetch_add(grain, std::memory_order_relaxed);
      if (begin >= n) return;
      fn(begin, std::min(n, begin + grain));
    }
  };
  start_job(&body, false);
  body(0, n_threads_);
  finish_job();
}

void ThreadPool::finish_job() {
  // every chunk is taken: close the job and wait for the threads inside only
  uint32_t s = state_.fetch_or(kClosed);
  for (int i = 0; (s & kCountMask) != 0; ++i) {
    if (i < kCallerSpin) {
      cpu_relax();
    } else {
      caller_sleeping_.store(1);
      s = state_.load();
      if (s & kCountMask) state_.wait(s);
      caller_sleeping_.store(0);
    }
    s = state_.load(std::memory_order_acquire);
  }
}

}  // namespace slim
