// GGUF reader and writer: round trips, every metadata type, and bad files
// (truncated at many cut points, absurd counts, bad offsets) rejected with an
// error instead of a crash.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"

namespace slim {
namespace {

std::string write_bytes(const std::string& name, const std::string& bytes) {
  std::string p = test::temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
  return p;
}

GgufWriter sample_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set("a.u32", GgufValue::u32(7));
  w.set("a.i32", GgufValue::i32(-7));
  w.set("a.u64", GgufValue::u64(1ull << 40));
  w.set("a.f32", GgufValue::f32(0.5f));
  w.set("a.bool", GgufValue::boolean(true));
  GgufValue f64; f64.type = GgufType::FLOAT64; f64.f = 1e-300; w.set("a.f64", f64);
  GgufValue i8; i8.type = GgufType::INT8; i8.i = -3; w.set("a.i8", i8);
  GgufValue u16; u16.type = GgufType::UINT16; u16.i = 65535; w.set("a.u16", u16);
  GgufArray strs; strs.elem_type = GgufType::STRING; strs.strings = {"a", "", "ünï"};
  w.set("a.strings", GgufValue::array_of(strs));
  GgufArray fl; fl.elem_type = GgufType::FLOAT32; fl.floats = {1.0, -2.5};
  w.set("a.floats", GgufValue::array_of(fl));
  GgufArray inner; inner.elem_type = GgufType::INT32; inner.ints = {1, 2, 3};
  GgufArray nested; nested.elem_type = GgufType::ARRAY; nested.arrays = {GgufValue::array_of(inner), GgufValue::array_of(inner)};
  w.set("a.nested", GgufValue::array_of(nested));
  std::vector<float> t1(64 * 3);
  for (size_t i = 0; i < t1.size(); ++i) t1[i] = (float)i;
  EXPECT_TRUE(w.add_tensor("t1", GgmlType::F32, {64, 3}, t1.data(), t1.size() * 4).ok());
  std::vector<uint8_t> q(34 * 4, 1);
  EXPECT_TRUE(w.add_tensor("t2.q8", GgmlType::Q8_0, {128, 1}, q.data(), q.size()).ok());
  return w;
}

TEST(Gguf, WriterOutputReadsBackIdentically) {
  GgufWriter w = sample_writer();
  std::string path = test::temp_dir() + "/rt.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->get_int("a.u32"), 7);
  EXPECT_EQ((*f)->get_int("a.i32"), -7);
  EXPECT_EQ((uint64_t)*(*f)->get_int("a.u64"), 1ull << 40);
  EXPECT_EQ((*f)->get_float("a.f32"), 0.5);
  EXPECT_EQ((*f)->get_float("a.f64"), 1e-300);
  EXPECT_EQ((*f)->get_bool("a.bool"), true);
  EXPECT_EQ((*f)->get_int("a.i8"), -3);
  EXPECT_EQ((*f)->get_int("a.u16"), 65535);
  ASSERT_NE((*f)->get_array("a.strings"), nullptr);
  EXPECT_EQ((*f)->get_array("a.strings")->strings, (std::vector<std::string>{"a", "", "ünï"}));
  const GgufArray* n = (*f)->get_array("a.nested");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->arrays.size(), 2u);
  EXPECT_EQ(n->arrays[1].arr->ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE((*f)->get_int("a.missing").has_value());
  EXPECT_FALSE((*f)->get_int("a.strings").has_value());  // wrong type

  const TensorInfo* t1 = (*f)->find_tensor("t1");
  ASSERT_NE(t1, nullptr);
  EXPECT_EQ(t1->ne[0], 64);
  EXPECT_EQ(t1->ne[1], 3);
  EXPECT_EQ(reinterpret_cast<const float*>(t1->data)[100], 100.0f);
  EXPECT_EQ((reinterpret_cast<uintptr_t>(t1->data) - reinterpret_cast<uintptr_t>(t1->data - t1->offset)) % 32, 0u);
  const TensorInfo* t2 = (*f)->find_tensor("t2.q8");
  ASSERT_NE(t2, nullptr);
  EXPECT_EQ(t2->type, GgmlType::Q8_0);
  EXPECT_EQ(t2->nbytes, 136u);

  // Re-writing everything read gives the same bytes.
  GgufWriter w2;
  w2.copy_metadata_from(**f);
  ASSERT_TRUE(w2.copy_tensors_from(**f).ok());
  std::string path2 = test::temp_dir() + "/rt2.gguf";
  ASSERT_TRUE(w2.write(path2).ok());
  EXPECT_EQ(test::read_file(path), test::read_file(path2));
  auto f2 = GgufFile::open(path2);
  ASSERT_TRUE(f2.ok());
  ASSERT_EQ((*f2)->metadata().size(), (*f)->metadata().size());
  for (size_t i = 0; i < (*f)->metadata().size(); ++i) {
    EXPECT_EQ((*f2)->metadata()[i].first, (*f)->metadata()[i].first);
    EXPECT_TRUE((*f2)->metadata()[i].second == (*f)->metadata()[i].second) << (*f)->metadata()[i].first;
  }
}

// v2 has the same layout as v3 (64-bit counts); only the version differs.
TEST(Gguf, ReadsVersion2) {
  GgufWriter w = sample_writer();
  std::string path = test::temp_dir() + "/v3.gguf";
  ASSERT_TRUE(w.write(path).ok());
  std::string bytes = test::read_file(path);
  bytes[4] = 2;
  auto f = GgufFile::open(write_bytes("v2.gguf", bytes));
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->version(), 2u);
  EXPECT_EQ((*f)->get_array("a.strings")->strings.size(), 3u);
  EXPECT_EQ(reinterpret_cast<const float*>((*f)->find_tensor("t1")->data)[7], 7.0f);
}

