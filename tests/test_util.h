// Helpers shared by the test suites: locating ../shared data (a missing file
// fails the test with its name, never skips), reading files, running slim.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace slim::test {

inline std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("SLIM_SHARED_DIR");
  std::string base = env && *env ? env : SLIM_SHARED_DIR;
  return base + "/" + rel;
}

// Path of a shared file; fails the current test (fatal) when it is missing.
#define SLIM_SHARED_FILE(var, rel)                                                     \
  std::string var = ::slim::test::shared_path(rel);                                    \
  ASSERT_TRUE(std::filesystem::exists(var)) << "missing shared test data file: " << var

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct RunResult {
  int status = -1;
  std::string out;
};

// Runs a shell command, capturing stdout (stderr too when merge_stderr).
inline RunResult run_command(const std::string& cmd, bool merge_stderr = false) {
  RunResult r;
  std::string full = cmd + (merge_stderr ? " 2>&1" : "");
  FILE* p = popen(full.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string slim_binary() { return SLIM_BINARY; }

inline std::string temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("slim-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

}  // namespace slim::test
