// Training data: packing a text into overlapping sequences with a held-out
// tail, the per-step batch permutation, and sequences sampled from a teacher
// (greedy ones checked against the llama2.c reference continuation).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "engine/engine.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace slim::train {
namespace {

std::string data_file(const std::string& name) { return std::string(SLIM_SOURCE_DIR) + "/tests/compress/data/" + name; }

std::shared_ptr<Tokenizer> stories_tokenizer() {
  const std::string path = test::shared_path("models/stories260K.gguf");
  auto tok = Tokenizer::from_file(path);
  EXPECT_TRUE(tok.ok()) << "missing shared test data file " << path << ": " << tok.error();
  return tok.ok() ? *tok : nullptr;
}

// The stream the dataset is cut from: each blank-line-separated document
// (stripped) tokenized with BOS, as llama2.c's pretokenizer does.
std::vector<int32_t> expected_stream(const Tokenizer& tok, const std::vector<std::string>& docs) {
  std::vector<int32_t> all;
  for (const auto& d : docs) {
    auto t = tok.tokenize(d, true, false);
    all.insert(all.end(), t.begin(), t.end());
  }
  return all;
}

TEST(DatasetFromText, PacksOverlappingSequences) {
  auto tok = stories_tokenizer();
  ASSERT_TRUE(tok);
  ASSERT_TRUE(tok->add_bos());
  const std::vector<std::string> docs = {
      "Once upon a time, there was a little cat.\nThe cat liked milk.",
      "One day, a dog came to the house. The dog was big and brown. It wanted to play.",
      "Tom and Lily went to the park. They saw a red ball and a blue kite.",
      "The end."};
  // Blank lines of any kind separate documents; whitespace around them goes.
  const std::string text = "\n  " + docs[0] + "\n\n\n" + docs[1] + "  \n \t\n" + docs[2] + "\n\n" + docs[3] + "\n";
  const std::vector<int32_t> stream = expected_stream(*tok, docs);
  ASSERT_EQ(std::count(stream.begin(), stream.end(), tok->bos()), 4);

  const int n_ctx = 8;
  auto d = dataset_from_text(*tok, text, {.n_ctx = n_ctx, .eval_fraction = 0.25});
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->n_ctx, n_ctx);
  EXPECT_EQ(d->n_text_tokens, stream.size());
  const size_t n = (stream.size() - 1) / n_ctx;
  ASSERT_EQ(d->train.size() + d->eval.size(), n);
  EXPECT_EQ(d->eval.size(), (size_t)std::llround(0.25 * n));

  // train then eval, in text order, each n_ctx + 1 tokens overlapping by one
  std::vector<std::vector<int32_t>> all = d->train;
  all.insert(all.end(), d->eval.begin(), d->eval.end());
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].size(), (size_t)n_ctx + 1);
    EXPECT_TRUE(std::equal(all[i].begin(), all[i].end(), stream.begin() + i * n_ctx)) << i;
    if (i + 1 < all.size()) {
      EXPECT_EQ(all[i].back(), all[i + 1].front());
    }
  }
  EXPECT_EQ(all[0][0], tok->bos());
}

TEST(DatasetFromText, HeldOutIsTheTail) {
  auto tok = stories_tokenizer();
  ASSERT_TRUE(tok);
  const std::string text = test::read_file(data_file("story_heldout.txt"));
  ASSERT_FALSE(text.empty()) << "missing " << data_file("story_heldout.txt");
  auto d = dataset_from_text(*tok, text, {.n_ctx = 32, .eval_fraction = 0.1});
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_GE(d->train.size(), 9u);
  ASSERT_GE(d->eval.size(), 1u);
  const size_t n = d->train.size() + d->eval.size();
  EXPECT_EQ(d->eval.size(), std::max<size_t>(1, (size_t)std::llround(0.1 * n)));
  // The held-out sequences start where training ends: the only token they
  // share with it is the one-token overlap.
  EXPECT_EQ(d->train.back().back(), d->eval.front().front());
  std::vector<int32_t> stream;
  for (const auto& s : d->train) stream.insert(stream.end(), s.begin(), s.end() - 1);
  const size_t train_tokens = stream.size();
  for (const auto& s : d->eval) stream.insert(stream.end(), s.begin(), s.end() - 1);
  EXPECT_EQ(train_tokens, d->train.size() * 32);
  EXPECT_LE(stream.size() + 1, d->n_text_tokens);  // only the tail that does not fill one is dropped
  EXPECT_GT(stream.size() + 1 + 32, d->n_text_tokens);

  auto none = dataset_from_text(*tok, text, {.n_ctx = 32, .eval_fraction = 0});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->eval.empty());
  EXPECT_EQ(none->train.size(), n);
}

TEST(DatasetFromText, Errors) {
  auto tok = stories_tokenizer();
  ASSERT_TRUE(tok);
  auto short_text = dataset_from_text(*tok, "Once upon a time.", {.n_ctx = 64});
  ASSERT_FALSE(short_text.ok());
  EXPECT_NE(short_text.error().find("fewer than one training sequence"), std::string::npos) << short_text.error();
  EXPECT_FALSE(dataset_from_text(*tok, "", {.n_ctx = 4}).ok());
  EXPECT_FALSE(dataset_from_text(*tok, "Once upon a time.", {.n_ctx = 0}).ok());
  EXPECT_FALSE(dataset_from_text(*tok, "Once upon a time.", {.n_ctx = 2, .eval_fraction = 1.0}).ok());
  // One sequence exactly: it is trained on, none held out.
  const std::vector<int32_t> t = tok->tokenize("Once upon a time, there was a cat.", true, false);
  auto one = dataset_from_text(*tok, "Once upon a time, there was a cat.", {.n_ctx = (int)t.size() - 1});
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(one->train.size(), 1u);
  EXPECT_TRUE(one->eval.empty());
  EXPECT_EQ(one->train[0], t);
}

