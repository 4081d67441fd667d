// Sampler stages on hand-computed distributions, and seeded determinism.
#include <cmath>
#include <map>

#include "sample/sampler.h"
#include "test_util.h"

namespace slim {
namespace {

Candidates make(const std::vector<float>& logits) {
  Candidates c;
  c.set_logits(logits.data(), (int)logits.size());
  return c;
}

std::vector<int32_t> ids(const Candidates& c) {
  std::vector<int32_t> v;
  for (auto& x : c.items) v.push_back(x.id);
  return v;
}

TEST(Sampler, SoftmaxProbabilities) {
  Candidates c = make({0.0f, std::log(3.0f)});  // p = 1/4, 3/4
  c.softmax();
  EXPECT_EQ(c.items[0].id, 1);
  EXPECT_NEAR(c.items[0].p, 0.75f, 1e-6);
  EXPECT_NEAR(c.items[1].p, 0.25f, 1e-6);
}

TEST(Sampler, TopK) {
  Candidates c = make({1, 5, 3, 4, 2});
  make_top_k(3)->apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2}));
  Candidates d = make({1, 5, 3});
  make_top_k(0)->apply(d);  // off
  EXPECT_EQ(d.items.size(), 3u);
}

TEST(Sampler, TopP) {
  // p = 0.5, 0.25, 0.125, 0.125
  Candidates c = make({std::log(4.f), std::log(2.f), 0, 0});
  make_top_p(0.7f)->apply(c);  // 0.5 < 0.7 <= 0.75
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
  Candidates d = make({std::log(4.f), std::log(2.f), 0, 0});
  make_top_p(0.5f)->apply(d);
  EXPECT_EQ(ids(d), (std::vector<int32_t>{0}));
}

TEST(Sampler, MinP) {
  // p proportional to 8, 4, 2, 1: min_p 0.25 keeps those >= 2/8
  Candidates c = make({std::log(8.f), std::log(4.f), std::log(2.f), 0});
  make_min_p(0.25f)->apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2}));
}

TEST(Sampler, Temperature) {
  Candidates c = make({2, 4});
  make_temperature(2.0f)->apply(c);
  EXPECT_FLOAT_EQ(c.items[0].logit, 1);
  EXPECT_FLOAT_EQ(c.items[1].logit, 2);
}

TEST(Sampler, Penalties) {
  auto pen = make_penalties(64, 2.0f, 0.5f, 0.25f);
  pen->accept(0);
  pen->accept(0);
  pen->accept(1);
  Candidates c = make({4, -4, 1});
  pen->apply(c);
  EXPECT_FLOAT_EQ(c.items[0].logit, 4 / 2.0f - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -4 * 2.0f - 1 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c.items[2].logit, 1);
  // The window forgets old tokens.
  auto win = make_penalties(1, 2.0f, 0, 0);
  win->accept(0);
  win->accept(2);
  Candidates d = make({4, 4, 4});
  win->apply(d);
  EXPECT_FLOAT_EQ(d.items[0].logit, 4);
  EXPECT_FLOAT_EQ(d.items[2].logit, 2);
}

TEST(Sampler, GreedyPicksLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(l.data(), 4), 1);
}

TEST(Sampler, SameSeedSameOutputAndDistribution) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  std::vector<float> l = {0, std::log(3.0f)};
  Sampler a(p), b(p);
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) {
    int x = a.sample(l.data(), 2), y = b.sample(l.data(), 2);
    ASSERT_EQ(x, y);
    counts[x]++;
  }
  EXPECT_NEAR(counts[1] / 4000.0, 0.75, 0.03);
  p.seed = 43;
  Sampler c(p);
  a.reset();
  int diff = 0;
  for (int i = 0; i < 200; ++i) diff += a.sample(l.data(), 2) != c.sample(l.data(), 2);
  EXPECT_GT(diff, 0);
}

}  // namespace
}  // namespace slim
