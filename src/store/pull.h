// `slim pull`: resolves a reference to a download URL, downloads it with
// libcurl (redirects, HTTP Range resume, retries with backoff), verifies the
// sha256, checks the GGUF, and installs it into the store atomically.
//
// References:
//   hf.co/OWNER/REPO[:QUANT]     the repo's .gguf file whose name holds QUANT (default Q4_K_M)
//   hf.co/OWNER/REPO/FILE.gguf   that file of the repo
//   https://HOST/PATH.gguf       any URL (http:// too, for local servers)
// The Hugging Face endpoint is $SLIM_HF_ENDPOINT (default https://huggingface.co).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace slim {

struct PullSource {
  std::string url;
  std::string name, tag;   // where it goes in the store
  std::string file;        // file name, for messages and the manifest
  std::string source;      // the reference as given
};

struct PullOptions {
  std::string name;        // NAME[:TAG] to install under (default: from the reference)
  std::string sha256;      // expected digest (hex), overrides the server's
  int retries = 5;         // extra attempts after a network failure
  int backoff_ms = 500;    // first retry delay; doubles each time
  bool progress = false;   // a live progress bar on stderr (a terminal)
  bool quiet = false;      // no status lines at all
  // Called as bytes arrive (at most every 100 ms, and once at the end) with
  // the bytes present and the total (-1 when unknown): the server streams it.
  std::function<void(uint64_t done, int64_t total)> on_progress;
};

std::string hf_endpoint();

// Picks the .gguf file for QUANT among a repo's files (case-insensitive,
// the quant standing as its own word in the name); the error lists what there is.
Result<std::string> pick_gguf_file(const std::vector<std::string>& files, const std::string& quant,
                                   const std::string& repo);

// Resolves a reference; an hf.co/OWNER/REPO[:QUANT] reference asks the hub
// API for the repo's file list.
Result<PullSource> resolve_pull_source(const std::string& ref);

// Downloads and installs; returns the manifest written.
Result<Manifest> pull_model(Store& store, const std::string& ref, const PullOptions& o);

}  // namespace slim