TEST(Gguf, CustomAlignment) {
  GgufWriter w = sample_writer();
  w.set_alignment(64);
  std::string path = test::temp_dir() + "/align.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  EXPECT_EQ(reinterpret_cast<const float*>((*f)->find_tensor("t1")->data)[5], 5.0f);
}

TEST(Gguf, ReadsRealModel) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->get_string("general.architecture"), "llama");
  EXPECT_EQ((*f)->tensors().size(), 48u);
  EXPECT_EQ((*f)->get_array("tokenizer.ggml.tokens")->size(), 512u);
}

TEST(Gguf, MissingAndNotGguf) {
  auto a = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().find("No such file"), std::string::npos) << a.error();
  auto b = GgufFile::open(write_bytes("text.gguf", "hello world, not a model"));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().find("not a GGUF file"), std::string::npos);
  auto c = GgufFile::open(write_bytes("empty.gguf", ""));
  ASSERT_FALSE(c.ok());
  auto d = GgufFile::open(test::temp_dir());
  ASSERT_FALSE(d.ok());
}

// Every prefix of a real model must be rejected (or, for the full file, accepted).
TEST(Gguf, TruncatedRealModelAtManyCutPoints) {
  SLIM_SHARED_FILE(path, "models/stories260K.gguf");
  std::string all = test::read_file(path);
  std::vector<size_t> cuts;
  for (size_t c = 0; c < 20000 && c < all.size(); c += 7) cuts.push_back(c);  // header and metadata, densely
  for (size_t c = 20000; c < all.size(); c += all.size() / 97) cuts.push_back(c);
  cuts.push_back(all.size() - 1);
  int rejected = 0;
  for (size_t c : cuts) {
    auto f = GgufFile::open(write_bytes("cut.gguf", all.substr(0, c)));
    EXPECT_FALSE(f.ok()) << "cut at " << c << " accepted";
    if (!f.ok()) {
      ++rejected;
      EXPECT_EQ(f.error().find('\n'), std::string::npos);
    }
  }
  EXPECT_EQ(rejected, (int)cuts.size());
  EXPECT_TRUE(GgufFile::open(write_bytes("whole.gguf", all)).ok());
}

std::string header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  std::string s = "GGUF";
  s.append(reinterpret_cast<const char*>(&version), 4);
  s.append(reinterpret_cast<const char*>(&n_tensors), 8);
  s.append(reinterpret_cast<const char*>(&n_kv), 8);
  return s;
}

