// Thread pool: every index exactly once, every thread once per run, many
// back-to-back runs (the decode pattern) without loss or deadlock.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "kernels/threadpool.h"

namespace slim {
namespace {

TEST(ThreadPool, PhysicalCoreCountIsPositive) {
  const int n = physical_core_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, (int)std::max(1u, std::thread::hardware_concurrency()));
}

TEST(ThreadPool, DefaultSizeIsPhysicalCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.size(), physical_core_count());
}

TEST(ThreadPool, RunCallsEveryThreadOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    ASSERT_EQ(pool.size(), n);
    std::vector<std::atomic<int>> hits(n);
    std::set<std::thread::id> ids;
    std::mutex mu;
    pool.run([&](int ith, int nth) {
      EXPECT_EQ(nth, n);
      hits[ith].fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    });
    for (int i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
    EXPECT_EQ((int)ids.size(), n);  // really n different threads
  }
}

TEST(ThreadPool, ParallelForCoversEachIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 7, 64, 1000, 12345}) {
    for (int64_t grain : {1, 3, 16, 100000}) {
      std::vector<std::atomic<int>> seen((size_t)n);
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        EXPECT_LE(e - b, grain);
        for (int64_t i = b; i < e; ++i) seen[(size_t)i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[(size_t)i].load(), 1) << "n=" << n << " i=" << i;
    }
  }
}

// Shares: every index exactly once, chunks ascending within a call, for
// sizes below, at and past one share a thread; and when the caller is held
// back, the workers take the end of its share (stealing really happens).
TEST(ThreadPool, ParallelForSharesCoversEachIndexOnce) {
  for (int nt : {1, 2, 3}) {
    ThreadPool pool(nt);
    for (int64_t n : {0, 1, 2, 7, 64, 1000, 12345}) {
      for (int64_t grain : {1, 3, 16, 100000}) {
        std::vector<std::atomic<int>> seen((size_t)n);
        pool.parallel_for_shares(n, grain, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          for (int64_t i = b; i < e; ++i) seen[(size_t)i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(seen[(size_t)i].load(), 1) << "threads=" << nt << " n=" << n << " grain=" << grain << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, ParallelForSharesStealsFromASlowThread) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int64_t> by_worker_in_caller_share{0};
  const int64_t n = 1000;
  pool.parallel_for_shares(n, 1, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the caller is slow
    } else if (b < n / 2) {
      by_worker_in_caller_share.fetch_add(e - b);
    }
  });
  // the caller's first chunk is half its share; the worker takes most of the rest
  EXPECT_GT(by_worker_in_caller_share.load(), n / 8);
}

TEST(ThreadPool, ManyBackToBackRuns) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int it = 0; it < 20000; ++it)
    pool.parallel_for(4, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  EXPECT_EQ(total.load(), 20000 * 4);
}

TEST(ThreadPool, SleepsAndWakesAfterIdle) {
  ThreadPool pool(2);
  std::atomic<int> n{0};
  for (int it = 0; it < 3; ++it) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // past the spin budget
    pool.run([&](int, int) { n.fetch_add(1); });
  }
  EXPECT_EQ(n.load(), 6);
}

}  // namespace
}  // namespace slim