TEST(BatchIndices, EpochsArePermutations) {
  const size_t n = 10;
  const int batch = 3;
  std::vector<int> stream;
  for (int64_t step = 0; step < 20; ++step) {
    auto b = batch_indices(n, batch, 7, step);
    ASSERT_EQ(b.size(), (size_t)batch);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  std::vector<std::vector<int>> epochs;
  for (size_t e = 0; e + n <= stream.size(); e += n) {
    std::vector<int> ep(stream.begin() + e, stream.begin() + e + n), sorted = ep;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> iota(n);
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_EQ(sorted, iota) << "epoch " << e / n;
    epochs.push_back(ep);
  }
  ASSERT_EQ(epochs.size(), 6u);
  EXPECT_NE(epochs[0], epochs[1]);  // a new shuffle each epoch
  std::vector<int> iota(n);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_NE(epochs[0], iota);

  // a pure function of (seed, step): any step on its own gives the same batch
  EXPECT_EQ(batch_indices(n, batch, 7, 13), std::vector<int>(stream.begin() + 39, stream.begin() + 42));
  EXPECT_NE(batch_indices(n, batch, 8, 0), batch_indices(n, batch, 7, 0));
  // batches larger than the data wrap through several epochs
  auto big = batch_indices(4, 9, 1, 0);
  ASSERT_EQ(big.size(), 9u);
  for (int i : big) EXPECT_TRUE(i >= 0 && i < 4);
  std::vector<int> first(big.begin(), big.begin() + 4);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(batch_indices(0, 4, 1, 0).empty());
  EXPECT_EQ(batch_indices(1, 2, 1, 5), (std::vector<int>{0, 0}));
}

std::unique_ptr<Engine> stories_engine(int n_seq, int n_ctx) {
  const std::string path = test::shared_path("models/stories260K.gguf");
  EngineParams ep;
  ep.n_ctx = n_ctx;
  ep.n_seq = n_seq;
  ep.n_threads = 2;
  auto e = Engine::load(path, ep);
  EXPECT_TRUE(e.ok()) << "missing shared test data file " << path << ": " << e.error();
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(DatasetFromTeacher, DeterministicPerSeed) {
  auto e = stories_engine(4, 64);
  ASSERT_TRUE(e);
  const Tokenizer& tok = e->tokenizer();
  // 6 + 2 sequences on 4 slots: two waves
  SampleOptions o{.n_seq = 6, .n_eval = 2, .n_ctx = 48, .temperature = 1.0f, .seed = 11};
  auto a = dataset_from_teacher(*e, o);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_EQ(a->train.size(), 6u);
  ASSERT_EQ(a->eval.size(), 2u);
  EXPECT_EQ(a->n_ctx, 48);
  std::set<std::vector<int32_t>> distinct;
  for (const auto* part : {&a->train, &a->eval})
    for (const auto& s : *part) {
      ASSERT_EQ(s.size(), 49u);
      EXPECT_EQ(s[0], tok.bos());
      for (size_t i = 0; i < s.size(); ++i) {
        ASSERT_TRUE(s[i] >= 0 && s[i] < 512) << s[i];
        // a finished text is followed by a new one from BOS
        if (tok.is_eog(s[i]) && i + 1 < s.size()) {
          EXPECT_EQ(s[i + 1], tok.bos());
        }
      }
      distinct.insert(s);
    }
  EXPECT_EQ(distinct.size(), 8u);  // every sequence its own draws
  for (int j = 0; j < 4; ++j) EXPECT_TRUE(e->seq_tokens(j).empty());  // the slots are left clear

  auto b = dataset_from_teacher(*e, o);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(a->train, b->train);
  EXPECT_EQ(a->eval, b->eval);
  o.seed = 12;
  auto c = dataset_from_teacher(*e, o);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_NE(a->train, c->train);
}

// Greedy sampling from BOS reproduces the reference continuation of
// stories260K (models/PROVENANCE.md: an independent llama2.c forward pass).
TEST(DatasetFromTeacher, GreedyMatchesReference) {
  auto e = stories_engine(2, 64);
  ASSERT_TRUE(e);
  const std::vector<int32_t> ref = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                    426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
                                    295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352};
  auto d = dataset_from_teacher(*e, {.n_seq = 3, .n_eval = 0, .n_ctx = 40, .temperature = 0.0f, .seed = 1});
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_EQ(d->train.size(), 3u);
  for (const auto& s : d->train) {
    ASSERT_EQ(s.size(), 41u);
    EXPECT_EQ(s[0], 1);
    EXPECT_EQ(std::vector<int32_t>(s.begin() + 1, s.end()), ref);
  }
}

TEST(DatasetFromTeacher, Errors) {
  auto e = stories_engine(1, 32);
  ASSERT_TRUE(e);
  auto too_long = dataset_from_teacher(*e, {.n_seq = 1, .n_ctx = 64});
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().find("context"), std::string::npos) << too_long.error();
  EXPECT_FALSE(dataset_from_teacher(*e, {.n_seq = 0, .n_ctx = 16}).ok());
  EXPECT_FALSE(dataset_from_teacher(*e, {.n_seq = 1, .n_ctx = 16, .temperature = -1}).ok());
}

}  // namespace
}  // namespace slim::train