template <class T>
void put(std::string& s, T v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_str(std::string& s, const std::string& x) { put<uint64_t>(s, x.size()); s += x; }

TEST(Gguf, AbsurdCountsAndSizes) {
  struct Case { const char* what; std::string bytes; const char* expect; };
  std::vector<Case> cases;
  cases.push_back({"huge kv count", header(3, 0, 1ull << 62), "metadata count"});
  cases.push_back({"huge tensor count", header(3, 1ull << 60, 0), "tensor count"});
  cases.push_back({"version 1", header(1, 0, 0), "version 1"});
  cases.push_back({"version 99", header(99, 0, 0), "unsupported GGUF version"});
  {
    std::string s = header(3, 0, 1);
    put<uint64_t>(s, 1ull << 50);  // key length
    s += std::string(64, 'k');
    cases.push_back({"huge key length", s, "exceeds the file size"});
  }
  {
    std::string s = header(3, 0, 1);
    put_str(s, "k");
    put<uint32_t>(s, 9);  // array
    put<uint32_t>(s, 8);  // of strings
    put<uint64_t>(s, 1ull << 61);
    cases.push_back({"huge array", s, "array of"});
  }
  {
    std::string s = header(3, 0, 1);
    put_str(s, "k");
    put<uint32_t>(s, 77);
    s += std::string(64, '\0');
    cases.push_back({"bad value type", s, "unknown type"});
  }
  {  // nested arrays deeper than any real file
    std::string s = header(3, 0, 1);
    put_str(s, "k");
    put<uint32_t>(s, 9);
    for (int i = 0; i < 40; ++i) { put<uint32_t>(s, 9); put<uint64_t>(s, 1); }
    s += std::string(64, '\0');
    cases.push_back({"deep nesting", s, "nested too deeply"});
  }
  auto tensor_file = [](uint32_t n_dims, uint64_t ne0, uint32_t type, uint64_t offset) {
    std::string s = header(3, 1, 0);
    put_str(s, "w");
    put<uint32_t>(s, n_dims);
    for (uint32_t d = 0; d < n_dims && d < 8; ++d) put<uint64_t>(s, ne0);
    put<uint32_t>(s, type);
    put<uint64_t>(s, offset);
    s += std::string(256, '\0');
    return s;
  };
  cases.push_back({"too many dims", tensor_file(9, 4, 0, 0), "dimensions"});
  cases.push_back({"zero dim", tensor_file(1, 0, 0, 0), "dimension"});
  cases.push_back({"unknown type", tensor_file(1, 32, 1234, 0), "unsupported tensor type 1234"});
  cases.push_back({"data past end", tensor_file(2, 1ull << 20, 0, 0), "past the end"});
  cases.push_back({"huge offset", tensor_file(1, 32, 0, 1ull << 62), "past the end"});
  cases.push_back({"misaligned", tensor_file(1, 8, 0, 3), "not aligned"});
  cases.push_back({"partial block", tensor_file(1, 33, 8, 0), "block size"});
  for (auto& c : cases) {
    auto f = GgufFile::open(write_bytes("bad.gguf", c.bytes));
    ASSERT_FALSE(f.ok()) << c.what;
    EXPECT_NE(f.error().find(c.expect), std::string::npos) << c.what << ": " << f.error();
  }
}

TEST(Gguf, WriterRejectsBadTensors) {
  GgufWriter w;
  float x[4] = {};
  EXPECT_FALSE(w.add_tensor("a", GgmlType::F32, {4}, x, 8).ok());      // wrong byte count
  EXPECT_FALSE(w.add_tensor("b", GgmlType::Q8_0, {4}, x, 16).ok());    // partial block
  EXPECT_TRUE(w.add_tensor("c", GgmlType::F32, {4}, x, 16).ok());
  EXPECT_FALSE(w.add_tensor("c", GgmlType::F32, {4}, x, 16).ok());     // duplicate
  EXPECT_FALSE(w.write("/nonexistent/dir/x.gguf").ok());
}

}  // namespace
}  // namespace slim
