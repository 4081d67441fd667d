// Stack budget for the recursive parser and interpreter: measures how much
// of the current thread's stack is left when parsing or rendering starts,
// so that hostile nesting fails with an error instead of overflowing,
// whatever stack size the calling thread has.
#pragma once

#include <cstddef>

namespace slim::jinja {

class StackGuard {
 public:
  StackGuard();
  bool exhausted() const {
    auto here = reinterpret_cast<const char*>(__builtin_frame_address(0));
    // Negative when called from a frame shallower than the constructor's.
    std::ptrdiff_t used = base_ - here;
    return used > 0 && static_cast<size_t>(used) > budget_;
  }

 private:
  const char* base_;
  size_t budget_;
};

}  // namespace slim::jinja
