// One progress line on stderr, redrawn in place ("\r...") and closed with a
// newline only if it was ever drawn: the shared end of every progress bar
// (pull, quantize), which each format their own way.
#pragma once

#include <cstdio>
#include <string>

#include "base/status.h"

namespace slim {

// "  ETA 1m05s" / "  ETA 42s".
inline std::string format_eta(int seconds) {
  return seconds >= 60 ? format("  ETA %dm%02ds", seconds / 60, seconds % 60) : format("  ETA %ds", seconds);
}

class ProgressLine {
 public:
  // `line` starts with "\r".
  void draw(const std::string& line) {
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fputs("\n", stderr);
    drawn_ = false;
  }

 private:
  bool drawn_ = false;
};

}  // namespace slim
