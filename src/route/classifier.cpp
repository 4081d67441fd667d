// Hashed n-gram logistic regression for routing.
#include "route/classifier.h"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "base/utf8.h"

namespace slim {

using json = nlohmann::json;

namespace {

// The model signals the classifier sees, in a fixed order.
std::vector<double> dense_features(const PromptSignals& s) {
  return {s.nll_mean, s.nll_p90, s.byte_fraction, std::log1p((double)s.n_tokens), s.chars_per_token};
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) { h ^= c; h *= 16777619u; }
  return h;
}

// Character 1- to 4-grams of the lower-cased prompt (code points, so every
// script counts alike) with spaces marking word edges; counts scaled to unit
// length so long and short prompts weigh alike.
std::map<int, double> hashed_features(const std::string& prompt, int n_buckets) {
  std::vector<std::string> cps{" "};
  size_t i = 0;
  while (i < prompt.size()) {
    const size_t n = utf8::char_length(prompt, i);
    std::string c = prompt.substr(i, n);
    if (n == 1) c[0] = (char)std::tolower((unsigned char)c[0]);
    if (n == 1 && std::isspace((unsigned char)c[0])) c.assign(1, ' ');
    if (!(c == " " && cps.back() == " ")) cps.push_back(c);
    i += n;
  }
  if (cps.back() != " ") cps.push_back(" ");
  std::map<int, double> f;
  for (size_t k = 1; k <= 4; ++k)
    for (size_t a = 0; a + k <= cps.size(); ++a) {
      std::string g = std::to_string(k);
      for (size_t b = a; b < a + k; ++b) g += cps[b];
      f[(int)(fnv1a(g) % (uint32_t)n_buckets)] += 1.0;
    }
  double norm = 0;
  for (auto& [_, v] : f) norm += v * v;
  norm = std::sqrt(norm);
  for (auto& [_, v] : f) v /= norm;
  return f;
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

struct Example {
  std::vector<double> dense;
  std::map<int, double> hashed;
  double y = 0;
};

double score(const RouteClassifier& c, const Example& e) {
  double z = c.bias;
  for (size_t k = 0; k < e.dense.size(); ++k) z += c.w_dense[k] * (e.dense[k] - c.dense_mean[k]) / c.dense_std[k];
  for (auto& [b, v] : e.hashed) z += c.w_hash[b] * v;
  return sigmoid(z);
}

}  // namespace

double RouteClassifier::p_remote(const std::string& prompt, const PromptSignals& s) const {
  Example e{dense_features(s), hashed_features(prompt, n_buckets), 0};
  return score(*this, e);
}

Result<std::vector<LabelledPrompt>> read_labelled_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error("cannot open '" + path + "'");
  std::vector<LabelledPrompt> rows;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      return Status::error(format("%s:%d: expected {\"prompt\": \"...\", \"label\": \"local\"|\"remote\"}", path.c_str(), n));
    LabelledPrompt r;
    r.prompt = j["prompt"].get<std::string>();
    std::string label = j.value("label", "");
    if (label != "local" && label != "remote")
      return Status::error(format("%s:%d: 'label' must be \"local\" or \"remote\"", path.c_str(), n));
    r.remote = label == "remote";
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return Status::error("'" + path + "' has no labelled prompts");
  return rows;
}

