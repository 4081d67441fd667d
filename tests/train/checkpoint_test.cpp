// Training checkpoints: a bit-exact round trip (weights, both AdamW moments,
// step, settings, shape, the RoPE constant), no temporary left behind, and
// clear errors for a truncated, corrupted, incomplete or foreign file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "test_util.h"
#include "train_test_util.h"
#include "train/checkpoint.h"

namespace slim::train {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) { return test_util::fresh_dir("checkpoint-" + name); }
using test_util::files_in;

// Moments with every bit pattern class a run produces (tiny, negative, zero).
std::vector<float> pseudo_random(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v[i] = (float)((int64_t)(s >> 11) - (1LL << 52)) * 1e-20f;
  }
  if (n > 2) v[0] = 0.0f, v[1] = -0.0f;
  return v;
}

Checkpoint make_checkpoint() {
  Shape s = *parse_shape("arch=qwen2,dim=32,layers=2,heads=4,kv_heads=2,ffn=64,tied=0,ctx=128", 300);
  Checkpoint c;
  c.model = *init_from_shape(s, 9);
  c.adam_m = pseudo_random(c.model.n_params(), 1);
  c.adam_v = pseudo_random(c.model.n_params(), 2);
  c.step = 1234;
  c.config_json = R"({"lr":0.001,"batch":8,"seed":1})";
  return c;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  const Shape &x = a.model.shape, &y = b.model.shape;
  EXPECT_EQ(x.arch, y.arch);
  EXPECT_EQ(x.n_vocab, y.n_vocab);
  EXPECT_EQ(x.n_embd, y.n_embd);
  EXPECT_EQ(x.n_layer, y.n_layer);
  EXPECT_EQ(x.n_head, y.n_head);
  EXPECT_EQ(x.n_head_kv, y.n_head_kv);
  EXPECT_EQ(x.head_dim, y.head_dim);
  EXPECT_EQ(x.n_ff, y.n_ff);
  EXPECT_EQ(x.n_rot, y.n_rot);
  EXPECT_EQ(x.n_ctx_train, y.n_ctx_train);
  EXPECT_EQ(x.rms_eps, y.rms_eps);
  EXPECT_EQ(x.rope_freq_base, y.rope_freq_base);
  EXPECT_EQ(x.rope_type, y.rope_type);
  EXPECT_EQ(x.tied, y.tied);
  EXPECT_EQ(x.qkv_bias, y.qkv_bias);
  EXPECT_EQ(x.qk_norm, y.qk_norm);
  ASSERT_EQ(a.model.params.size(), b.model.params.size());
  for (size_t i = 0; i < a.model.params.size(); ++i) EXPECT_EQ(a.model.params[i].name, b.model.params[i].name);
  ASSERT_EQ(a.model.w.size(), b.model.w.size());
  EXPECT_EQ(std::memcmp(a.model.w.data(), b.model.w.data(), a.model.w.size() * 4), 0);
  ASSERT_EQ(a.adam_m.size(), b.adam_m.size());
  EXPECT_EQ(std::memcmp(a.adam_m.data(), b.adam_m.data(), a.adam_m.size() * 4), 0);
  ASSERT_EQ(a.adam_v.size(), b.adam_v.size());
  EXPECT_EQ(std::memcmp(a.adam_v.data(), b.adam_v.data(), a.adam_v.size() * 4), 0);
  EXPECT_EQ(a.model.rope_freqs, b.model.rope_freqs);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.config_json, b.config_json);
}

TEST(Checkpoint, RoundTripIsBitExact) {
  const std::string dir = fresh_dir("roundtrip");
  const std::string path = dir + "/run.ckpt";
  Checkpoint c = make_checkpoint();
  ASSERT_TRUE(save_checkpoint(path, c).ok());
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"run.ckpt"});  // the temporary was renamed
  auto back = load_checkpoint(path);
  ASSERT_TRUE(back.ok()) << back.error();
  expect_same(c, *back);
  EXPECT_EQ(back->model.layers[1].bq, c.model.layers[1].bq);

  // Saving again over it replaces it.
  c.step = 1235;
  c.adam_m[3] = 42.0f;
  ASSERT_TRUE(save_checkpoint(path, c).ok());
  auto again = load_checkpoint(path);
  ASSERT_TRUE(again.ok()) << again.error();
  expect_same(c, *again);
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"run.ckpt"});
}

