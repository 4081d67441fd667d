// The model store: manifests by name:tag, blobs by digest, atomic updates.
#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/mapped_file.h"
#include "gguf/gguf.h"
#include "store/sha256.h"

namespace fs = std::filesystem;

namespace slim {

std::string human_size(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) { b /= 1000; ++u; }
  return format(u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

std::string file_type_name(int64_t t) {
  static const std::map<int64_t, const char*> names = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
      {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
      {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"}, {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
      {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"}, {25, "IQ4_NL"}, {26, "IQ3_S"},
      {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},  {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"}};
  auto it = names.find(t);
  return it == names.end() ? "" : it->second;
}

Result<ModelInfo> describe_gguf(const std::string& path) {
  auto fr = GgufFile::open(path);
  if (!fr) return Status::error(fr.error());
  const GgufFile& f = **fr;
  ModelInfo info;
  info.architecture = f.get_string("general.architecture").value_or("");
  if (info.architecture.empty()) return Status::error(path + ": not a model (no general.architecture)");
  info.general_name = f.get_string("general.name").value_or("");
  std::map<GgmlType, uint64_t> bytes_by_type;
  for (const auto& t : f.tensors()) {
    info.parameters += (uint64_t)t.n_elements();
    if (t.n_dims >= 2) bytes_by_type[t.type] += t.nbytes;
  }
  if (auto ft = f.get_int("general.file_type")) info.quant = file_type_name(*ft);
  if (info.quant.empty() && !bytes_by_type.empty()) {
    auto best = std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
    info.quant = type_name(best->first);
  }
  info.context_length = f.get_int(info.architecture + ".context_length").value_or(0);
  info.chat_template = f.find("tokenizer.chat_template") != nullptr;
  info.license = f.get_string("general.license").value_or("");
  return info;
}

namespace {

bool valid_segment(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 200) return false;
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

nlohmann::json to_json(const Manifest& m) {
  return {{"name", m.name},
          {"tag", m.tag},
          {"source", m.source},
          {"digest", "sha256:" + m.digest},
          {"size", m.size},
          {"file", m.file},
          {"architecture", m.info.architecture},
          {"general_name", m.info.general_name},
          {"parameters", m.info.parameters},
          {"quant", m.info.quant},
          {"context_length", m.info.context_length},
          {"chat_template", m.info.chat_template},
          {"license", m.info.license}};
}

Result<Manifest> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error("cannot read " + path);
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    Manifest m;
    m.name = j.at("name").get<std::string>();
    m.tag = j.at("tag").get<std::string>();
    m.source = j.value("source", "");
    std::string d = j.at("digest").get<std::string>();
    m.digest = d.rfind("sha256:", 0) == 0 ? d.substr(7) : d;
    if (!is_sha256_hex(m.digest)) return Status::error(path + ": bad digest");
    m.size = j.value("size", (uint64_t)0);
    m.file = j.value("file", "");
    m.info.architecture = j.value("architecture", "");
    m.info.general_name = j.value("general_name", "");
    m.info.parameters = j.value("parameters", (uint64_t)0);
    m.info.quant = j.value("quant", "");
    m.info.context_length = j.value("context_length", (int64_t)0);
    m.info.chat_template = j.value("chat_template", false);
    m.info.license = j.value("license", "");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) m.modified = st.st_mtime;
    return m;
  } catch (const std::exception& e) {
    return Status::error(path + ": corrupt manifest: " + e.what());
  }
}

Status fsync_path(const std::string& path, bool dir) {
  int fd = ::open(path.c_str(), dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return Status::error(format("cannot open %s: %s", path.c_str(), std::strerror(errno)));
  int r = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (r != 0) return Status::error(format("cannot sync %s: %s", path.c_str(), std::strerror(e)));
  return Status();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (std::tolower((unsigned char)a[i - 1]) != std::tolower((unsigned char)b[j - 1]))});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

}  // namespace

Result<ModelName> parse_model_name(const std::string& s) {
  ModelName n;
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    n.name = s.substr(0, colon);
    n.tag = s.substr(colon + 1);
    n.tag_given = true;
  } else {
    n.name = s;
    n.tag = "latest";
  }
  if (n.tag.empty() || !valid_segment(n.tag)) return Status::error("bad model tag in '" + s + "'");
  if (n.name.empty()) return Status::error("empty model name in '" + s + "'");
  std::stringstream ss(n.name);
  std::string seg;
  while (std::getline(ss, seg, '/'))
    if (!valid_segment(seg))
      return Status::error("bad model name '" + s + "' (use letters, digits, '.', '_', '-' and '/')");
  if (n.name.back() == '/') return Status::error("bad model name '" + s + "'");
  return n;
}

Result<FileLock> FileLock::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error(format("cannot open lock %s: %s", path.c_str(), std::strerror(errno)));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd);
    return Status::error(format("cannot lock %s: %s", path.c_str(), std::strerror(e)));
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

std::string Store::default_root() {
  if (const char* h = std::getenv("SLIM_HOME"); h && *h) return h;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/slim";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/slim";
}

Result<Store> Store::open(const std::string& root) {
  Store s;
  s.root_ = root.empty() ? default_root() : root;
  std::error_code ec;
  for (const char* sub : {"/blobs", "/manifests", "/tmp"}) {
    fs::create_directories(s.root_ + sub, ec);
    if (ec) return Status::error(format("cannot create the model store at %s: %s", s.root_.c_str(), ec.message().c_str()));
  }
  return s;
}

std::string Store::manifest_path(const ModelName& n) const { return root_ + "/manifests/" + n.name + "/" + n.tag + ".json"; }

Result<std::vector<Manifest>> Store::list() const {
  std::vector<Manifest> out;
  std::error_code ec;
  const fs::path base = root_ + "/manifests";
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".json") continue;
    auto m = read_manifest(it->path().string());
    if (!m) return Status::error(m.error());
    out.push_back(std::move(m.value()));
  }
  if (ec) return Status::error(format("cannot list %s: %s", base.c_str(), ec.message().c_str()));
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.full_name() < b.full_name(); });
  return out;
}

