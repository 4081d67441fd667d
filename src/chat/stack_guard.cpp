// StackGuard (see stack_guard.h): reads the thread's stack bounds with
// pthread_getattr_np once per thread (on the main thread glibc parses
// /proc/self/maps for it, far too slow to repeat per render). Stacks grow
// down on every platform slim targets.
#include "chat/stack_guard.h"

#include <pthread.h>

#include <algorithm>

namespace slim::jinja {
namespace {

constexpr size_t kReserve = 64 * 1024;          // left for libc, allocators and error handling
constexpr size_t kFallbackBudget = 256 * 1024;  // when the bounds are unknown
constexpr size_t kMaxBudget = size_t{64} << 20;

// Lowest usable address of this thread's stack, or null when unknown.
const char* stack_low_end() {
  thread_local const char* low_end = [] {
    const char* low = nullptr;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* addr = nullptr;
      size_t size = 0;
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) low = static_cast<const char*>(addr);
      pthread_attr_destroy(&attr);
    }
    return low;
  }();
  return low_end;
}

}  // namespace

StackGuard::StackGuard() : base_(reinterpret_cast<const char*>(__builtin_frame_address(0))), budget_(kFallbackBudget) {
  const char* low = stack_low_end();
  if (!low || low >= base_) return;
  auto left = static_cast<size_t>(base_ - low);
  budget_ = left > 2 * kReserve ? std::min(left - kReserve, kMaxBudget) : left / 2;
}

}  // namespace slim::jinja