TEST(Checkpoint, KeepsRopeFreqs) {
  SLIM_SHARED_FILE(model, "models/synthetic/llama3rope-F32.gguf");
  Checkpoint c;
  auto m = init_from_gguf(model);
  ASSERT_TRUE(m.ok()) << m.error();
  c.model = std::move(*m);
  ASSERT_FALSE(c.model.rope_freqs.empty());
  c.adam_m.assign(c.model.n_params(), 0.5f);
  c.adam_v.assign(c.model.n_params(), 0.25f);
  const std::string path = fresh_dir("rope") + "/r.ckpt";
  ASSERT_TRUE(save_checkpoint(path, c).ok());
  auto back = load_checkpoint(path);
  ASSERT_TRUE(back.ok()) << back.error();
  expect_same(c, *back);
}

TEST(Checkpoint, SaveRefusesInconsistentState) {
  Checkpoint c = make_checkpoint();
  c.adam_v.pop_back();
  const std::string dir = fresh_dir("refuse");
  auto st = save_checkpoint(dir + "/x.ckpt", c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("moments"), std::string::npos) << st.message();
  EXPECT_TRUE(files_in(dir).empty());
}

std::string write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
  return path;
}

TEST(Checkpoint, TruncatedOrCorruptIsAnError) {
  const std::string dir = fresh_dir("corrupt");
  const std::string path = dir + "/good.ckpt";
  ASSERT_TRUE(save_checkpoint(path, make_checkpoint()).ok());
  const std::string bytes = test::read_file(path);
  ASSERT_GT(bytes.size(), 10000u);

  for (size_t keep : {bytes.size() - 1, bytes.size() - 4096, bytes.size() / 2, (size_t)100, (size_t)3}) {
    auto r = load_checkpoint(write_bytes(dir + "/cut.ckpt", bytes.substr(0, keep)));
    ASSERT_FALSE(r.ok()) << "kept " << keep;
    EXPECT_EQ(r.error().find('\n'), std::string::npos);
  }
  // A flipped bit in the weights, the moments, anywhere in the data.
  for (size_t at : {bytes.size() - 5, bytes.size() / 2, bytes.size() * 3 / 4}) {
    std::string bad = bytes;
    bad[at] ^= 0x10;
    auto r = load_checkpoint(write_bytes(dir + "/flip.ckpt", bad));
    ASSERT_FALSE(r.ok()) << "flipped byte " << at;
    EXPECT_NE(r.error().find("checksum"), std::string::npos) << r.error();
  }
  auto garbage = load_checkpoint(write_bytes(dir + "/garbage.ckpt", std::string(4096, 'x')));
  EXPECT_FALSE(garbage.ok());
  EXPECT_FALSE(load_checkpoint(dir + "/absent.ckpt").ok());
}

TEST(Checkpoint, ForeignOrIncompleteFileIsAnError) {
  SLIM_SHARED_FILE(model, "models/stories260K.gguf");
  auto r = load_checkpoint(model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("not a slim training checkpoint"), std::string::npos) << r.error();

  // A checkpoint with one moment tensor missing.
  const std::string dir = fresh_dir("incomplete");
  const std::string good = dir + "/good.ckpt";
  ASSERT_TRUE(save_checkpoint(good, make_checkpoint()).ok());
  auto f = GgufFile::open(good);
  ASSERT_TRUE(f.ok()) << f.error();
  GgufWriter w;
  w.copy_metadata_from(**f);
  ASSERT_TRUE(w.copy_tensors_from(**f, {"adam_v.blk.1.ffn_up.weight"}).ok());
  ASSERT_TRUE(w.write(dir + "/missing.ckpt").ok());
  auto m = load_checkpoint(dir + "/missing.ckpt");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("tensors"), std::string::npos) << m.error();

  // ... and one with a tensor of the wrong shape in its place.
  GgufWriter w2;
  w2.copy_metadata_from(**f);
  ASSERT_TRUE(w2.copy_tensors_from(**f, {"adam_v.blk.1.ffn_up.weight"}).ok());
  std::vector<float> small(32 * 63, 0.0f);
  ASSERT_TRUE(w2.add_tensor("adam_v.blk.1.ffn_up.weight", GgmlType::F32, {32, 63}, small.data(), small.size() * 4).ok());
  ASSERT_TRUE(w2.write(dir + "/shape.ckpt").ok());
  auto s = load_checkpoint(dir + "/shape.ckpt");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("adam_v.blk.1.ffn_up.weight"), std::string::npos) << s.error();
}

}  // namespace
}  // namespace slim::train