std::vector<std::string> close_matches(const std::string& name, const std::vector<std::string>& candidates) {
  std::vector<std::pair<size_t, std::string>> scored;
  const std::string ln = lower(name);
  for (const auto& c : candidates) {
    const std::string lc = lower(c);
    // the name without its tag, or a part of a longer name, is a close match too
    std::string bare = lc.substr(0, lc.rfind(':'));
    size_t d = std::min(edit_distance(ln, lc), edit_distance(ln, bare));
    if (bare == ln || lc.find(ln) != std::string::npos || ln.find(bare) != std::string::npos) d = std::min<size_t>(d, 1);
    if (d <= std::max<size_t>(2, ln.size() / 3)) scored.emplace_back(d, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& [d, c] : scored)
    if (out.size() < 3) out.push_back(c);
  return out;
}

Result<Manifest> Store::get(const std::string& s) const {
  auto n = parse_model_name(s);
  if (!n) return Status::error(n.error());
  auto all = list();
  if (!all) return Status::error(all.error());
  std::vector<const Manifest*> same_name;
  for (const auto& m : *all) {
    if (m.name == n->name && m.tag == n->tag) return m;
    if (m.name == n->name) same_name.push_back(&m);
  }
  if (!n->tag_given && !same_name.empty()) {
    if (same_name.size() == 1) return *same_name[0];
    for (auto* m : same_name)
      if (lower(m->tag) == "q4_k_m") return *m;
    std::string tags;
    for (auto* m : same_name) tags += (tags.empty() ? "" : ", ") + m->tag;
    return Status::error(format("model '%s' has several tags (%s): name one as NAME:TAG", s.c_str(), tags.c_str()));
  }
  std::vector<std::string> names;
  for (const auto& m : *all) names.push_back(m.full_name());
  auto close = close_matches(s, names);
  if (close.empty())
    return Status::error("unknown model '" + s + "': not a file and not in the store (slim list shows the store)");
  std::string list;
  for (auto& c : close) list += (list.empty() ? "'" : ", '") + c + "'";
  return Status::error("unknown model '" + s + "' (did you mean " + list + "?)");
}

Status Store::write_manifest(const Manifest& m) {
  auto n = parse_model_name(m.full_name());
  if (!n) return Status::error(n.error());
  std::string path = manifest_path(*n);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::error(format("cannot create %s: %s", fs::path(path).parent_path().c_str(), ec.message().c_str()));
  std::string text = to_json(m).dump(2) + "\n";
  return write_file_atomic(path, text.data(), text.size());
}

Status Store::install(const std::string& tmp, const Manifest& m) {
  auto lk = lock();
  if (!lk) return Status::error(lk.error());
  const std::string blob = blob_path(m.digest);
  std::error_code ec;
  if (fs::exists(blob, ec)) {
    fs::remove(tmp, ec);  // the same bytes are there already
  } else {
    SLIM_RETURN_IF_ERROR(fsync_path(tmp, false));
    if (::rename(tmp.c_str(), blob.c_str()) != 0)
      return Status::error(format("cannot move the model into %s: %s", blob.c_str(), std::strerror(errno)));
    ::chmod(blob.c_str(), 0444);
    SLIM_RETURN_IF_ERROR(fsync_path(root_ + "/blobs", true));
  }
  return write_manifest(m);
}

Status Store::remove(const std::string& s) {
  auto lk = lock();
  if (!lk) return Status::error(lk.error());
  auto m = get(s);
  if (!m) return Status::error(m.error());
  auto n = parse_model_name(m->full_name());
  std::string path = manifest_path(*n);
  if (::unlink(path.c_str()) != 0) return Status::error(format("cannot remove %s: %s", path.c_str(), std::strerror(errno)));
  // drop folders left empty, up to manifests/
  std::error_code ec;
  for (fs::path d = fs::path(path).parent_path(); d != fs::path(root_ + "/manifests") && fs::is_empty(d, ec) && !ec;
       d = d.parent_path())
    fs::remove(d, ec);
  auto rest = list();
  if (!rest) return Status::error(rest.error());
  for (const auto& o : *rest)
    if (o.digest == m->digest) return Status();
  std::string blob = blob_path(m->digest);
  if (::unlink(blob.c_str()) != 0 && errno != ENOENT)
    return Status::error(format("cannot remove %s: %s", blob.c_str(), std::strerror(errno)));
  return Status();
}

Status Store::copy(const std::string& src, const std::string& dst) {
  auto d = parse_model_name(dst);
  if (!d) return Status::error(d.error());
  auto lk = lock();
  if (!lk) return Status::error(lk.error());
  auto m = get(src);
  if (!m) return Status::error(m.error());
  Manifest c = *m;
  c.name = d->name;
  c.tag = d->tag;
  return write_manifest(c);
}

Result<Manifest> Store::import_file(const std::string& path, const std::string& name, bool link) {
  auto info = describe_gguf(path);
  if (!info) return Status::error(info.error());
  std::string nm = name;
  if (nm.empty()) nm = lower(fs::path(path).stem().string());
  auto n = parse_model_name(nm);
  if (!n) return Status::error(n.error());
  auto digest = sha256_file(path);
  if (!digest) return Status::error(digest.error());
  std::error_code ec;
  Manifest m;
  m.name = n->name;
  m.tag = n->tag;
  m.source = fs::absolute(path, ec).string();
  m.digest = *digest;
  m.size = fs::file_size(path, ec);
  m.file = fs::path(path).filename().string();
  m.info = *info;

  const std::string blob = blob_path(m.digest);
  if (!fs::exists(blob, ec)) {
    std::string tmp = tmp_dir() + format("/import-%d-%s", (int)::getpid(), m.digest.substr(0, 12).c_str());
    fs::remove(tmp, ec);
    bool linked = link && ::link(path.c_str(), tmp.c_str()) == 0;
    if (!linked) {
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        fs::remove(tmp, ec);
        return Status::error(format("cannot copy %s into the store: %s", path.c_str(),
                                    ec == std::errc::no_space_on_device ? "disk full" : ec.message().c_str()));
      }
      // the copy is checked against the digest before it is trusted
      auto again = sha256_file(tmp);
      if (!again || *again != m.digest) {
        fs::remove(tmp, ec);
        return Status::error("the copy of " + path + " differs from the original (did it change while importing?)");
      }
    }
    if (auto st = install(tmp, m); !st) {
      fs::remove(tmp, ec);
      return Status::error(st.message());
    }
    return m;
  }
  auto lk = lock();
  if (!lk) return Status::error(lk.error());
  SLIM_RETURN_IF_ERROR(write_manifest(m));
  return m;
}

Result<std::string> resolve_model(const std::string& s) {
  if (s.empty()) return Status::error("no model given");
  std::error_code ec;
  if (fs::is_regular_file(s, ec)) return s;
  bool looks_like_path = s.size() > 5 && s.compare(s.size() - 5, 5, ".gguf") == 0;
  if (looks_like_path && (s.find('/') == std::string::npos || s[0] == '/' || s[0] == '.'))
    return Status::error("cannot open " + s + ": no such file");
  auto store = Store::open();
  if (!store) return Status::error(store.error());
  auto m = store->get(s);
  if (!m) return Status::error(m.error());
  std::string blob = store->blob_path(m->digest);
  if (!fs::exists(blob, ec))
    return Status::error("model '" + m->full_name() + "' is in the store but its file is missing (pull it again)");
  return blob;
}

}  // namespace slim
