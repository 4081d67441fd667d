// Helpers of the train tests: a fresh directory a test (so a leftover
// temporary file is seen) and the names of the files in it.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

namespace slim::train::test_util {

inline std::string fresh_dir(const std::string& name) {
  const std::string d = ::slim::test::temp_dir() + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace slim::train::test_util
