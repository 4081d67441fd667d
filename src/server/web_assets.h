// The chat page's files (web/), embedded in the binary at build time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace slim {

struct WebAsset {
  const char* path;  // "/index.html"
  const char* data;
  size_t size;
};

const std::vector<WebAsset>& web_assets();

}  // namespace slim