RouteClassifier train_classifier(const std::vector<LabelledPrompt>& rows, const TrainOptions& o) {
  RouteClassifier c;
  std::vector<Example> ex;
  for (const auto& r : rows) ex.push_back({dense_features(r.signals), hashed_features(r.prompt, c.n_buckets), r.remote ? 1.0 : 0.0});
  const size_t nd = ex.empty() ? 5 : ex[0].dense.size();
  c.dense_mean.assign(nd, 0);
  c.dense_std.assign(nd, 0);
  for (auto& e : ex) for (size_t k = 0; k < nd; ++k) c.dense_mean[k] += e.dense[k] / ex.size();
  for (auto& e : ex) for (size_t k = 0; k < nd; ++k) c.dense_std[k] += std::pow(e.dense[k] - c.dense_mean[k], 2) / ex.size();
  for (auto& s : c.dense_std) s = std::max(std::sqrt(s), 1e-6);
  c.w_dense.assign(nd, 0);
  c.w_hash.assign(c.n_buckets, 0);
  // Full-batch gradient descent on the mean log-loss plus L2: the data are
  // small (hundreds of rows), so this converges in a blink and is deterministic.
  const double n = (double)std::max<size_t>(ex.size(), 1);
  std::vector<double> g_dense(nd), g_hash(c.n_buckets);
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    std::fill(g_dense.begin(), g_dense.end(), 0);
    std::fill(g_hash.begin(), g_hash.end(), 0);
    double g_bias = 0;
    for (const auto& e : ex) {
      const double d = score(c, e) - e.y;
      g_bias += d / n;
      for (size_t k = 0; k < nd; ++k) g_dense[k] += d * (e.dense[k] - c.dense_mean[k]) / c.dense_std[k] / n;
      for (auto& [b, v] : e.hashed) g_hash[b] += d * v / n;
    }
    c.bias -= o.lr * g_bias;
    for (size_t k = 0; k < nd; ++k) c.w_dense[k] -= o.lr * (g_dense[k] + o.l2 * c.w_dense[k]);
    for (int b = 0; b < c.n_buckets; ++b) c.w_hash[b] -= o.lr * (g_hash[b] + o.l2 * c.w_hash[b]);
  }
  return c;
}

std::vector<double> cross_validated_p(const std::vector<LabelledPrompt>& rows, int folds, const TrainOptions& o) {
  std::vector<double> p(rows.size(), 0.5);
  for (int f = 0; f < folds; ++f) {
    std::vector<LabelledPrompt> train;
    for (size_t i = 0; i < rows.size(); ++i)
      if ((int)(i % folds) != f) train.push_back(rows[i]);
    if (train.empty()) continue;
    RouteClassifier c = train_classifier(train, o);
    for (size_t i = 0; i < rows.size(); ++i)
      if ((int)(i % folds) == f) p[i] = c.p_remote(rows[i].prompt, rows[i].signals);
  }
  return p;
}

Status save_classifier(const std::string& path, const RouteClassifier& c) {
  json hash = json::object();
  for (int b = 0; b < c.n_buckets; ++b)
    if (c.w_hash[b] != 0) hash[std::to_string(b)] = c.w_hash[b];
  json j = {{"kind", "slim-route-classifier"}, {"version", 1}, {"n_buckets", c.n_buckets},
            {"dense", {"nll_mean", "nll_p90", "byte_fraction", "log1p_tokens", "chars_per_token"}},
            {"dense_mean", c.dense_mean}, {"dense_std", c.dense_std}, {"w_dense", c.w_dense},
            {"w_hash", hash}, {"bias", c.bias}};
  std::string text = j.dump(1) + "\n";
  return write_file_atomic(path, text.data(), text.size());
}

Result<RouteClassifier> load_classifier(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error("cannot open the route classifier '" + path + "'");
  json j = json::parse(in, nullptr, false);
  auto bad = [&] { return Status::error("'" + path + "' is not a slim route classifier"); };
  if (!j.is_object() || j.value("kind", "") != "slim-route-classifier") return bad();
  try {
    RouteClassifier c;
    c.n_buckets = j.at("n_buckets").get<int>();
    c.dense_mean = j.at("dense_mean").get<std::vector<double>>();
    c.dense_std = j.at("dense_std").get<std::vector<double>>();
    c.w_dense = j.at("w_dense").get<std::vector<double>>();
    c.bias = j.at("bias").get<double>();
    if (c.n_buckets <= 0 || c.n_buckets > (1 << 24) || c.dense_mean.size() != 5 || c.dense_std.size() != 5 ||
        c.w_dense.size() != 5)
      return bad();
    for (double s : c.dense_std) if (!(s > 0)) return bad();
    c.w_hash.assign(c.n_buckets, 0);
    for (auto& [k, v] : j.at("w_hash").items()) {
      int b = std::stoi(k);
      if (b < 0 || b >= c.n_buckets) return bad();
      c.w_hash[b] = v.get<double>();
    }
    return c;
  } catch (const std::exception&) {
    return bad();
  }
}

}  // namespace slim
