// The model store under $SLIM_HOME (default $XDG_DATA_HOME/slim, else
// ~/.local/share/slim):
//   blobs/sha256-<hex>            model files, named by their digest
//   manifests/<name>/<tag>.json   one per name:tag, written atomically
//   tmp/                          partial downloads, imports in progress, locks
// Several names may point at one blob; a blob goes when no name refers to it.
// Mutations of manifests and blobs hold an exclusive flock on tmp/store.lock.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "base/status.h"

namespace slim {

// What the store records about a GGUF file (read from its metadata).
struct ModelInfo {
  std::string architecture;
  std::string general_name;
  uint64_t parameters = 0;
  std::string quant;          // Q4_K_M, Q8_0, F16, ... (general.file_type, else the dominant tensor type)
  int64_t context_length = 0;
  bool chat_template = false;
  std::string license;
};
Result<ModelInfo> describe_gguf(const std::string& path);

struct Manifest {
  std::string name, tag;
  std::string source;         // where it came from: a URL, hf.co/..., or a local path
  std::string digest;         // sha256 hex of the blob
  uint64_t size = 0;
  std::string file;           // the original file name
  ModelInfo info;
  std::time_t modified = 0;   // manifest mtime (not serialised)
  std::string full_name() const { return name + ":" + tag; }
};

// NAME[:TAG]; names are path-like (hf.co/owner/repo), tags default to "latest".
struct ModelName {
  std::string name, tag;
  bool tag_given = false;
  std::string full() const { return name + ":" + tag; }
};
Result<ModelName> parse_model_name(const std::string& s);

// An exclusive advisory lock on a file, released by the destructor.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

class Store {
 public:
  static std::string default_root();
  // Opens (creating the folders of) the store at `root`, or default_root() when empty.
  static Result<Store> open(const std::string& root = "");

  const std::string& root() const { return root_; }
  std::string blob_path(const std::string& digest) const { return root_ + "/blobs/sha256-" + digest; }
  std::string tmp_dir() const { return root_ + "/tmp"; }
  Result<FileLock> lock() const { return FileLock::acquire(tmp_dir() + "/store.lock"); }

  Result<std::vector<Manifest>> list() const;
  // A name with or without tag. Without a tag: NAME:latest, else the only tag,
  // else Q4_K_M. Unknown names get a "did you mean" suggestion.
  Result<Manifest> get(const std::string& name) const;

  // Moves a verified file (in tmp/) to blobs/ (fsynced first) and records `m`
  // under its name. Holds the store lock. The file is gone afterwards.
  Status install(const std::string& verified_tmp, const Manifest& m);
  Status write_manifest(const Manifest& m);  // caller holds the lock
  Status remove(const std::string& name);    // the blob too when no other name uses it
  Status copy(const std::string& src, const std::string& dst);
  // Adds a local GGUF (hard link with `link` when possible, else a copy).
  Result<Manifest> import_file(const std::string& path, const std::string& name, bool link);

 private:
  std::string manifest_path(const ModelName& n) const;
  std::string root_;
};

// A command's MODEL argument: an existing file path, or a store name.
Result<std::string> resolve_model(const std::string& name_or_path);

// Names in `candidates` close to `name` (edit distance or containment), best first.
std::vector<std::string> close_matches(const std::string& name, const std::vector<std::string>& candidates);

// Quant label of a GGUF general.file_type value ("" when unknown).
std::string file_type_name(int64_t file_type);

std::string human_size(double bytes);

}  // namespace slim
